"""The one base class of every error a user can fix, and the error kinds the toolkit raises.

``avtoolkit.cli.main`` alone turns an :class:`AvtoolkitError` into a one-paragraph message and
exit status 2. Anything else that escapes a command is a bug and keeps its traceback.
Subclasses keep the built-in base they had (``ValueError``, ``LookupError``, ...) so code that
caught those still does.

Examples:
    >>> issubclass(CheckpointError, AvtoolkitError)
    True
    >>> str(AvtoolkitError("clip.mp4: no video frames could be decoded"))
    'clip.mp4: no video frames could be decoded'
"""

from __future__ import annotations


class AvtoolkitError(Exception):
    """Something the user can fix: bad recipe, file, checkpoint, argument or data.

    The message is the whole story (what, where: file, line or recipe key, and what to do);
    the command line prints it without a traceback and exits with status 2.
    """


class DatasetNotFoundError(AvtoolkitError, FileNotFoundError):
    """``data.root`` does not hold the corpus a dataset reads; the message says where it comes from."""


class CheckpointError(AvtoolkitError, ValueError):
    """A checkpoint cannot be read safely or does not fit the model it is loaded into."""


class ExportError(AvtoolkitError, RuntimeError):
    """An export cannot be made, or the exported graph does not reproduce PyTorch within tolerance."""


class TrainingDivergedError(AvtoolkitError, RuntimeError):
    """Training produced non-finite losses, weights or buffers; the message names the step."""


class RunDirectoryError(AvtoolkitError, RuntimeError):
    """A run directory cannot be written: it holds another run, or another process is writing it."""


class UsageError(AvtoolkitError, ValueError):
    """A command-line value is out of range or contradicts another (``--top 0``, say)."""


class MissingExtraError(AvtoolkitError, ImportError):
    """A feature needs an optional dependency that is not installed; the message names the extra."""
