"""Transcriber, ONNX export and the transcribe/export CLI on the real GRID clips.

A tiny model is trained on the six GRID sentences (real speech and mouth crops) until it
transcribes them; everything downstream (checkpoint, Transcriber, ONNX file, CLI) must
then give the same transcripts. A one-epoch ``run_recipe`` checks real engine checkpoints.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from avtoolkit import build_model
from avtoolkit.cli.main import main as cli
from avtoolkit.datasets.manifest.datamodule import ManifestDataModule
from avtoolkit.data.text import CHARACTERS
from avtoolkit.decoding.ctc_search import build_decoder
from avtoolkit.inference.export import export_onnx
from avtoolkit.inference.quantize import quantization_scheme
from avtoolkit.inference.transcriber import Transcriber, error_rates
from tiny_models import TINY_AV_CTC

GRID = Path(__file__).resolve().parents[3] / "shared" / "data" / "grid"
pytestmark = pytest.mark.skipif(not (GRID / "video").is_dir(),
                                reason=f"GRID sample clips not found at {GRID} (shared test data)")



@pytest.fixture(scope="module")
def grid(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("grid")
    rows = [r.split("\t") for r in (GRID / "transcripts.tsv").read_text().splitlines()[1:]]
    manifest = folder / "grid.txt"
    manifest.write_text("".join(f"{GRID}/video/{n}|{GRID}/video/{n}|{t}\n" for n, t in rows))
    recipe = {"name": "grid_tiny", "model": TINY_AV_CTC,
              "data": {"name": "manifest", "train": str(manifest), "test": str(manifest), "batch_size": 6,
                       "workers": 0, "video_size": 32, "spec_augment": False, "cache_dir": str(folder / "cache")},
              "decoding": {"name": "greedy"}}
    dm = ManifestDataModule(**{k: v for k, v in recipe["data"].items() if k != "name"})
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    return {"folder": folder, "manifest": manifest, "recipe": recipe, "batch": batch,
            "texts": [t for _, t in rows], "videos": [GRID / "video" / n for n, _ in rows]}


def _save_checkpoint(model: torch.nn.Module, recipe: dict, path: Path) -> Path:
    """The engine's checkpoint layout (what ``avtoolkit run`` writes for the model)."""
    torch.save({"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
                "avtoolkit": {"recipe": recipe, "vocabulary": CHARACTERS, "task": "ctc", "version": "test"}}, path)
    return path


@pytest.fixture(scope="module")
def untrained(grid: dict) -> Path:
    torch.manual_seed(0)
    return _save_checkpoint(build_model(grid["recipe"]).eval(), grid["recipe"], grid["folder"] / "untrained.ckpt")


def test_transcribe_matches_the_model_and_scores_the_reference(grid: dict, untrained: Path) -> None:
    asr = Transcriber.from_checkpoint(untrained)
    batch = grid["batch"]
    with torch.no_grad():
        out = asr.model({k: v[:1] for k, v in batch.items() if k in ("audio", "audio_lengths", "video", "video_lengths")})
    expected = build_decoder(None, CHARACTERS)(out["log_probs"], out["lengths"])[0]
    result = asr.transcribe(audio=grid["videos"][0], video=grid["videos"][0], reference="Bin BLUE at F two now!")
    assert result.transcript == expected and result.modalities == ["audio", "video"]
    assert result.reference == "bin blue at f two now"
    assert (result.wer, result.cer) == error_rates(result.reference, result.transcript)
    assert result.latency_ms > 0 and result.preprocess_ms > 0


def test_batch_equals_one_by_one_and_modalities_are_optional(grid: dict, untrained: Path) -> None:
    asr = Transcriber.from_checkpoint(untrained)
    items = [{"audio": v, "video": v} for v in grid["videos"][:3]]
    batched = [r.transcript for r in asr.transcribe_batch(items)]
    assert batched == [asr.transcribe(**it).transcript for it in items]
    assert asr.transcribe(audio=grid["videos"][0]).modalities == ["audio"]
    assert asr.transcribe(video=grid["videos"][0]).modalities == ["video"]
    with pytest.raises(ValueError, match="at least one of"):
        asr.transcribe()


def test_onnx_export_parity_and_transcriber_on_onnx(grid: dict, untrained: Path, tmp_path: Path) -> None:
    onnx_path = tmp_path / "tiny.onnx"
    assert cli(["export", "--checkpoint", str(untrained), "--output", str(onnx_path)]) == 0
    eager, onnx = Transcriber.from_checkpoint(untrained), Transcriber.from_onnx(onnx_path)
    for inputs in ({"audio": grid["videos"][1], "video": grid["videos"][1]}, {"video": grid["videos"][2]}):
        a, b = eager.batch([inputs])[0], onnx.batch([inputs])[0]
        with torch.no_grad():
            ref = eager.model(a)
        got = onnx.model(b)
        assert (got["log_probs"] - ref["log_probs"]).abs().max() <= 1e-4
        assert onnx.transcribe(**inputs).transcript == eager.transcribe(**inputs).transcript


def test_export_int8_writes_a_calibrated_twin_and_states_its_cost(grid: dict, untrained: Path, tmp_path: Path,
                                                                   capsys) -> None:
    onnx_path = tmp_path / "tiny.onnx"
    code = cli(["export", "--checkpoint", str(untrained), "--output", str(onnx_path), "--int8",
                "--calibration-size", "3", "--eval-size", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    int8 = tmp_path / "tiny.int8.onnx"
    assert f"wrote {int8} (int8, calibrated on 3 utterances of {grid['manifest']})" in out
    assert f"scored on the first 4 utterances of {grid['manifest']}" in out
    assert "the same file it was calibrated on" in out  # the recipe's train and test are one manifest here
    assert "int8 costs" in out and "WER points" in out
    # What was done, in the output and in the file: 7-bit weights, so AVX2 kernels cannot saturate.
    assert "quantisation: QDQ, weights int8 7-bit (reduce_range)" in out and "no saturation on AVX2" in out
    scheme = quantization_scheme(tmp_path / "tiny.int8.onnx")
    assert scheme["reduce_range"] is True and scheme["saturation_free"] and scheme["max_u8s8_pair_sum"] <= 32767
    # The int8 file is a drop-in replacement: same inputs, same metadata, same kind of output.
    fp32_asr, int8_asr = Transcriber.from_onnx(onnx_path), Transcriber.from_onnx(int8)
    assert int8_asr.vocabulary == fp32_asr.vocabulary and int8_asr.modalities == ["audio", "video"]
    inputs = {"audio": grid["videos"][4], "video": grid["videos"][4]}
    a, b = fp32_asr.model(fp32_asr.batch([inputs])[0]), int8_asr.model(int8_asr.batch([inputs])[0])
    assert a["lengths"].tolist() == b["lengths"].tolist()
    # Untrained, the model's outputs are nearly flat; int8 must still follow them closely.
    corr = torch.corrcoef(torch.stack([a["log_probs"].flatten(), b["log_probs"].flatten()]))[0, 1]
    assert corr > 0.9, f"int8 log-probs correlate {float(corr):.2f} with fp32"


def test_an_int8_graph_with_8_bit_weights_warns_on_a_cpu_without_vnni(grid: dict, untrained: Path, tmp_path: Path,
                                                                       monkeypatch) -> None:
    import warnings

    import onnx

    from avtoolkit import hardware
    from avtoolkit.inference.quantize import QUANT_META_KEY

    onnx_path = tmp_path / "tiny.onnx"
    assert cli(["export", "--checkpoint", str(untrained), "--output", str(onnx_path), "--int8",
                "--calibration-size", "2", "--eval-size", "1"]) == 0
    int8 = tmp_path / "tiny.int8.onnx"
    monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo=None: frozenset({"avx2", "fma"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # today's 7-bit graph: no warning even without VNNI
        Transcriber.from_onnx(int8)
    # A graph from before the 7-bit weights (its metadata has no saturation bound).
    proto = onnx.load(str(int8))
    for entry in proto.metadata_props:
        if entry.key == QUANT_META_KEY:
            entry.value = json.dumps({"format": "QDQ", "weights": "int8 per channel"})
    old = tmp_path / "old.int8.onnx"
    onnx.save(proto, str(old))
    with pytest.warns(RuntimeWarning, match="int8 graph with 8-bit weights .* this CPU has no VNNI"):
        Transcriber.from_onnx(old)
    monkeypatch.setattr(hardware, "cpu_flags", lambda cpuinfo=None: frozenset({"avx2", "avx512_vnni"}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # exact where VNNI accumulates in int32
        Transcriber.from_onnx(old)


def test_export_int8_refuses_a_graph_that_costs_too_much(grid: dict, untrained: Path, tmp_path: Path,
                                                          capsys) -> None:
    # A limit no graph can meet (CER cannot drop by more than 100 points) stands for an
    # inaccurate int8 graph: the command says so, with both figures, and leaves no int8 file.
    onnx_path = tmp_path / "tiny.onnx"
    code = cli(["export", "--checkpoint", str(untrained), "--output", str(onnx_path), "--int8",
                "--calibration-size", "2", "--eval-size", "2", "--max-cer-increase", "-101"])
    err = capsys.readouterr().err
    assert code == 2
    assert "int8 is not accurate enough for this model: CER" in err and "vs fp32" in err and "was not kept" in err
    assert onnx_path.is_file() and not (tmp_path / "tiny.int8.onnx").exists()


@pytest.mark.parametrize("option", ["--calibration-size", "--eval-size"])
def test_export_int8_sizes_must_be_positive(untrained: Path, tmp_path: Path, capsys, option: str) -> None:
    with pytest.raises(SystemExit):
        cli(["export", "--checkpoint", str(untrained), "--output", str(tmp_path / "m.onnx"), "--int8", option, "0"])
    assert f"argument {option}: must be a positive whole number, got '0'" in capsys.readouterr().err


def test_export_int8_without_a_calibration_manifest_says_which_option(grid: dict, tmp_path: Path, capsys) -> None:
    recipe = {**grid["recipe"], "data": {**grid["recipe"]["data"], "train": None, "val": None}}
    torch.manual_seed(0)
    ckpt = _save_checkpoint(build_model(recipe).eval(), recipe, tmp_path / "no_train.ckpt")
    assert cli(["export", "--checkpoint", str(ckpt), "--output", str(tmp_path / "m.onnx"), "--int8"]) == 2
    err = capsys.readouterr().err
    assert "no manifest for int8 calibration: the recipe's data.train / data.val (not set); give --calibration" in err
    assert (tmp_path / "m.onnx").is_file() and not (tmp_path / "m.int8.onnx").exists()


@pytest.mark.slow
def test_small_model_overfits_grid_and_every_path_transcribes_it(grid: dict, tmp_path: Path, capsys) -> None:
    """Real speech: a tiny audio-visual model learns the six GRID sentences (CER < 10%)."""
    from torchmetrics.functional.text import char_error_rate

    torch.manual_seed(0)
    model = build_model(grid["recipe"])
    batch = {k: v for k, v in grid["batch"].items() if isinstance(v, torch.Tensor)}
    opt = torch.optim.Adam(model.parameters(), lr=0.005)
    decode = build_decoder(None, CHARACTERS)
    cer = 1.0
    for step in range(1, 161):
        model.train()
        out = model(batch)
        loss = F.ctc_loss(out["log_probs"].transpose(0, 1), batch["targets"], out["lengths"], batch["target_lengths"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0:
            with torch.no_grad():
                out = model.eval()(batch)
            cer = float(char_error_rate(decode(out["log_probs"], out["lengths"]), grid["texts"]))
            if cer < 0.05:
                break
    assert cer < 0.1, f"CER {cer:.2%} after {step} steps"
    ckpt = _save_checkpoint(model.eval(), grid["recipe"], tmp_path / "best.ckpt")

    asr = Transcriber.from_checkpoint(ckpt)
    result = asr.transcribe(audio=grid["videos"][0], video=grid["videos"][0], reference=grid["texts"][0])
    assert result.cer < 0.1

    predictions = tmp_path / "pred.jsonl"
    assert cli(["transcribe", "--checkpoint", str(ckpt), "--manifest", str(grid["manifest"]),
                "--output", str(predictions), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert summary["utterances"] == len(rows) == 6 and summary["cer"] < 0.1
    assert [r["reference"] for r in rows] == grid["texts"]

    onnx_path = tmp_path / "grid.onnx"
    export_onnx(asr.model, asr.batch([{"audio": grid["videos"][3], "video": grid["videos"][3]}])[0], onnx_path,
                CHARACTERS, recipe=grid["recipe"])
    onnx = Transcriber.from_onnx(onnx_path)
    assert onnx.transcribe_manifest(grid["manifest"])["cer"] == pytest.approx(summary["cer"])

    # int8: calibrated on the same six sentences, it must still transcribe them.
    assert cli(["export", "--checkpoint", str(ckpt), "--output", str(tmp_path / "cli.onnx"), "--int8"]) == 0
    assert "no saturation on AVX2" in capsys.readouterr().out  # 7-bit weights: the same CER on any x86-64 CPU
    int8 = Transcriber.from_onnx(tmp_path / "cli.int8.onnx").transcribe_manifest(grid["manifest"])
    assert int8["cer"] <= summary["cer"] + 0.05, f"int8 CER {int8['cer']:.2%} (fp32 {summary['cer']:.2%})"


def test_real_engine_checkpoint_loads(grid: dict, tmp_path: Path) -> None:
    from avtoolkit.engine.run import run_recipe

    recipe = {**grid["recipe"], "trainer": {"max_epochs": 1, "progress_bar": False},
              "logging": {"tensorboard": False, "plots": False}}
    run_recipe(recipe, run_dir=str(tmp_path / "run"))
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    asr = Transcriber.from_checkpoint(best)
    assert asr.modalities == ["audio", "video"] and asr.video_size == (32, 32)
    assert isinstance(asr.transcribe(audio=grid["videos"][0]).transcript, str)
    # Reading a checkpoint is not training: a fresh interpreter transcribes the clip from both
    # inputs without importing Lightning (the engine and every dataset import it).
    script = ("import sys\n"
              "from avtoolkit.inference.transcriber import Transcriber\n"
              f"asr = Transcriber.from_checkpoint({str(best)!r})\n"
              f"r = asr.transcribe(audio={str(grid['videos'][0])!r}, video={str(grid['videos'][0])!r})\n"
              "print(r.modalities, sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning'))[:3])\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['audio', 'video'] []", done.stdout
