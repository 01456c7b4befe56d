"""Manifest files for sentence-level AV-ASR: ``audio_path|video_path|transcript`` per line.

Paths are relative to the manifest file (absolute paths work too). Blank lines and lines
starting with ``#`` are ignored. A field may be empty when its modality is not used (an
audio-only manifest: ``a.wav||bin blue at f two now``). The video field may name a video
file or precomputed mouth crops (``.npy``/``.npz`` holding uint8 ``[T, H, W]``). A ``|``
inside a path is written ``\\|``. The file is UTF-8 (a byte-order mark is allowed).

Transcripts are normalised with :func:`avtoolkit.data.text.normalize_text` (lower case,
punctuation removed; see that module). A bad line (wrong field count, missing file, empty
transcript, a character outside the vocabulary after normalisation, such as a digit) is
an error naming the manifest and the line number, or, with ``skip_bad_lines=True``, is
kept in :attr:`Manifest.skipped` so the caller reports it: never silently dropped.
"""

from __future__ import annotations

from avtoolkit.errors import AvtoolkitError

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from avtoolkit.data.text import CharVocab, normalize_text

MODALITIES = ("audio", "video")
#: a field separator: a ``|`` not escaped as ``\|``.
_SEPARATOR = re.compile(r"(?<!\\)\|")


class ManifestError(AvtoolkitError, ValueError):
    """A manifest line is malformed; the message reads ``file:line: reason``."""


@dataclass(frozen=True)
class Utterance:
    """One manifest example.

    Attributes:
        id: a name for reports (the video or audio file stem, made unique by line number
            when stems repeat).
        audio: absolute audio path, or ``None`` when the manifest gives none.
        video: absolute video (or mouth-crop ``.npy``/``.npz``) path, or ``None``.
        transcript: the normalised transcript.
        line: line number in the manifest (1-based).
    """

    id: str
    audio: Path | None
    video: Path | None
    transcript: str
    line: int


@dataclass
class Manifest:
    """A parsed manifest: the good utterances and the skipped lines with reasons."""

    path: Path
    utterances: list[Utterance] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.utterances)

    def summary(self) -> str:
        """One line for logs, e.g. ``train.txt: 120 utterances, 2 bad lines skipped``."""
        text = f"{self.path}: {len(self.utterances)} utterances"
        return text + (f", {len(self.skipped)} bad lines skipped" if self.skipped else "")


def _resolve(field_text: str, base: Path) -> Path:
    p = Path(os.path.expanduser(field_text))
    return p if p.is_absolute() else base / p


def _parse_line(text: str, lineno: int, base: Path, modalities: Iterable[str], vocab: CharVocab) -> Utterance:
    fields = _SEPARATOR.split(text)
    if len(fields) != 3:
        hint = (" (a '|' inside a file name is written '\\|')" if len(fields) > 3 else "")
        raise ValueError(f"expected 3 fields 'audio_path|video_path|transcript', found {len(fields)}{hint}")
    audio_text, video_text, raw = (f.strip().replace("\\|", "|") for f in fields)
    paths: dict[str, Path | None] = {}
    for modality, value in zip(MODALITIES, (audio_text, video_text)):
        if not value:
            if modality in modalities:
                raise ValueError(f"empty {modality} path, but the dataset uses {modality}")
            paths[modality] = None
            continue
        path = _resolve(value, base)
        if modality in modalities and not path.is_file():
            raise ValueError(f"{modality} file not found: {path}")
        paths[modality] = path
    transcript = normalize_text(raw)
    if not transcript:
        raise ValueError(f"empty transcript{f' (was {raw!r} before normalisation)' if raw else ''}")
    bad = vocab.invalid_chars(transcript)
    if bad:
        raise ValueError(f"characters outside the vocabulary {''.join(bad)!r} in {transcript!r} "
                         "(spell digits and symbols as words)")
    stem_source = paths["video"] or paths["audio"]
    assert stem_source is not None
    return Utterance(id=stem_source.stem, audio=paths["audio"], video=paths["video"],
                     transcript=transcript, line=lineno)


def _read_lines(path: Path) -> list[str]:
    """The manifest's lines (UTF-8, a byte-order mark dropped); an undecodable line names itself."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ManifestError(f"{path}:{lineno}: not UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); "
                            f"re-save the file as UTF-8 (from Latin-1: iconv -f latin1 -t utf-8)") from None


def read_manifest(path: str | os.PathLike[str], modalities: Iterable[str] = MODALITIES,
                  skip_bad_lines: bool = False, vocab: CharVocab | None = None) -> Manifest:
    """Reads and checks a manifest.

    Args:
        path: the manifest file.
        modalities: the modalities whose files must exist (``["audio"]`` for audio-only).
        skip_bad_lines: keep going past bad lines, collecting ``"file:line: reason"`` in
            :attr:`Manifest.skipped`; otherwise the first bad line raises.
        vocab: the CTC vocabulary transcripts must fit (default: characters a-z, space, ').

    Returns:
        The :class:`Manifest`.

    Raises:
        FileNotFoundError: the manifest itself does not exist.
        ManifestError: a bad line (``file:line: reason``) when ``skip_bad_lines`` is false,
            or no usable line at all.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.wav").write_bytes(b"x")
        >>> _ = (folder / "list.txt").write_text("a.wav||Bin BLUE, now!\\na.wav||f 2\\n")
        >>> m = read_manifest(folder / "list.txt", modalities=["audio"], skip_bad_lines=True)
        >>> [u.transcript for u in m.utterances], len(m.skipped)
        (['bin blue now'], 1)
        >>> m.skipped[0].endswith("list.txt:2: characters outside the vocabulary '2' in 'f 2' "
        ...                       "(spell digits and symbols as words)")
        True
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    modalities = [m for m in modalities]
    unknown = sorted(set(modalities) - set(MODALITIES))
    if unknown or not modalities:
        raise ValueError(f"modalities must be a non-empty subset of {list(MODALITIES)}, got {modalities}")
    vocab = vocab or CharVocab()
    manifest = Manifest(path=path)
    seen: dict[str, int] = {}
    base = path.parent
    for lineno, text in enumerate(_read_lines(path), start=1):
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        try:
            utt = _parse_line(text, lineno, base, modalities, vocab)
        except ValueError as exc:
            message = f"{path}:{lineno}: {exc}"
            if not skip_bad_lines:
                raise ManifestError(message) from None
            manifest.skipped.append(message)
            continue
        if utt.id in seen:
            utt = Utterance(f"{utt.id}@{lineno}", utt.audio, utt.video, utt.transcript, utt.line)
        seen[utt.id] = lineno
        manifest.utterances.append(utt)
    if not manifest.utterances:
        raise ManifestError(f"{path}: no usable line" + (f" ({len(manifest.skipped)} bad lines skipped, "
                                                         f"first: {manifest.skipped[0]})" if manifest.skipped else ""))
    return manifest
