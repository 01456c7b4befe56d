"""``quieter``: a logger held at a higher level for one block, then put back as it was.

Used where a library logs a line per call that the user cannot act on: Lightning's "GPU
available" banner, printed by each of noise-eval's many Trainers, and ONNX Runtime's quantiser,
which warns once for every integer tensor it skips.

Examples:
    >>> import logging
    >>> log = logging.getLogger("avtoolkit.example")
    >>> with quieter("avtoolkit.example", logging.ERROR):
    ...     log.level == logging.ERROR
    True
    >>> log.level == logging.NOTSET
    True
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

__all__ = ["quieter"]


@contextlib.contextmanager
def quieter(name: str | None, level: int) -> Iterator[None]:
    """Sets logger ``name`` (``None``: the root logger) to ``level`` inside the block.

    Not thread-safe: the level is the logger's, for the whole process, while the block runs.
    """
    logger = logging.getLogger(name)
    before = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(before)
