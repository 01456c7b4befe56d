"""Bad media, mouth crops, manifests and command-line values given to inference commands.

Each row is a mistake a user makes with ``avtoolkit transcribe`` (or ``predict``, ``eval``,
``demo-data``): the answer is one message naming the file (and line or option), exit 2, no
traceback, and nothing in the workspace changed. Inputs the toolkit can still use but that
are probably wrong (a truncated video, audio much longer than the video, float crops) are
used with a warning that says what was found.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from avtoolkit import build_model
from avtoolkit.cli.main import main
from avtoolkit.data.text import CHARACTERS



def snapshot(root: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``root``."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


TINY = {
    "encoders": {"audio": {"name": "audio_cnn", "channels": [4, 4, 4], "hidden_dim": 16, "dropout": 0.0},
                 "video": {"name": "video_cnn", "channels": [4, 4, 4], "hidden_dim": 16, "dropout": 0.0}},
    "fusion": {"name": "adaptive", "dim": 16, "modality_dropout": 0.0},
    "backends": [{"name": "tcn", "channels": 16, "layers": 1, "kernel_size": 3, "dropout": 0.0}],
    "head": {"name": "ctc"},
}
FPS = 25


def write_wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes((3000 * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes())
    return path


def write_video(path: Path, frames: int, codec: str = "mpeg4", size: int = 64) -> Path:
    """A silent video (PyAV): a bright square moving over grey; mp4 index first (``faststart``)."""
    import av

    options = {"movflags": "faststart"} if path.suffix == ".mp4" else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream(codec, rate=FPS)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            img = np.full((size, size, 3), 90, np.uint8)
            img[20:40, i % 40:i % 40 + 20] = 220
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def av_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny audio-visual CTC model in the engine's checkpoint layout."""
    folder = tmp_path_factory.mktemp("avckpt")
    recipe = {"name": "tiny_av", "model": TINY, "decoding": {"name": "greedy"},
              "data": {"name": "manifest", "video_size": 32, "crop_method": "fixed"}}
    torch.manual_seed(0)
    model = build_model(recipe).eval()
    path = folder / "tiny.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "avtoolkit": {"recipe": recipe, "vocabulary": CHARACTERS, "task": "ctc", "version": "test"}}, path)
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("media")
    write_wav(folder / "tone.wav", 1.0)
    write_wav(folder / "long.wav", 30.0)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "text.wav").write_text("these are my notes, not audio\n")
    # A wav cut off at an odd byte: its header declares 3200 samples, 1600 and a half are left.
    data = write_wav(folder / "odd_src.wav", 0.1).read_bytes()[44:] + b"\x01"
    header = b"RIFF" + struct.pack("<I", 36 + 6400) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16) + b"data" + struct.pack("<I", 6400)
    (folder / "odd.wav").write_bytes(header + data)
    (folder / "odd_src.wav").unlink()
    write_video(folder / "silent.mp4", 25)
    whole = write_video(folder / "full.mpg", 75, codec="mpeg1video").read_bytes()
    (folder / "truncated.mpg").write_bytes(whole[: len(whole) // 3])
    whole = write_video(folder / "full.mp4", 75).read_bytes()
    (folder / "truncated.mp4").write_bytes(whole[: len(whole) * 2 // 3])
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (25, 32, 32), dtype=np.uint8)
    np.save(folder / "crops.npy", crops)
    np.save(folder / "float01.npy", crops.astype(np.float32) / 255)
    np.save(folder / "int16.npy", crops.astype(np.int16) * 300)
    np.save(folder / "flat.npy", crops.reshape(25, -1))
    np.savez(folder / "labels.npz", labels=np.arange(5), rois=crops)
    np.savez(folder / "nothing.npz", labels=np.arange(5), weights=np.ones((3, 3)))
    write_wav(folder / "one.wav", 1 / 16000)  # a single sample
    (folder / "lexicon.bin").write_bytes(bytes(range(256)) * 4)
    np.save(folder / "nan_landmarks.npy", np.full((75, 68, 2), np.nan))
    np.save(folder / "short_landmarks.npy", np.full((3, 68, 2), 30.0))
    (folder / "folder.csv").mkdir()  # folders named like the files a command writes
    (folder / "folder.png").mkdir()
    (folder / "folder.onnx").mkdir()
    return folder


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses a value before any handler runs
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# (id, argv after the checkpoint, what the message must name); {m} is the media folder.
REFUSED = [
    ("zero-byte-audio", ["--audio", "{m}/empty.wav"], ["{m}/empty.wav", "empty"]),
    ("text-named-wav", ["--audio", "{m}/text.wav"], ["{m}/text.wav"]),
    ("video-without-audio-track", ["--audio", "{m}/silent.mp4"], ["{m}/silent.mp4", "no audio track"]),
    ("int16-crops-out-of-range", ["--video", "{m}/int16.npy"], ["{m}/int16.npy", "int16", "0..255"]),
    ("crops-of-the-wrong-shape", ["--video", "{m}/flat.npy"], ["{m}/flat.npy", "[frames, height, width]"]),
    ("npz-without-crops", ["--video", "{m}/nothing.npz"], ["{m}/nothing.npz", "rois", "labels", "weights"]),
    ("empty-reference", ["--audio", "{m}/tone.wav", "--reference", ""], ["--reference", "empty"]),
    ("reference-with-digits", ["--audio", "{m}/tone.wav", "--reference", "place f 2 now"],
     ["--reference", "'2'", "spell digits"]),
    ("one-sample-wav", ["--audio", "{m}/one.wav"], ["{m}/one.wav", "1 samples", "too short"]),
    ("binary-lexicon", ["--audio", "{m}/tone.wav", "--decoder", "beam", "--lexicon", "{m}/lexicon.bin"],
     ["{m}/lexicon.bin", "not UTF-8"]),
    ("modalities-video-without-video", ["--audio", "{m}/tone.wav", "--modalities", "video"],
     ["--modalities video", "--video"]),
    ("output-is-an-existing-folder", ["--manifest", "{m}/list.txt", "--output", "{m}/folder.csv"],
     ["--output", "{m}/folder.csv", "existing folder"]),
    ("output-of-unknown-format", ["--manifest", "{m}/list.txt", "--output", "{m}/preds.xlsx"],
     ["{m}/preds.xlsx", ".jsonl", ".tsv", ".csv"]),
]


@pytest.mark.parametrize("argv,names", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_transcribe_refuses_bad_input_with_one_message(argv, names, av_checkpoint: Path, media: Path, capsys):
    (media / "list.txt").write_text("tone.wav|crops.npy|bin blue\n")
    before = snapshot(media)
    code, out, err = run(["transcribe", "--checkpoint", str(av_checkpoint),
                          *[a.replace("{m}", str(media)) for a in argv]], capsys)
    assert code == 2, out + err
    assert "Traceback" not in err
    assert err.startswith("avtoolkit transcribe: error:"), err
    for name in names:
        assert name.replace("{m}", str(media)) in err, err
    assert snapshot(media) == before


def test_a_wav_with_a_dangling_byte_is_read_and_named(media: Path, caplog):
    from avtoolkit.data.media import read_audio

    with caplog.at_level(logging.WARNING):
        samples = read_audio(media / "odd.wav")
    assert len(samples) == 1600
    assert str(media / "odd.wav") in caplog.text and "truncated" in caplog.text, caplog.text
    assert "0.10 s of the 0.20 s its header declares" in caplog.text, caplog.text


@pytest.mark.parametrize("suffix", [".mpg", ".mp4"])
def test_a_truncated_video_is_used_with_its_decoded_and_declared_length(suffix: str, media: Path, caplog):
    from avtoolkit.data.media import read_video

    with caplog.at_level(logging.WARNING):
        full, _ = read_video(media / f"full{suffix}")
    assert len(full) == 75 and caplog.text == ""
    with caplog.at_level(logging.WARNING):
        frames, fps = read_video(media / f"truncated{suffix}")
    assert 0 < len(frames) < 75
    assert str(media / f"truncated{suffix}") in caplog.text and "truncated" in caplog.text
    assert f"decoded {len(frames)} frames ({len(frames) / 25:.2f} s)" in caplog.text, caplog.text
    if suffix == ".mp4":  # an MPEG program stream declares no length
        assert "of the 75 frames (3.00 s) its header declares" in caplog.text, caplog.text


def test_shipped_grid_clips_are_not_called_truncated(caplog):
    from avtoolkit.data.media import _mpeg_ps_cut

    clips = sorted((Path(__file__).resolve().parents[3] / "shared" / "data" / "grid" / "video").glob("*.mpg"))
    if not clips:
        pytest.skip("GRID sample clips not found in ../shared/data/grid (shared test data)")
    assert [c.name for c in clips if _mpeg_ps_cut(c)] == []


def test_audio_much_longer_than_the_video_is_warned_about(av_checkpoint: Path, media: Path, capsys, caplog):
    with caplog.at_level(logging.WARNING):
        code, out, _ = run(["transcribe", "--checkpoint", str(av_checkpoint), "--audio", str(media / "long.wav"),
                            "--video", str(media / "crops.npy")], capsys)
    assert code == 0
    assert "audio lasts 30.0" in caplog.text and "the video 1.00 s" in caplog.text, caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert run(["transcribe", "--checkpoint", str(av_checkpoint), "--audio", str(media / "tone.wav"),
                    "--video", str(media / "crops.npy")], capsys)[0] == 0
    assert "lasts" not in caplog.text


@pytest.mark.parametrize("name", ["float01.npy", "labels.npz"])
def test_crops_given_as_floats_or_under_their_name_are_the_same_input(name: str, av_checkpoint: Path, media: Path,
                                                                      caplog):
    from avtoolkit.inference.transcriber import Transcriber

    asr = Transcriber.load(av_checkpoint)
    reference = asr.video_features(media / "crops.npy")
    with caplog.at_level(logging.WARNING):
        got = asr.video_features(media / name)
    torch.testing.assert_close(got, reference, atol=0.05, rtol=0)  # float rounding: < 1 grey level
    assert got.std() > 0.5  # not the constant input float crops gave before
    if name == "float01.npy":
        assert str(media / name) in caplog.text and "float32 in [0, 1]" in caplog.text, caplog.text


def test_transcribe_manifest_writes_real_csv(av_checkpoint: Path, media: Path, capsys):
    import csv

    (media / "list.txt").write_text("tone.wav|crops.npy|bin blue\ntone.wav|crops.npy|lay red, at g\n")
    out = media / "preds.csv"
    code, _, err = run(["transcribe", "--checkpoint", str(av_checkpoint), "--manifest", str(media / "list.txt"),
                        "--output", str(out)], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(out.open(newline="")))
    assert [r["reference"] for r in rows] == ["bin blue", "lay red at g"]
    assert set(rows[0]) == {"id", "reference", "prediction", "wer", "cer"}
    out.unlink()


def test_transcribe_json_is_valid_json(av_checkpoint: Path, media: Path, capsys):
    import json

    code, out, _ = run(["transcribe", "--checkpoint", str(av_checkpoint), "--audio", str(media / "tone.wav"),
                        "--reference", "bin blue", "--json"], capsys)
    assert code == 0
    json.loads(out, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))


CLI_VALUES = [
    ("predict-top-0", ["predict", "clip.mp4", "--checkpoint", "best.ckpt", "--top", "0"], ["--top", "'0'"]),
    ("demo-data-workers", ["demo-data", "{m}/demo", "--workers", "-1"], ["--workers", "'-1'"]),
    ("prepare-workers", ["prepare", "lrw", "--workers", "0"], ["--workers", "'0'"]),
    ("eval-xlsx", ["eval", "--checkpoint", "{m}/tone.wav", "--save-predictions", "{m}/x.xlsx"], ["{m}/x.xlsx", ".csv"]),
    ("transcribe-beam-size-0", ["transcribe", "--checkpoint", "best.ckpt", "--audio", "{m}/tone.wav",
                                "--beam-size", "0"], ["--beam-size", "'0'"]),
    ("crops-scale-nan", ["crops", "{m}/full.mp4", "--out", "{m}/sheet.png", "--scale", "nan"], ["--scale", "'nan'"]),
    ("crops-out-jpg", ["crops", "{m}/full.mp4", "--out", "{m}/sheet.jpg"], ["--out", "{m}/sheet.jpg", "*.png"]),
    ("crops-out-folder", ["crops", "{m}/full.mp4", "--out", "{m}/folder.png"], ["--out", "{m}/folder.png", "folder"]),
    ("summary-frames-0", ["summary", "grid_audio", "--frames", "0"], ["--frames", "'0'"]),
    ("export-atol-negative", ["export", "--checkpoint", "best.ckpt", "--output", "{m}/m.onnx", "--atol", "-1"],
     ["--atol", "'-1'"]),
    ("export-output-folder", ["export", "--checkpoint", "{m}/tone.wav", "--output", "{m}/folder.onnx"],
     ["--output", "{m}/folder.onnx", "existing folder"]),
    ("noise-eval-out-a-file", ["noise-eval", "--checkpoint", "{m}/tone.wav", "--out", "{m}/tone.wav"],
     ["--out", "{m}/tone.wav", "existing file"]),
    ("demo-data-out-a-file", ["demo-data", "{m}/tone.wav", "--size", "tiny"], ["OUT", "{m}/tone.wav", "existing file"]),
    ("predict-device-banana", ["predict", "{m}/full.mp4", "--checkpoint", "best.ckpt", "--device", "banana"],
     ["--device banana", "not a device"]),
    ("predict-device-cuda-7", ["predict", "{m}/full.mp4", "--checkpoint", "best.ckpt", "--device", "cuda:7"],
     ["--device cuda:7", "this machine has"]),
    ("crops-nan-landmarks", ["crops", "{m}/full.mp4", "--out", "{m}/sheet.png", "--landmarks",
                             "{m}/nan_landmarks.npy"], ["{m}/nan_landmarks.npy", "every point is NaN"]),
    ("crops-too-few-landmarks", ["crops", "{m}/full.mp4", "--out", "{m}/sheet.png", "--landmarks",
                                 "{m}/short_landmarks.npy"], ["{m}/short_landmarks.npy", "T=75", "(3, 68, 2)"]),
    ("demo-data-seed-negative", ["demo-data", "{m}/demo", "--seed", "-1"], ["--seed", "'-1'"]),
]


@pytest.mark.parametrize("argv,names", [c[1:] for c in CLI_VALUES], ids=[c[0] for c in CLI_VALUES])
def test_out_of_range_option_values_are_refused(argv, names, media: Path, capsys):
    before = snapshot(media)
    code, out, err = run([a.replace("{m}", str(media)) for a in argv], capsys)
    assert code == 2
    assert "Traceback" not in err
    for name in names:
        assert name.replace("{m}", str(media)) in err, err
    assert snapshot(media) == before


def test_modalities_choose_among_the_inputs_given(av_checkpoint: Path, media: Path, capsys):
    code, out, err = run(["transcribe", "--checkpoint", str(av_checkpoint), "--audio", str(media / "tone.wav"),
                          "--video", str(media / "crops.npy"), "--modalities", "video", "--json"], capsys)
    assert code == 0, err
    import json

    assert json.loads(out)["modalities"] == ["video"]  # not answered from the audio


def test_a_fixed_crop_checkpoint_says_it_looks_for_no_face(av_checkpoint: Path, media: Path, capsys, caplog):
    with caplog.at_level(logging.WARNING):
        code, _, err = run(["transcribe", "--checkpoint", str(av_checkpoint), "--video", str(media / "full.mp4")],
                           capsys)
    assert code == 0, err
    assert "data.crop_method: fixed" in caplog.text and "no face" in caplog.text, caplog.text
    with pytest.raises(SystemExit):
        main(["transcribe", "--help"])
    helptext = " ".join(capsys.readouterr().out.split())
    assert "found by face detection" not in helptext and "data.crop_method" in helptext
