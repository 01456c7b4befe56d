"""``avtoolkit noise-eval``: WER against SNR of a checkpoint, as files a user reads.

The report tests run on hand-made figures. The command itself runs on a checkpoint trained
for one epoch (demo_avasr at tiny widths) on the tiny demo corpus: what matters there is
that every row is measured, that video-only is one evaluation, and that the clean
audio-visual figure is the one ``avtoolkit eval`` prints for the same checkpoint.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from avtoolkit.cli.main import main as cli
from avtoolkit.engine.noise_eval import NoiseEvalResult, inputs_name, parse_snr, write_noise_report
from avtoolkit.errors import UsageError

PNG = b"\x89PNG\r\n\x1a\n"
TINY_WIDTHS = ["model.encoders.audio.channels=[8, 8, 16]", "model.encoders.audio.hidden_dim=32",
               "model.encoders.video.channels=[4, 8, 8]", "model.encoders.video.hidden_dim=32",
               "model.fusion.dim=32", "model.backends.0.channels=32"]


def _made_up(decoders: list[str], noises: list[str]) -> NoiseEvalResult:
    """Figures with the shape of real ones: audio degrades with noise, video is flat, AV in between."""
    snrs = ["clean", "10", "0", "-10"]
    result = NoiseEvalResult("best.ckpt", "avasr", decoders, noises, snrs, ["audio-only", "video-only", "audio-visual"])
    for d, decoder in enumerate(decoders):
        for noise in noises:
            for i, snr in enumerate(snrs):
                audio = 0.05 + 0.3 * i * (2 if noise == "babble" else 1) - 0.02 * d
                for name, wer in (("audio-only", audio), ("video-only", 0.4 - 0.02 * d),
                                  ("audio-visual", min(audio, 0.4) * 0.8)):
                    result.rows.append({"decoder": decoder, "noise": noise, "inputs": name, "snr": snr,
                                        "wer": wer, "cer": wer / 2})
    return result


def test_report_files_hold_every_row(tmp_path: Path) -> None:
    result = _made_up(["greedy", "beam 10 + lexicon grid (51 words)"], ["babble", "white"])
    files = write_noise_report(result, tmp_path / "out")
    assert files["png"].read_bytes()[:8] == PNG
    md = files["markdown"].read_text()
    assert "## babble noise" in md and "## white noise" in md and "](wer_vs_snr.png)" in md
    assert "| decoder | input | clean | 10 dB | 0 dB | -10 dB |" in md
    row = next(line for line in md.splitlines() if line.startswith("| greedy | audio-only |"))
    assert row.split("|")[3].strip() == "5.0 (2.5)"  # WER % (CER %)
    assert sum(line.startswith("| beam 10 + lexicon grid") for line in md.splitlines()) == 6  # 3 inputs x 2 noises
    saved = json.loads(files["json"].read_text())
    assert len(saved["rows"]) == 2 * 2 * 3 * 4 and saved["snrs"] == ["clean", "10", "0", "-10"]
    assert NoiseEvalResult(**{k: v for k, v in saved.items() if k != "split"}).curves("white") == result.curves("white")


def test_one_noise_and_decoder_plot_like_the_demo(tmp_path: Path) -> None:
    result = _made_up(["greedy"], ["babble"])
    files = write_noise_report(result, tmp_path, title="AV-ASR demo: one model, three inputs")
    assert files["png"].read_bytes()[:8] == PNG
    assert result.curves("babble")["video-only"]["-10"] == {"wer": 0.4, "cer": 0.2}


def test_names_of_inputs_and_snrs() -> None:
    assert [inputs_name(m.split("+")) for m in ("audio", "video", "audio+video", "video+audio")] \
        == ["audio-only", "video-only", "audio-visual", "audio-visual"]
    with pytest.raises(UsageError, match="lips"):
        inputs_name(["lips"])
    assert [parse_snr(s) for s in ("clean", "10", "-7.5")] == [None, 10.0, -7.5]
    for bad in ("loud", "nan", "inf"):
        with pytest.raises(UsageError, match="clean"):
            parse_snr(bad)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from avtoolkit.demo import generate_corpus
    from avtoolkit.engine.run import run_recipe

    folder = tmp_path_factory.mktemp("noise_eval")
    generate_corpus(folder / "corpus", size="tiny", seed=3, workers=1)
    sentences = folder / "corpus" / "sentences"
    data = [f"data.{s}={sentences / f'{s}.txt'}" for s in ("train", "val", "test")]
    run_recipe("demo_avasr", [*data, *TINY_WIDTHS, "trainer.max_epochs=1", "data.workers=0",
                              "trainer.progress_bar=false", "logging.tensorboard=false", "logging.plots=false"],
               folder / "run")
    return {"folder": folder, "checkpoint": folder / "run" / "checkpoints" / "best.ckpt", "data": data}


def _eval_metrics(checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, float]:
    """What ``avtoolkit eval`` prints for the checkpoint, read from its table."""
    assert cli(["eval", "--checkpoint", str(checkpoint)]) == 0
    printed = capsys.readouterr().out
    return {m: float(v) for m, v in re.findall(r"^test/(wer|cer)\s+([0-9.]+)$", printed, re.M)}


def test_noise_eval_measures_every_row_and_matches_eval(trained: dict, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    checkpoint = importlib.import_module("avtoolkit.models.checkpoint")
    reads: list[str] = []
    real_load = checkpoint.load_model
    # every name it is called by (avtoolkit.engine.evaluate is also the function's name)
    for module in (checkpoint, importlib.import_module("avtoolkit.engine.evaluate")):
        monkeypatch.setattr(module, "load_model", lambda path, *a, **k: reads.append(str(path)) or real_load(path, *a, **k))
    out = trained["folder"] / "report"
    code = cli(["noise-eval", "--checkpoint", str(trained["checkpoint"]), "--modalities", "audio", "video",
                "audio+video", "--noise", "babble", "--snr", "clean", "0", "-10", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "[7/7]" in printed  # clean and two SNRs for audio and for AV, video-only once
    assert reads == [str(trained["checkpoint"])]  # read and checked once, not once per evaluation
    assert (out / "wer_vs_snr.png").read_bytes()[:8] == PNG
    saved = json.loads((out / "noise_eval.json").read_text())
    assert saved["evaluations"] == 7 and saved["decoders"] == ["greedy"]  # demo_avasr decodes greedily
    cells = {(r["inputs"], r["snr"]): r for r in saved["rows"]}
    assert set(cells) == {(i, s) for i in ("audio-only", "video-only", "audio-visual") for s in ("clean", "0", "-10")}
    assert len(saved["rows"]) == len(cells)
    assert all(0 <= r["wer"] < math.inf and 0 <= r["cer"] < math.inf for r in saved["rows"])
    assert cells[("video-only", "clean")] == {**cells[("video-only", "-10")], "snr": "clean"}
    md = (out / "noise_eval.md").read_text()
    assert all(f"| greedy | {name} |" in md for name in ("audio-only", "video-only", "audio-visual"))
    assert md.split("\n![")[0].strip() in printed  # the tables are printed too
    # The clean audio-visual cell is `avtoolkit eval` on the same checkpoint and recipe.
    clean = cells[("audio-visual", "clean")]
    assert _eval_metrics(trained["checkpoint"], capsys) == pytest.approx({"wer": clean["wer"], "cer": clean["cer"]},
                                                                         abs=1e-4)


@pytest.mark.slow
def test_noise_eval_reports_both_decoders_and_both_noises(trained: dict, capsys: pytest.CaptureFixture[str]) -> None:
    out = trained["folder"] / "both"
    assert cli(["noise-eval", "--checkpoint", str(trained["checkpoint"]), "--snr", "clean", "5",
                "--decoder", "greedy", "beam", "--beam-size", "4", "--lexicon", "grid", "--grammar", "grid",
                "--out", str(out)]) == 0
    saved = json.loads((out / "noise_eval.json").read_text())
    assert saved["decoders"] == ["greedy", "beam 4 + lexicon grid (51 words)", "beam 4 + grammar grid (51 words)"]
    assert saved["noises"] == ["babble", "white"] and saved["inputs"] == ["audio-only", "video-only", "audio-visual"]
    assert len(saved["rows"]) == 3 * 2 * 3 * 2
    assert saved["evaluations"] == 3 * (2 * (1 + 2) + 1)  # per decoder: audio and AV clean + 2 noisy, video once
    assert len((out / "grid_lexicon.txt").read_text().splitlines()) == 51
    md = (out / "noise_eval.md").read_text()
    assert "## white noise" in md and "| beam 4 + lexicon grid (51 words) | audio-visual |" in md


def test_usage_errors_name_the_option(trained: dict, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ckpt = str(trained["checkpoint"])
    cases = [
        (["--modalities", "lips"], "audio, video or audio+video"),
        (["--lexicon", "grid"], "add --decoder beam"),  # demo_avasr decodes greedily
        (["--lexicon", str(tmp_path / "none.txt"), "--decoder", "beam"], "not a built-in word list"),
        (["--noise", "pink"], "data.noise_type"),
        (["--grammar", "gird"], "'gird' is not a built-in grammar"),
    ]
    for extra, message in cases:
        assert cli(["noise-eval", "--checkpoint", ckpt, "--out", str(tmp_path / "o"), *extra]) == 2
        assert message in capsys.readouterr().err, extra
    assert not (tmp_path / "o" / "noise_eval.json").exists()
    with pytest.raises(SystemExit):
        cli(["noise-eval", "--checkpoint", ckpt, "--out", str(tmp_path / "o"), "--snr", "loud"])
    assert "neither 'clean' nor a number" in capsys.readouterr().err


def test_an_audio_only_model_cannot_be_tested_on_video(trained: dict, tmp_path: Path) -> None:
    import torch

    from avtoolkit import build_model
    from avtoolkit.models.checkpoint import read_checkpoint
    from avtoolkit.engine.noise_eval import noise_eval

    meta = read_checkpoint(trained["checkpoint"])["avtoolkit"]
    recipe = {**meta["recipe"], "model": {k: v for k, v in meta["recipe"]["model"].items() if k != "fusion"}}
    recipe["model"]["encoders"] = {"audio": recipe["model"]["encoders"]["audio"]}
    model = build_model(recipe)
    path = tmp_path / "audio.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "avtoolkit": {**meta, "recipe": recipe}}, path)
    with pytest.raises(UsageError, match="reads audio, so it cannot be tested video-only"):
        noise_eval(path, inputs=["video"])
