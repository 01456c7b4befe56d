"""Registers the ``grid`` dataset, which lives in :mod:`avtoolkit.datasets.grid` (the new layout)."""

from avtoolkit.datasets.grid import datamodule  # noqa: F401
