"""Machine transcripts for an untranscribed corpus (VoxCeleb2), as auto_avsr labels it with an ASR model.

:func:`label_clips` runs a trained audio or audio-visual model (a run's checkpoint or its ONNX
export, through :class:`~avtoolkit.inference.transcriber.Transcriber`) over clips and writes a
labels file (:mod:`avtoolkit.datasets.voxceleb2.labels`) that records the model: its path,
SHA-256, recipe name, decoder settings and inputs. A long run can be stopped and started again:
finished lines go to ``<output>.partial`` as they come, a restart with the same model and decoder
continues from there, and the labels file itself appears only when every clip is done. Clips
that cannot be read are listed in ``<output>.failed.tsv``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from avtoolkit.errors import UsageError

log = logging.getLogger(__name__)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class LabelSummary:
    """What a labelling run did."""

    output: Path
    labelled: int = 0
    resumed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    model: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        text = f"labelled {self.labelled} clips ({self.resumed} from an earlier run), {len(self.failed)} failed -> {self.output}"
        return text + (f" (failures in {self.output}.failed.tsv)" if self.failed else "")


def model_record(checkpoint: str | os.PathLike[str], asr: Any, modalities: Sequence[str]) -> dict[str, Any]:
    """What the labels file says about the model that made it."""
    import avtoolkit

    return {"checkpoint": str(Path(checkpoint).resolve()), "sha256": file_sha256(checkpoint),
            "recipe": (asr.recipe or {}).get("name"), "decoding": dict(asr.decoding), "modalities": list(modalities),
            "avtoolkit": avtoolkit.__version__}


def label_clips(checkpoint: str | os.PathLike[str], clips: Sequence[tuple[str, Path]], output: str | os.PathLike[str],
                decoding: Mapping[str, Any] | None = None, modalities: Sequence[str] | None = None,
                batch_size: int = 8) -> LabelSummary:
    """Transcribes ``clips`` (``(key, media path)``) with a trained model and writes a labels file.

    Args:
        checkpoint: a run's ``best.ckpt`` or an ``.onnx`` export of a CTC or hybrid model.
        clips: the clips, e.g. :func:`~avtoolkit.datasets.voxceleb2.layout.find_videos`.
        output: the labels file to write.
        decoding: overrides of the recipe's decoding settings (``{"name": "beam", "beam_size": 10}``).
        modalities: inputs to use (default: every input the model reads); the clip's file gives both.
        batch_size: clips per forward pass.

    Returns:
        A :class:`LabelSummary`.

    Raises:
        UsageError: ``modalities`` names an input the model does not read, or ``<output>.partial``
            was written by another model or decoder.
    """
    from avtoolkit.datasets.voxceleb2.labels import header, read_labels, write_labels
    from avtoolkit.inference.transcriber import Transcriber

    output = Path(output)
    asr = Transcriber.load(checkpoint, decoding=dict(decoding or {}))
    used = list(modalities or asr.modalities)
    wrong = [m for m in used if m not in asr.modalities]
    if wrong:
        raise UsageError(f"--modalities {' '.join(used)}: {checkpoint} reads {', '.join(asr.modalities)}, not {', '.join(wrong)}")
    record = model_record(checkpoint, asr, used)
    summary = LabelSummary(output=output, model=record)
    partial = output.with_name(output.name + ".partial")
    done: dict[str, str] = {}
    if partial.is_file():
        previous = read_labels(partial)
        same = {k: previous.model.get(k) for k in ("sha256", "decoding", "modalities")} == \
               {k: record[k] for k in ("sha256", "decoding", "modalities")}
        if not same:
            raise UsageError(f"{partial} was written by another model or decoder ({json.dumps(previous.model)}); "
                             "delete it to start again, or label with that model")
        done = dict(previous.transcripts)
        summary.resumed = len(done)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(header(record), encoding="utf-8")
    todo = [(k, p) for k, p in clips if k not in done]
    with open(partial, "a", encoding="utf-8") as fh:
        for i in range(0, len(todo), batch_size):
            chunk = todo[i:i + batch_size]
            for (key, path), text in _transcribe(asr, chunk, used, summary):
                done[key] = text
                fh.write(f"{key}\t{text}\n")
            fh.flush()
    wanted = [k for k, _ in clips]
    write_labels(output, record, [(k, done[k]) for k in wanted if k in done and done[k]])
    empty = [k for k in wanted if k in done and not done[k]]
    summary.failed += [(k, "the model heard no words") for k in empty]
    summary.labelled = sum(1 for k in wanted if done.get(k))
    if summary.failed:
        from avtoolkit.atomic import atomic_write

        with atomic_write(output.with_name(output.name + ".failed.tsv"), "w") as out:
            out.write("clip\treason\n" + "".join(f"{k}\t{r}\n" for k, r in sorted(summary.failed)))
    partial.unlink()
    return summary


def _transcribe(asr: Any, chunk: Sequence[tuple[str, Path]], used: Sequence[str],
                summary: LabelSummary) -> list[tuple[tuple[str, Path], str]]:
    """Transcripts of one batch; on a failure, clip by clip, so one unreadable clip costs only itself."""
    from avtoolkit.data.text import normalize_text

    items = [{m: path for m in used} for _, path in chunk]
    try:
        return list(zip(chunk, (normalize_text(r.transcript) for r in asr.transcribe_batch(items))))
    except Exception:
        pass  # found below, clip by clip
    out = []
    for clip, item in zip(chunk, items):
        try:
            out.append((clip, normalize_text(asr.transcribe_batch([item])[0].transcript)))
        except Exception as exc:  # a broken clip among millions is reported, not fatal
            summary.failed.append((clip[0], f"{type(exc).__name__}: {exc}".replace("\t", " ").replace("\n", " ")))
    return out
