"""Objectives: what a head's ``task`` trains for, one registered class each (``classification``, ``ctc``, ``hybrid``, ``language_model``).

See :mod:`avtoolkit.objectives.base` for the contract; third-party packages add one through
the ``avtoolkit.objectives`` entry-point group.
"""

from __future__ import annotations

from avtoolkit.objectives.base import Logged, Objective
from avtoolkit.registry.kinds import OBJECTIVES

__all__ = ["Logged", "Objective", "objective_class"]


def objective_class(task: str) -> type[Objective]:
    """The objective class registered under a head's ``task``.

    Raises:
        ValueError: no objective has that name; the message names the registered ones.

    Examples:
        >>> objective_class("ctc").monitor
        ('val/wer', 'min')
        >>> objective_class("seq2seq")
        Traceback (most recent call last):
        ...
        ValueError: head task 'seq2seq' is not one of the registered objectives (classification, ctc, hybrid, language_model; see `avtoolkit list-components --kind objective`)
    """
    if task not in OBJECTIVES:
        raise ValueError(f"head task {task!r} is not one of the registered objectives ({', '.join(OBJECTIVES.names())}; "
                         "see `avtoolkit list-components --kind objective`)")
    return OBJECTIVES.get(task)  # type: ignore[return-value]
