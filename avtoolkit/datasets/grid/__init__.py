"""The GRID audio-visual corpus: layout reader, splits, word cuts, prepared cache, the ``grid`` dataset.

Importing the package registers the ``grid`` dataset component and ``grid_text`` (its transcripts, for an LM).
"""

from avtoolkit.datasets.grid import datamodule  # noqa: F401  (registers "grid")
from avtoolkit.datasets.grid import transcripts  # noqa: F401  (registers "grid_text")
