"""``PrepareReport``: what one preparation run did, and its ``prepare_report.tsv`` of failed clips."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from avtoolkit.atomic import atomic_write

#: the report file's name, in the store's folder.
REPORT_NAME = "prepare_report.tsv"


@dataclass
class PrepareReport:
    """What a preparation run did (every corpus's ``prepare`` returns one).

    Attributes:
        prepared: clips prepared in this run.
        skipped: clips already in the store (an interrupted run resumes).
        failed: ``(item, reason)`` of clips that could not be prepared (or that the layout
            reader left out); the item names the clip (a clip key, a video path).
        report_path: the TSV listing the failed clips.

    Examples:
        >>> import tempfile
        >>> report = PrepareReport(prepared=2, failed=[("s1/x", "no face")], report_path=Path(tempfile.mkdtemp()) / REPORT_NAME)
        >>> report.write("clip\\treason"); report.report_path.read_text()
        'clip\\treason\\ns1/x\\tno face\\n'
        >>> str(report).startswith("prepared 2 clips, 0 already cached, 1 failed (listed with reasons in ")
        True
    """

    prepared: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    report_path: Path | None = None

    def __str__(self) -> str:
        text = f"prepared {self.prepared} clips, {self.skipped} already cached, {len(self.failed)} failed"
        if self.failed:
            text += f" (listed with reasons in {self.report_path})"
        return text

    def write(self, header: str) -> None:
        """Writes ``header`` and one ``item<TAB>reason`` line per failure to :attr:`report_path`, whole.

        Two preparation runs into one store must not interleave their reports, so the text is
        written with :func:`~avtoolkit.atomic.atomic_write`.
        """
        if self.report_path is None:
            raise ValueError("PrepareReport.report_path is not set")
        lines = [header] + [f"{item}\t{reason}" for item, reason in sorted(self.failed)]
        with atomic_write(self.report_path, "w") as fh:
            fh.write("\n".join(lines) + "\n")


def read_failed(folder: str | os.PathLike[str]) -> dict[str, str]:
    """Item -> reason from a folder's ``prepare_report.tsv`` (empty if there is none)."""
    path = Path(folder) / REPORT_NAME
    if not path.is_file():
        return {}
    rows = [line.split("\t", 1) for line in path.read_text().splitlines()[1:] if "\t" in line]
    return {k: r for k, r in rows}
