"""Packages: avtoolkit's own (found) plus ``avtoolkit.recipes``, mapped from recipes/.

Everything else is in pyproject.toml; this file exists only because setuptools'
``packages.find`` cannot add a package that lives outside the searched folder.
"""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["avtoolkit", "avtoolkit.*"]), "avtoolkit.recipes"])
