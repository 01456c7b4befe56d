"""GRID's own layout: ``s<N>/<id>.mpg|.mp4``, ``alignments/s<N>/<id>.align``, ``audio_25k/s<N>/<id>.wav``.

The GRID audio-visual corpus (Cooke et al., JASA 2006): 34 speakers x 1000 sentences of
the grammar ``command colour preposition letter digit adverb`` (:mod:`avtoolkit.data.grid_grammar`). A clip id spells its sentence
(``bbaf2n`` = "bin blue at f two now"). Alignments are CRLF lines ``start end word`` with
times in 25 kHz samples (1000 samples = 40 ms = one video frame at 25 fps); ``sil`` and ``sp``
mark silence.

The public release has several speakers' alignment folders swapped (lhotse's GRID recipe keeps
a fix-up map: s5<->s6, s10..s13 rotated, s14<->s15, ...). Rather than trusting a map, the reader
checks each speaker's alignment folder against what the clip ids spell and, when it does not
match, looks for the folder that does (:func:`resolve_alignment_dirs`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from avtoolkit.data.grid_grammar import ID_CODES
from avtoolkit.errors import DatasetNotFoundError

#: 25 kHz alignment samples per 25 fps video frame.
SAMPLES_PER_FRAME = 1000
ALIGN_RATE = 25000
SILENCE = frozenset({"sil", "sp"})
VIDEO_SUFFIXES = (".mpg", ".mp4")


#: lhotse's fix-up map of the public release (alignment folder -> the speaker it belongs to),
#: tried first when a speaker's own folder does not match its clips.
LHOTSE_FIX_MAP = {
    "s5": "s6", "s6": "s5", "s10": "s13", "s11": "s10", "s12": "s11", "s13": "s12", "s14": "s15",
    "s15": "s14", "s18": "s19", "s19": "s18", "s20": "s21", "s22": "s23", "s23": "s22", "s26": "s27",
    "s27": "s26", "s28": "s29", "s29": "s28", "s32": "s33", "s33": "s32",
}

GRID_HELP = ("GRID (Cooke et al. 2006, CC BY 4.0) is at https://zenodo.org/record/3625687 ; point "
             "data.root at the folder holding s<N>/<id>.mpg (or .mp4) and alignments/s<N>/<id>.align")


class GridNotFoundError(DatasetNotFoundError):
    """``data.root`` is not a GRID tree (no ``s<N>/`` folders with clips)."""


@dataclass(frozen=True)
class AlignedWord:
    """One alignment line: a word and its span in 25 kHz samples (end exclusive)."""

    word: str
    start: int
    end: int

    @property
    def start_frame(self) -> float:
        """Start in 25 fps video frames."""
        return self.start / SAMPLES_PER_FRAME

    @property
    def end_frame(self) -> float:
        """End in 25 fps video frames."""
        return self.end / SAMPLES_PER_FRAME


@dataclass(frozen=True)
class GridClip:
    """One sentence: its files and its spoken words (silence dropped)."""

    speaker: str
    id: str
    video: Path
    audio: Path
    words: tuple[AlignedWord, ...]

    @property
    def key(self) -> str:
        """``speaker/id``, unique across speakers (ids repeat between speakers)."""
        return f"{self.speaker}/{self.id}"

    @property
    def transcript(self) -> str:
        return " ".join(w.word for w in self.words)

    @property
    def end_frame(self) -> float:
        """Where the last spoken word ends, in video frames."""
        return max((w.end_frame for w in self.words), default=0.0)


@dataclass
class LayoutReport:
    """What :func:`find_clips` found and what it could not use.

    Attributes:
        clips: usable clips.
        problems: ``(clip key, reason)`` for every clip left out (no alignment, an empty or
            unreadable one, a transcript that contradicts the id).
        alignment_dirs: speaker -> the alignment folder used (differs from the speaker
            where the release's folders are swapped).
    """

    clips: list[GridClip] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    alignment_dirs: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        moved = {s: d for s, d in self.alignment_dirs.items() if s != d}
        text = f"{len(self.clips)} clips, {len(self.problems)} left out"
        if moved:
            text += "; alignments taken from swapped folders: " + ", ".join(f"{s}<-{d}" for s, d in moved.items())
        return text


def sentence_from_id(clip_id: str) -> str | None:
    """The sentence a GRID clip id spells, or ``None`` if it is not a GRID id.

    Examples:
        >>> sentence_from_id("bbaf2n")
        'bin blue at f two now'
        >>> sentence_from_id("swwz9a")
        'set white with z nine again'
        >>> sentence_from_id("video1") is None
        True
    """
    if len(clip_id) != 6:
        return None
    words = [slot.get(c) for slot, c in zip(ID_CODES, clip_id.lower())]
    return None if None in words else " ".join(words)  # type: ignore[arg-type]


def parse_alignment(text: str, source: str = "<alignment>") -> list[AlignedWord]:
    """Parses a ``.align`` file's text (CRLF or LF lines ``start end word``), silences included.

    Raises:
        ValueError: a line that is not ``int int word``, or an end before its start (the
            message names ``source`` and the line).

    Examples:
        >>> [w.word for w in parse_alignment("0 23750 sil\\r\\n23750 29500 bin\\r\\n")]
        ['sil', 'bin']
    """
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not re.fullmatch(r"-?\d+", parts[0]) or not re.fullmatch(r"-?\d+", parts[1]):
            raise ValueError(f"{source}:{n}: expected 'start end word', got {line.strip()!r}")
        start, end = int(parts[0]), int(parts[1])
        if end < start:
            raise ValueError(f"{source}:{n}: end {end} is before start {start}")
        out.append(AlignedWord(parts[2].lower(), start, end))
    return out


def read_words(path: Path) -> tuple[AlignedWord, ...]:
    """The spoken words of a ``.align`` file (``sil``/``sp`` dropped)."""
    return tuple(w for w in parse_alignment(path.read_text(), str(path)) if w.word not in SILENCE)


def list_speakers(root: str | Path) -> list[str]:
    """Speaker folders ``s<N>`` under ``root`` that hold clips, in numeric order.

    Raises:
        GridNotFoundError: ``root`` is missing or holds none.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise GridNotFoundError(f"GRID root {root} does not exist. {GRID_HELP}")
    speakers = [p.name for p in root.iterdir() if p.is_dir() and re.fullmatch(r"s\d+", p.name)
                and any(p.glob("*.mp*"))]
    if not speakers:
        raise GridNotFoundError(f"no s<N>/ folders with .mpg or .mp4 clips under {root}. {GRID_HELP}")
    return sorted(speakers, key=lambda s: int(s[1:]))


def _videos(root: Path, speaker: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted((root / speaker).iterdir()):
        if path.suffix.lower() in VIDEO_SUFFIXES:
            out.setdefault(path.stem, path)  # .mpg sorts before .mp4: the original wins
    return out


def match_score(align_dir: Path, ids: Sequence[str], sample: int = 20) -> float:
    """Fraction of (up to ``sample``) clip ids whose alignment in ``align_dir`` says what the id spells.

    Ids that are not GRID ids (renamed files) are not counted; with none left the score is 1.
    """
    checked = [i for i in sorted(ids) if sentence_from_id(i) is not None][:sample]
    if not checked:
        return 1.0
    good = 0
    for i in checked:
        path = align_dir / f"{i}.align"
        try:
            good += path.is_file() and " ".join(w.word for w in read_words(path)) == sentence_from_id(i)
        except (ValueError, OSError, UnicodeDecodeError):
            pass
    return good / len(checked)


def resolve_alignment_dirs(root: str | Path, speakers: Iterable[str], threshold: float = 0.9) -> dict[str, str]:
    """Speaker -> the alignment folder whose files match that speaker's clip ids.

    A speaker's own ``alignments/<speaker>`` is used when at least ``threshold`` of a sample
    of its clips' alignments spell what their ids spell. Otherwise lhotse's fix-up partner
    is tried, then every other alignment folder; the best one above ``threshold`` wins. A
    speaker with no matching folder keeps its own (its clips are then reported one by one).
    """
    root = Path(root).expanduser()
    align_root = root / "alignments"
    folders = sorted(p.name for p in align_root.iterdir() if p.is_dir()) if align_root.is_dir() else []
    partner = {v: k for k, v in LHOTSE_FIX_MAP.items()}  # speaker -> folder holding its alignments
    out: dict[str, str] = {}
    for speaker in speakers:
        ids = list(_videos(root, speaker))
        if match_score(align_root / speaker, ids) >= threshold:
            out[speaker] = speaker
            continue
        candidates = [partner[speaker]] if speaker in partner else []
        candidates += [f for f in folders if f not in candidates and f != speaker]
        best, best_score = speaker, 0.0
        for folder in candidates:
            score = match_score(align_root / folder, ids)
            if score > best_score:
                best, best_score = folder, score
            if score >= 0.99:
                break
        out[speaker] = best if best_score >= threshold else speaker
    return out


def find_clips(root: str | Path, speakers: Sequence[str] | None = None, check_ids: bool = True) -> LayoutReport:
    """Every clip of ``speakers`` (default: all) with its alignment, audio file and words.

    Args:
        root: the GRID folder (holding ``s<N>/`` and ``alignments/``).
        speakers: ``["s1", "s2"]``; ``None`` for every speaker folder found.
        check_ids: leave out (and report) clips whose alignment contradicts their id.

    Returns:
        A :class:`LayoutReport`: clips sorted by key, problems, alignment folders used.

    Raises:
        GridNotFoundError: ``root`` holds no GRID speaker folders, or a named speaker has none.
    """
    root = Path(root).expanduser()
    found = list_speakers(root)
    speakers = list(speakers) if speakers is not None else found
    missing = [s for s in speakers if s not in found]
    if missing:
        raise GridNotFoundError(f"speakers {', '.join(missing)} have no clips under {root} "
                                f"(found: {', '.join(found)}). {GRID_HELP}")
    report = LayoutReport(alignment_dirs=resolve_alignment_dirs(root, speakers))
    for speaker in speakers:
        align_dir = root / "alignments" / report.alignment_dirs[speaker]
        for clip_id, video in _videos(root, speaker).items():
            key = f"{speaker}/{clip_id}"
            align = align_dir / f"{clip_id}.align"
            if not align.is_file():
                report.problems.append((key, f"no alignment {align}"))
                continue
            try:
                words = read_words(align)
            except (ValueError, UnicodeDecodeError) as exc:
                report.problems.append((key, f"unreadable alignment: {exc}"))
                continue
            if not words:
                report.problems.append((key, f"alignment {align} has no spoken words"))
                continue
            spelled = sentence_from_id(clip_id)
            said = " ".join(w.word for w in words)
            if check_ids and spelled is not None and said != spelled:
                report.problems.append((key, f"alignment says {said!r} but the id spells {spelled!r}"))
                continue
            wav = root / "audio_25k" / speaker / f"{clip_id}.wav"
            report.clips.append(GridClip(speaker, clip_id, video, wav if wav.is_file() else video, words))
    return report
