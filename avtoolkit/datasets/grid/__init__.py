"""The GRID audio-visual corpus: layout reader, splits, word cuts, prepared cache, the ``grid`` dataset.

Importing the package registers the ``grid`` dataset component.
"""

from avtoolkit.datasets.grid import datamodule  # noqa: F401  (registers "grid")
