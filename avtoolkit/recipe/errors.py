"""Recipe errors: each problem carries its recipe path and, when known, file and line."""

from __future__ import annotations

from avtoolkit.errors import AvtoolkitError

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a recipe.

    Attributes:
        path: dotted recipe key, e.g. ``model.encoders.video.widht``.
        message: what is wrong and, when possible, how to fix it.
        where: ``file:line`` of the key, when it came from a file.
    """

    path: str
    message: str
    where: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        return f"{prefix}{self.path}: {self.message}" if self.path else f"{prefix}{self.message}"


class RecipeError(AvtoolkitError, ValueError):
    """A recipe cannot be loaded or does not validate; lists every problem found."""

    def __init__(self, problems: list[Problem] | str, source: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(path="", message=problems)]
        self.problems = problems
        self.source = source
        head = f"recipe {source}" if source else "recipe"
        if len(problems) == 1:
            p = problems[0]
            text = f"{head}: {p}" if p.path or p.where else f"{head}: {p.message}"
        else:
            lines = "\n".join(f"  - {p}" for p in problems)
            text = f"{head} has {len(problems)} problems:\n{lines}"
        super().__init__(text)
