"""The shipped recipes, installed as the package ``avtoolkit.recipes`` (see pyproject.toml).

A regular package rather than a bare folder, because setuptools' editable installs find
only packages with an ``__init__.py`` under a mapped ``package-dir``.
"""
