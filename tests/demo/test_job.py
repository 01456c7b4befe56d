"""The main job (``avtoolkit demo``): its table, its report files, and how a failed step shows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from avtoolkit.data.augment import babble
from avtoolkit.data.media import read_audio
from avtoolkit.demo import generate_corpus
from avtoolkit.demo.job import PHASES, results_table, run_demo

ONE_EPOCH = ["trainer.max_epochs=1", "data.workers=0"]


def _results(lrw_top1: float, cer: float, wer_ao_0db: float, wer_av_0db: float) -> dict:
    curve = {"clean": {"wer": 0.05, "cer": cer}, "0": {"wer": wer_av_0db, "cer": 0.1}}
    return {
        "lrw": {"top1": lrw_top1},
        "avasr": {"clean_cer": cer, "clean_wer": 0.05},
        "noise": {"audio-only": {"clean": {"wer": 0.04, "cer": 0.02}, "0": {"wer": wer_ao_0db, "cer": 0.3}},
                  "video-only": {"clean": {"wer": 0.5, "cer": 0.3}, "0": {"wer": 0.5, "cer": 0.3}},
                  "audio-visual": curve},
        "phase_seconds": {p: 10.0 for p in PHASES},
        "seconds": 40.0,
    }


def _row(table: str, start: str) -> str:
    rows = [line for line in table.splitlines() if line.startswith(start)]
    assert len(rows) == 1, f"no single row starting with {start!r} in\n{table}"
    return rows[0]


def test_table_says_which_targets_are_missed() -> None:
    table = results_table(_results(lrw_top1=0.85, cer=0.08, wer_ao_0db=0.40, wer_av_0db=0.10))
    assert _row(table, "LRW demo top-1").split()[-1] == "MISSED" and "85.0%" in _row(table, "LRW demo top-1")
    assert _row(table, "AV-ASR clean CER").split()[-1] == "met"
    assert _row(table, "AV / audio-only WER at 0 dB").split()[-4:] == ["0.250", "<=", "0.50", "met"]
    assert _row(table, "time: total").split()[-1] == "40s"


def test_av_worse_than_half_of_audio_only_is_missed() -> None:
    table = results_table(_results(lrw_top1=0.95, cer=0.12, wer_ao_0db=0.20, wer_av_0db=0.15))
    assert _row(table, "AV / audio-only WER at 0 dB").endswith("MISSED")
    assert _row(table, "AV-ASR clean CER").endswith("MISSED")
    assert _row(table, "LRW demo top-1").endswith("met")


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo_noise") / "corpus"
    generate_corpus(out, size="tiny", seed=3, workers=1)
    return out


def test_babble_is_speech_shaped_not_white(tiny_corpus: Path) -> None:
    """Babble from the corpus's sentences keeps most energy under 1 kHz, as speech does; white noise 1/8."""
    waves = [torch.from_numpy(read_audio(p)) for p in sorted((tiny_corpus / "sentences" / "train").glob("*.wav"))[:4]]
    noise = babble(waves, 32000).numpy()
    power = np.abs(np.fft.rfft(noise)) ** 2
    below_1khz = power[: len(power) // 8].sum() / power.sum()
    assert below_1khz > 0.5
    assert len(noise) == 32000 and math.isclose(float(np.sqrt(np.mean(noise**2))), 2.0, rel_tol=0.6)


def test_babble_test_noise_is_reproducible_and_hurts(tiny_corpus: Path) -> None:
    from avtoolkit.datasets.manifest.datamodule import ManifestDataModule

    def first_test_audio(**kwargs: object) -> torch.Tensor:
        dm = ManifestDataModule(test=str(tiny_corpus / "sentences" / "test.txt"), crop_method="fixed",
                                modalities=["audio"], **kwargs)  # type: ignore[arg-type]
        dm.setup("test")
        return dm.splits["test"][0]["audio"]

    clean = first_test_audio()
    noisy = first_test_audio(test_noise_snr_db=0.0, noise_type="babble")
    assert torch.equal(noisy, first_test_audio(test_noise_snr_db=0.0, noise_type="babble"))
    assert not torch.allclose(noisy, clean, atol=0.5)
    with pytest.raises(ValueError, match="noise_type.*pink.*white, babble"):
        first_test_audio(noise_type="pink")


@pytest.mark.slow
def test_tiny_demo_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole job at tiny size, one epoch per run: every report file and every table row."""
    results = run_demo(tmp_path / "demo", size="tiny", overrides={"lrw": ONE_EPOCH, "avasr": ONE_EPOCH})
    report = tmp_path / "demo" / "report"
    for name in ("lrw_curves.png", "avasr_curves.png", "wer_vs_snr.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    md = (report / "report.md").read_text()
    assert all(f"]({name})" in md for name in ("lrw_curves.png", "avasr_curves.png", "wer_vs_snr.png"))
    saved = json.loads((report / "results.json").read_text())
    assert set(saved["phase_seconds"]) == set(PHASES) and all(s > 0 for s in saved["phase_seconds"].values())
    assert set(saved["noise"]) == {"audio-only", "video-only", "audio-visual"}
    assert list(saved["noise"]["audio-only"]) == ["clean", "10", "5", "0", "-5"]
    assert saved["noise_kind"] == "babble"
    # The exported graph transcribes the test split as the engine's own test did.
    assert saved["export"]["fp32"]["wer"] == pytest.approx(saved["avasr"]["metrics"]["test/wer"], abs=0.05)
    assert Path(saved["export"]["files"]["int8"]).is_file() and "## Deployment: ONNX and int8" in md
    printed = capsys.readouterr().out
    for row in ("LRW demo top-1", "AV-ASR clean CER", "AV / audio-only WER at 0 dB", "WER video-only",
                "WER ONNX fp32", "WER ONNX int8", "int8 / fp32 ONNX latency",
                "time: generate the corpus", "time: train + test demo_lrw", "time: ONNX export + int8", "time: total"):
        assert _row(results["table"], row) in printed
    # One epoch on a dozen clips cannot reach the targets: they must read MISSED, not crash.
    assert "MISSED" in results["table"] and saved["missed"]


def test_a_failing_step_names_itself(tmp_path: Path) -> None:
    from avtoolkit.recipe import RecipeError

    with pytest.raises(RecipeError) as info:
        run_demo(tmp_path / "demo", size="tiny", overrides={"lrw": ["model.head.nme=1"]})
    notes = "\n".join(getattr(info.value, "__notes__", []))
    assert "step 2/5 (train + test demo_lrw) failed" in notes and str(tmp_path / "demo" / "runs" / "demo_lrw") in notes
