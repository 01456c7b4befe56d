"""``Transcriber``: a trained AV-ASR model (checkpoint or ONNX file) as a Python API.

Examples:
    A sketch (needs a trained checkpoint)::

        from avtoolkit.inference import Transcriber
        asr = Transcriber.from_checkpoint("runs/avasr-2024/checkpoints/best.ckpt")
        result = asr.transcribe(audio="clip.wav", video="clip.mp4", reference="bin blue at f two now")
        print(result.transcript, result.wer, result.cer, result.latency_ms)
        asr.transcribe(video="clip.mp4")            # lipreading only
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from avtoolkit.data.text import normalize_text
from avtoolkit.errors import CheckpointError, UsageError
from avtoolkit.objectives import objective_class

#: file kinds ``transcribe_manifest`` writes predictions as.
OUTPUT_FORMATS = (".jsonl", ".csv", ".tsv")


def check_output(path: str | os.PathLike[str]) -> Path:
    """``path`` if its suffix is one of :data:`OUTPUT_FORMATS`, else a :class:`UsageError`."""
    if Path(path).suffix.lower() not in OUTPUT_FORMATS:
        raise UsageError(f"{path}: predictions are written as {', '.join(OUTPUT_FORMATS)}; "
                         "name the output file with one of these")
    return Path(path)


def check_reference(text: str, name: str = "reference") -> str:
    """The normalised reference, or a :class:`UsageError` when it is empty or cannot be spelled.

    The same rule as manifest transcripts: WER of an empty reference is infinite, and a
    character outside the vocabulary (a digit) can never be predicted.

    Examples:
        >>> check_reference("Bin BLUE, now!")
        'bin blue now'
        >>> check_reference("", "--reference")
        Traceback (most recent call last):
        ...
        avtoolkit.errors.UsageError: --reference: the expected transcript is empty
    """
    from avtoolkit.data.text import CharVocab

    normalized = normalize_text(text)
    if not normalized:
        was = f" (was {text!r} before normalisation)" if text else ""
        raise UsageError(f"{name}: the expected transcript is empty{was}")
    bad = CharVocab().invalid_chars(normalized)
    if bad:
        raise UsageError(f"{name}: characters outside the vocabulary {''.join(bad)!r} in {normalized!r} "
                         "(spell digits and symbols as words)")
    return normalized


@dataclass
class Transcription:
    """One result.

    Attributes:
        transcript: the decoded text.
        latency_ms: model forward plus decoding time (media reading and feature
            extraction excluded; see ``preprocess_ms``).
        preprocess_ms: reading the media, the audio input (log-mel or waveform) and mouth cropping.
        modalities: the inputs that were used.
        reference: the normalised reference, when given.
        wer: word error rate against the reference.
        cer: character error rate against the reference.
    """

    transcript: str
    latency_ms: float
    preprocess_ms: float
    modalities: list[str]
    reference: str | None = None
    wer: float | None = None
    cer: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_rates(reference: str, hypothesis: str) -> tuple[float, float]:
    """WER and CER of one pair (torchmetrics).

    Examples:
        >>> error_rates("bin blue at f two now", "bin blue at f two now")
        (0.0, 0.0)
        >>> [round(x, 3) for x in error_rates("bin blue", "bin blu")]
        [0.5, 0.125]
    """
    from torchmetrics.functional.text import char_error_rate, word_error_rate

    return float(word_error_rate(hypothesis, reference)), float(char_error_rate(hypothesis, reference))


def _warn_if_int8_can_saturate(path: str | os.PathLike[str], model: Any) -> None:
    """A warning for an int8 graph whose arithmetic can saturate on this CPU (8-bit weights, no VNNI)."""
    import warnings

    from avtoolkit.hardware import cpu_flags
    from avtoolkit.inference.quantize import QUANT_META_KEY, saturation_warning

    meta = model.session.get_modelmeta().custom_metadata_map
    if QUANT_META_KEY in meta:
        message = saturation_warning(json.loads(meta[QUANT_META_KEY]), cpu_flags())
        if message:
            warnings.warn(f"{path}: {message}", RuntimeWarning, stacklevel=3)


class Transcriber:
    """Turns audio and/or video into text with a trained CTC (or hybrid CTC/attention) model.

    Use :meth:`from_checkpoint` (a run's ``best.ckpt``) or :meth:`from_onnx` (a file from
    ``avtoolkit export``); :meth:`load` picks by suffix. Either modality may be omitted
    when the model was trained with ``modality_dropout`` (or only has the other one).

    Args:
        model: a callable ``batch -> {"log_probs", "lengths"}`` (an ``AVModel`` in eval
            mode or an :class:`~avtoolkit.inference.runtime.OnnxModel`); its ``task`` (default
            ``ctc``) names the objective that builds the decoder.
        vocabulary: the CTC tokens, blank first.
        modalities: the inputs the model reads.
        recipe: the resolved recipe (its ``data`` section gives crop size and method, its
            ``decoding`` section the decoder).
        decoding: overrides the recipe's decoding settings (``{"name": "greedy"}``).
        device: where tensors go (PyTorch models).
        cache_dir: mouth-crop cache for video files (``None``: no cache).
    """

    def __init__(self, model: Any, vocabulary: Sequence[str], modalities: Sequence[str],
                 recipe: Mapping[str, Any] | None = None, decoding: Mapping[str, Any] | None = None,
                 device: str | torch.device = "cpu", cache_dir: str | os.PathLike[str] | None = None) -> None:
        from avtoolkit.data.audio_input import AudioInput
        from avtoolkit.recipe.audio_input import model_audio_input
        from avtoolkit.registry.describe import argument_default

        self.model = model
        self.vocabulary = list(vocabulary)
        self.modalities = sorted(modalities)
        self.recipe = dict(recipe or {})
        data = self.recipe.get("data") or {}
        # A run records these (INPUT_SETTINGS); an older or hand-made recipe that leaves one out
        # gets its dataset's own default, written once, there (looking it up imports the datasets).
        def setting(key: str) -> Any:
            return data[key] if key in data else argument_default("dataset", data.get("name", "manifest"), key)

        size = int(setting("video_size"))
        self.video_size = (size, size)
        self.crop_method = str(setting("crop_method"))
        self.decoding = {**(self.recipe.get("decoding") or {}), **(decoding or {})}
        # The model's objective builds the decoder: CTC reads log_probs alone, a hybrid model's
        # attention and joint decoders also run its attention decoder.
        task = str(getattr(model, "task", None) or "ctc")
        #: ``model outputs -> texts``
        self.decode = objective_class(task).build_decoder(self.decoding, self.vocabulary, model)
        self.device = torch.device(device)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        # What the audio encoder reads, from its class (Encoder.audio_input): an imported auto_avsr
        # ASR checkpoint gets the normalised waveform, the others log-mel, normalised as in training
        # (data.audio_norm). A recipe whose encoder is not registered here (an ONNX file from a
        # plugin) falls back on the data.audio_input its run recorded.
        kind = model_audio_input(self.recipe.get("model")) or str(data.get("audio_input", "log_mel"))
        #: the waveform -> model input step (:class:`~avtoolkit.data.audio_input.AudioInput`)
        self.audio = AudioInput(kind, str(data.get("audio_norm", "none")))
        self.log_mel = self.audio.log_mel
        self._cropper: Any = None

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu",
                        decoding: Mapping[str, Any] | None = None, **kwargs: Any) -> "Transcriber":
        """Loads a run's checkpoint (``best.ckpt``; EMA weights when the run used EMA).

        Raises:
            FileNotFoundError: no such checkpoint.
            CheckpointError: not a checkpoint, or its objective is not one that transcribes (CTC).
        """
        from avtoolkit.models.checkpoint import load_model

        loaded = load_model(path, device=device, command="transcribe")
        return cls(loaded.model, loaded.vocabulary, loaded.model.modalities, loaded.recipe.tree,
                   decoding=decoding, device=device, **kwargs)

    @classmethod
    def from_onnx(cls, path: str | os.PathLike[str], threads: int = 2,
                  decoding: Mapping[str, Any] | None = None, **kwargs: Any) -> "Transcriber":
        """Runs an ``.onnx`` file written by ``avtoolkit export`` with ONNX Runtime."""
        from avtoolkit.inference.runtime import OnnxModel
        from avtoolkit.models.checkpoint import accepts

        model = OnnxModel(path, threads=threads)
        if not accepts(model.task, "transcribe"):
            raise CheckpointError(f"{path}: a {model.task} graph; Transcriber needs a CTC model (e.g. recipes/avasr.yaml)")
        _warn_if_int8_can_saturate(path, model)
        return cls(model, model.info.vocabulary, model.info.modalities, model.info.recipe,
                   decoding=decoding, **kwargs)

    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs: Any) -> "Transcriber":
        """:meth:`from_onnx` for ONNX files (``.onnx`` in any case, or no PyTorch header), else :meth:`from_checkpoint`."""
        from avtoolkit.models.checkpoint import is_onnx_file

        return cls.from_onnx(path, **kwargs) if is_onnx_file(path) else cls.from_checkpoint(path, **kwargs)

    # -- inputs -----------------------------------------------------------------------
    def audio_features(self, audio: Any) -> Tensor:
        """The model's audio input from a media path or a 16 kHz waveform: log-mel ``[T, 40]``, or the
        waveform ``[S]`` normalised per utterance for an encoder that reads it (:attr:`audio`)."""
        source = str(audio) if isinstance(audio, (str, os.PathLike)) else "audio waveform"
        if isinstance(audio, (str, os.PathLike)):
            from avtoolkit.data.media import read_audio

            audio = read_audio(audio, sample_rate=16000)
        wave = torch.as_tensor(np.asarray(audio, dtype=np.float32) if not isinstance(audio, Tensor) else audio)
        if wave.dim() != 1:
            raise UsageError(f"audio waveform must be mono [samples], got shape {tuple(wave.shape)}")
        if wave.shape[0] < self.audio.min_samples:
            raise UsageError(f"{source}: {wave.shape[0]} samples ({wave.shape[0] / 16000 * 1000:.2f} ms) is too "
                             f"short to transcribe; it needs more than {self.audio.min_samples - 1} "
                             f"({(self.audio.min_samples - 1) / 16:.1f} ms at 16 kHz)")
        return self.audio(wave.float())

    def video_features(self, video: Any) -> Tensor:
        """Normalised mouth crops ``[T, 1, H, W]`` from a video path, ``.npy``/``.npz`` crops or uint8 ``[T, h, w]``."""
        from avtoolkit.data.video import check_crops, video_tensor

        if isinstance(video, (str, os.PathLike)):
            if self._cropper is None:
                from avtoolkit.roi import MouthCropper

                self._cropper = MouthCropper(size=self.video_size, method=self.crop_method)
            from avtoolkit.roi.load import load_mouth_rois

            video = load_mouth_rois(Path(video), self.cache_dir, self._cropper)
        else:
            from avtoolkit.data.media import MediaError

            rois = video.numpy() if isinstance(video, Tensor) else np.asarray(video)
            try:
                video = check_crops(rois, "video array")
            except MediaError as exc:
                raise UsageError(str(exc)) from None
        return video_tensor(video, self.video_size)

    def batch(self, items: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Tensor], list[str]]:
        """The model's batch for ``items`` (features padded, on the device) and the inputs used.

        Args:
            items: mappings with ``audio`` and/or ``video`` (as in :meth:`transcribe`); every
                item must give the same inputs.

        Returns:
            ``(batch, used)``: the batch dict, and the modalities the items give.

        Raises:
            UsageError: an input given for some items only, one the model cannot read, or none.
        """
        from avtoolkit.data.contract import pad_sequences

        used = [m for m in self.modalities if all(it.get(m) is not None for it in items)]
        partial = [m for m in self.modalities if m not in used and any(it.get(m) is not None for it in items)]
        if partial:
            raise UsageError(f"{partial[0]} is given for some items of the batch but not all; "
                             "split the batch by the inputs available")
        extra = sorted({k for it in items for k, v in it.items() if v is not None} - set(self.modalities) - {"reference"})
        if extra:
            raise UsageError(f"this model reads {self.modalities}; it cannot use {extra}")
        if not used:
            raise UsageError(f"give at least one of {self.modalities}")
        batch: dict[str, Tensor] = {}
        features: dict[str, list[Tensor]] = {}
        for m in used:
            make = self.audio_features if m == "audio" else self.video_features
            feats = features[m] = [make(it[m]) for it in items]
            batch[m], batch[f"{m}_lengths"] = pad_sequences(feats)
            batch[m] = batch[m].to(self.device)
            batch[f"{m}_lengths"] = batch[f"{m}_lengths"].to(self.device)
        if len(features) == 2:
            from avtoolkit.data.media import VIDEO_FPS, warn_if_lengths_differ

            for it, a, v in zip(items, features["audio"], features["video"]):
                names = [str(it[m]) for m in ("audio", "video") if isinstance(it.get(m), (str, os.PathLike))]
                warn_if_lengths_differ(self.audio.seconds(len(a)),
                                       len(v) / VIDEO_FPS, " and ".join(names) or "input")
        return batch, used

    # -- transcription ----------------------------------------------------------------
    def transcribe(self, audio: Any = None, video: Any = None, reference: str | None = None) -> Transcription:
        """Transcribes one utterance.

        Args:
            audio: a media path (wav, flac, mp3, mp4, mpg ...) or a 16 kHz mono waveform.
            video: a video path, precomputed crops (``.npy``/``.npz``), or uint8 crops ``[T, h, w]``.
            reference: the expected text; adds WER and CER to the result.

        Returns:
            A :class:`Transcription`.

        Raises:
            UsageError: neither input is given, or the model cannot read one that is.
            MediaError: a file cannot be read.
        """
        return self.transcribe_batch([{"audio": audio, "video": video, "reference": reference}])[0]

    def transcribe_batch(self, items: Sequence[Mapping[str, Any]]) -> list[Transcription]:
        """Transcribes several utterances in one forward pass.

        Args:
            items: mappings with ``audio``, ``video`` and optional ``reference`` keys (as
                in :meth:`transcribe`); every item must give the same inputs.

        Returns:
            One :class:`Transcription` per item (latencies are the batch's, per item).
        """
        if not items:
            return []
        start = time.perf_counter()
        batch, used = self.batch(items)
        prep_ms = (time.perf_counter() - start) * 1000 / len(items)
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.model(batch)
            texts = self.decode(out)
        latency = (time.perf_counter() - start) * 1000 / len(items)
        results = []
        for it, text in zip(items, texts):
            ref = it.get("reference")
            res = Transcription(transcript=text, latency_ms=latency, preprocess_ms=prep_ms, modalities=used)
            if ref is not None:
                res.reference = check_reference(ref)
                res.wer, res.cer = error_rates(res.reference, text)
            results.append(res)
        return results

    def transcribe_manifest(self, manifest: str | os.PathLike[str], output: str | os.PathLike[str] | None = None,
                            modalities: Sequence[str] | None = None, batch_size: int = 8,
                            max_utterances: int | None = None, skip_bad_lines: bool = False) -> dict[str, Any]:
        """Transcribes every line of a manifest and scores it.

        Args:
            manifest: an ``audio_path|video_path|transcript`` file.
            output: where to write one JSON line per utterance (id, reference, prediction,
                wer, cer); ``.csv`` writes the same columns as CSV, ``.tsv`` tab-separated
                ``id reference prediction``; another suffix is a :class:`UsageError`.
            modalities: use only these inputs (default: all the model reads).
            batch_size: utterances per forward pass.
            max_utterances: transcribe only the first this many lines (``None``: all).
            skip_bad_lines: skip malformed lines (reported in logs) instead of failing.

        Returns:
            ``{"wer": ..., "cer": ..., "utterances": N, "output": path}``; WER and CER are
            corpus-level (errors over all reference words / characters).
        """
        from torchmetrics.functional.text import char_error_rate, word_error_rate

        from avtoolkit.datasets.manifest.reader import read_manifest

        use = sorted(modalities or self.modalities)
        if output is not None:
            check_output(output)
        if max_utterances is not None and max_utterances < 1:
            raise UsageError(f"max_utterances must be at least 1, got {max_utterances}")
        utterances = read_manifest(manifest, modalities=use, skip_bad_lines=skip_bad_lines).utterances[:max_utterances]
        rows = []
        for i in range(0, len(utterances), batch_size):
            chunk = utterances[i:i + batch_size]
            items = [{"audio": u.audio if "audio" in use else None, "video": u.video if "video" in use else None,
                      "reference": u.transcript} for u in chunk]
            for utt, res in zip(chunk, self.transcribe_batch(items)):
                rows.append({"id": utt.id, "reference": utt.transcript, "prediction": res.transcript,
                             "wer": res.wer, "cer": res.cer})
        refs, hyps = [r["reference"] for r in rows], [r["prediction"] for r in rows]
        summary = {"wer": float(word_error_rate(hyps, refs)), "cer": float(char_error_rate(hyps, refs)),
                   "utterances": len(rows), "modalities": use, "output": str(output) if output else None}
        if output is not None:
            out = Path(output)
            out.parent.mkdir(parents=True, exist_ok=True)
            if out.suffix.lower() == ".tsv":
                out.write_text("id\treference\tprediction\n"
                               + "".join(f"{r['id']}\t{r['reference']}\t{r['prediction']}\n" for r in rows))
            elif out.suffix.lower() == ".csv":
                import csv

                with out.open("w", newline="", encoding="utf-8") as f:
                    writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["id"])
                    writer.writeheader()
                    writer.writerows(rows)
            else:
                out.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return summary
