"""Subtitles for a long recording: real GRID sentences joined with silence and a second face.

The recording is made at test time from four GRID s1 sentences and one of speaker s2 (the
second face), 1.2 s of silence and black frames between them. GRID's own word alignments
say where each sentence's speech lies, so the segment times are checked against them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avtoolkit import build_model
from avtoolkit.cli.main import main as cli
from avtoolkit.data.media import read_audio, read_video
from avtoolkit.data.text import CHARACTERS
from avtoolkit.inference.long_video import read_recording, resample_to_25fps, transcribe_recording
from avtoolkit.inference.transcriber import Transcriber
from tiny_models import TINY_AV_CTC

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
S1 = SHARED / "grid_s1"
GRID = SHARED / "grid"
pytestmark = pytest.mark.skipif(not (S1 / "s1").is_dir() or not (GRID / "video").is_dir(),
                                reason=f"GRID clips not found under {SHARED} (shared test data)")
pytest.importorskip("ai_edge_litert", reason="the landmarks extra (face tracks) is not installed")

# (video, alignment, sentence); the fourth is speaker s2: a second face.
CLIPS = [
    (S1 / "s1/bbaf2n.mp4", S1 / "alignments/s1/bbaf2n.align", "bin blue at f two now"),
    (S1 / "s1/bbaf4p.mp4", S1 / "alignments/s1/bbaf4p.align", "bin blue at f four please"),
    (S1 / "s1/bbal6n.mp4", S1 / "alignments/s1/bbal6n.align", "bin blue at l six now"),
    (GRID / "video/id2_vcd_swwp2s.mpg", GRID / "align/swwp2s.align", "set white with p two soon"),
    (S1 / "s1/bbal7s.mp4", S1 / "alignments/s1/bbal7s.align", "bin blue at l seven soon"),
]
GAP_S = 1.2


def _speech_span(align: Path) -> tuple[float, float]:
    words = [line.split() for line in align.read_text().splitlines() if line.strip()]
    words = [(int(a), int(b)) for a, b, w in words if w not in ("sil", "sp")]
    return words[0][0] / 25000, words[-1][1] / 25000  # 1000 units = one 40 ms frame


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from avtoolkit.demo.writer import write_mp4

    folder = tmp_path_factory.mktemp("long")
    gap_frames, sr = int(GAP_S * 25), 16000
    frames, audio, speech, clips = [], [], [], []
    t = 0.0
    for video, align, _ in CLIPS:
        rgb, _ = read_video(video)
        wave = read_audio(video, sr)[: len(rgb) * sr // 25]
        wave = np.pad(wave, (0, len(rgb) * sr // 25 - len(wave)))
        black = np.zeros((gap_frames, *rgb.shape[1:]), np.uint8)
        frames += [black, rgb]
        audio += [np.zeros(gap_frames * sr // 25, np.float32), wave]  # joined with digital silence
        t += GAP_S
        a, b = _speech_span(align)
        speech.append((t + a, t + b))
        clips.append((t, t + len(rgb) / 25))
        t += len(rgb) / 25
    frames.append(np.zeros((gap_frames, *rgb.shape[1:]), np.uint8))
    audio.append(np.zeros(gap_frames * sr // 25, np.float32))
    frames, audio = np.concatenate(frames), np.concatenate(audio)
    path, silent = folder / "long.mp4", folder / "silent.mp4"
    write_mp4(path, frames, audio, sr, crf=20)
    write_mp4(silent, frames, None, sr, crf=20)
    return {"folder": folder, "path": path, "silent": silent, "speech": speech, "clips": clips}


def _checkpoint(folder: Path, name: str, encoders: list[str], model_state=None) -> Path:
    model_cfg = {**TINY_AV_CTC, "encoders": {k: TINY_AV_CTC["encoders"][k] for k in encoders}}
    if len(encoders) == 1:
        model_cfg.pop("fusion")
    recipe = {"name": name, "model": model_cfg, "data": {"name": "manifest", "video_size": 32, "crop_method": "landmarks"},
              "decoding": {"name": "greedy"}}
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    if model_state is not None:
        model.load_state_dict(model_state)
    path = folder / f"{name}.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "avtoolkit": {"recipe": recipe, "vocabulary": CHARACTERS, "task": "ctc", "version": "test"}}, path)
    return path


def test_voice_activity_gives_one_segment_per_sentence_at_the_alignments(recording: dict, tmp_path: Path,
                                                                         capsys) -> None:
    ckpt = _checkpoint(recording["folder"], "av", ["audio", "video"])
    srt, vtt, js = tmp_path / "out.srt", tmp_path / "out.vtt", tmp_path / "out.json"
    assert cli(["transcribe", "--checkpoint", str(ckpt), str(recording["path"]), "--srt", str(srt),
                "--vtt", str(vtt), "--json", str(js)]) == 0
    assert "transcribing: 100%" in capsys.readouterr().err  # the progress bar
    segments = json.loads(js.read_text())["segments"]
    assert len(segments) == len(CLIPS), segments
    for seg, (start, end) in zip(segments, recording["speech"]):
        assert abs(seg["start"] - start) < 0.2 and abs(seg["end"] - end) < 0.2, (seg, start, end)
        assert seg["modalities"] == ["audio", "video"] and seg["cut_by"] == "voice"
    assert srt.read_text().count(" --> ") == len(CLIPS)
    assert vtt.read_text().startswith("WEBVTT") and "1 audio+video\n" in vtt.read_text()


def test_silent_video_is_cut_at_the_face_track_breaks(recording: dict) -> None:
    asr = Transcriber.from_checkpoint(_checkpoint(recording["folder"], "vsr", ["video"]))
    silent = read_recording(recording["silent"], need_video=True, need_audio=True)
    assert silent.audio is None  # no audio track: cut by face tracks
    cues = transcribe_recording(asr, silent, progress=False)
    assert len(cues) == len(CLIPS)
    for cue, (start, end) in zip(cues, recording["clips"]):
        assert abs(cue.start - start) < 0.2 and abs(cue.end - end) < 0.2, (cue, start, end)
        assert cue.modalities == ["video"] and cue.cut_by == "face"
    windows = transcribe_recording(asr, silent, progress=False, max_s=2.0, overlap_s=0.5)
    assert {c.cut_by for c in windows} == {"window"} and len(windows) == 2 * len(CLIPS)
    # the two windows of a track meet at the middle of their overlap (0.5 s): its words are kept once
    for first, second in zip(windows[::2], windows[1::2]):
        assert first.end == second.start and abs(second.start - first.start - 1.75) < 1e-6, (first, second)


def test_audio_only_model_and_bad_arguments(recording: dict, tmp_path: Path, capsys) -> None:
    ckpt = _checkpoint(recording["folder"], "asr", ["audio"])
    asr = Transcriber.from_checkpoint(ckpt)
    cues = transcribe_recording(asr, recording["path"], progress=False)
    assert len(cues) == len(CLIPS) and all(c.modalities == ["audio"] for c in cues)
    out = tmp_path / "x.srt"
    assert cli(["transcribe", "--checkpoint", str(ckpt), str(recording["path"]), "--srt", str(tmp_path / "x.txt")]) == 2
    assert cli(["transcribe", "--checkpoint", str(ckpt), str(tmp_path / "missing.mp4"), "--srt", str(out)]) == 2
    assert "missing.mp4" in capsys.readouterr().err and not out.exists()


def test_other_frame_rates_are_resampled_to_25() -> None:
    assert len(resample_to_25fps(np.arange(300), 30.0)) == 250  # 10 s
    assert resample_to_25fps(np.arange(5), 12.5).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]


@pytest.mark.slow
def test_a_small_grid_model_transcribes_the_long_video(recording: dict, tmp_path: Path) -> None:
    """A tiny audio model overfit on the five sentences subtitles the long video correctly.

    It is trained on the five utterances as the pipeline cuts them from the long recording
    (trained on the whole 3 s clips, with their leading and trailing silence, this tiny
    model transcribed the cut segments at 78% CER: it had learnt the clips' silences too).
    """
    import torch.nn.functional as F
    from torchmetrics.functional.text import char_error_rate

    from avtoolkit.data.contract import pad_sequences
    from avtoolkit.data.text import CharVocab

    ckpt = _checkpoint(recording["folder"], "asr_train", ["audio"])
    asr = Transcriber.from_checkpoint(ckpt)
    model = asr.model
    from avtoolkit.inference.long_video import find_utterances

    rec = read_recording(recording["path"], need_video=False, need_audio=True)
    spans = [span for span, _ in find_utterances(rec)]
    assert len(spans) == len(CLIPS)
    feats = [asr.audio_features(rec.audio[int(s.start * 16000):int(s.end * 16000)]) for s in spans]
    audio, lengths = pad_sequences(feats)
    texts = [t for _, _, t in CLIPS]
    targets = [torch.tensor(CharVocab().encode(t)) for t in texts]
    batch = {"audio": audio, "audio_lengths": lengths}
    flat, target_lengths = torch.cat(targets), torch.tensor([len(t) for t in targets])
    opt = torch.optim.Adam(model.parameters(), lr=0.005)
    torch.manual_seed(0)
    train_cer = 1.0
    for step in range(1, 401):
        model.train()
        out = model(batch)
        loss = F.ctc_loss(out["log_probs"].transpose(0, 1), flat, out["lengths"], target_lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0:
            with torch.no_grad():
                train_cer = float(char_error_rate(asr.decode(model.eval()(batch)), texts))
            if train_cer < 0.02:
                break
    assert train_cer < 0.05, f"the tiny model did not learn the clips: CER {train_cer:.2%} after {step} steps"
    trained = _checkpoint(recording["folder"], "asr_trained", ["audio"], model.eval().state_dict())
    js = tmp_path / "out.json"
    assert cli(["transcribe", "--checkpoint", str(trained), str(recording["path"]), "--json", str(js),
                "--no-progress"]) == 0
    got = [s["text"] for s in json.loads(js.read_text())["segments"]]
    assert len(got) == len(texts)
    cer = float(char_error_rate(got, texts))
    assert cer < 0.1, f"CER {cer:.2%}: {got}"
