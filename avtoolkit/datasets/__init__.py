"""Datasets, one folder per corpus (``grid/``; ``lrw/`` and ``manifest/`` move here)."""
