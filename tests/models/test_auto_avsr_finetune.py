"""An auto_avsr checkpoint imported with the CLI, then fine-tuned on real GRID clips (a few CPU steps).

The checkpoint is the small random-weight one of the equivalence fixtures, written with their key
names as their training script saves it (``torch.save(model.state_dict())``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from auto_avsr_weights import seeded_state
from grid_tokens import train_grid_spm, units_file

from avtoolkit.cli.main import main
from avtoolkit.engine import run_recipe
from avtoolkit.models.checkpoint import read_checkpoint
from tiny_models import StateSnapshots

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "auto_avsr"
GRID = REPO.parent / "shared" / "data" / "grid_s1"


def small_model(cfg: dict, vocab_size: int) -> dict:
    return {"encoders": {"video": {"name": "auto_avsr_video"}},
            "backends": [{"name": "espnet_conformer", "dim": cfg["adim"], "layers": cfg["elayers"],
                          "heads": cfg["heads"], "ff_dim": cfg["units"], "kernel_size": cfg["kernel"]}],
            "head": {"name": "espnet_hybrid", "vocab_size": vocab_size, "layers": cfg["dlayers"],
                     "heads": cfg["heads"], "dim": cfg["adim"], "ff_dim": cfg["units"]}}


@pytest.fixture(scope="module")
def their_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    fx = torch.load(FIXTURES / "vsr_small.pt", weights_only=True)
    path = tmp_path_factory.mktemp("theirs") / "vsr_small.pth"
    torch.save(seeded_state(fx["shapes"]), path)
    return path, fx["config"]


def write_recipe(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_import_checkpoint_writes_a_strictly_checked_state_dict(their_checkpoint, tmp_path: Path, capsys) -> None:
    theirs, cfg = their_checkpoint
    recipe = write_recipe(tmp_path / "small.yaml", {"base": str(REPO / "recipes" / "auto_avsr_vsr.yaml"),
                                                    "model": small_model(cfg, cfg["odim"] - 1)})
    out = tmp_path / "ours.pt"
    assert main(["import-checkpoint", str(theirs), "--recipe", str(recipe), "--out", str(out)]) == 0
    assert "every key of the recipe's video model present" in capsys.readouterr().out
    ours, source = read_checkpoint(out), torch.load(theirs, weights_only=True)
    assert torch.equal(ours["backends.0.encoders.1.self_attn.pos_bias_u"], source["encoder.encoders.1.self_attn.pos_bias_u"])
    # the ASR recipe does not fit a VSR checkpoint: refused, keys named, nothing written
    audio = write_recipe(tmp_path / "audio.yaml", {"base": str(REPO / "recipes" / "auto_avsr_asr.yaml"),
                                                   "model": {**small_model(cfg, cfg["odim"] - 1),
                                                             "encoders": {"audio": {"name": "auto_avsr_audio"}}}})
    refused = tmp_path / "refused.pt"
    assert main(["import-checkpoint", str(theirs), "--recipe", str(audio), "--out", str(refused)]) == 2
    err = capsys.readouterr().err
    assert "does not fit the recipe's model" in err and "encoders.audio.trunk.conv1.weight" in err
    assert not refused.exists()


def test_imported_checkpoint_with_its_tokens_is_one_that_eval_and_transcribe_read(their_checkpoint,
                                                                                   tmp_path: Path) -> None:
    if not (GRID / "alignments").is_dir():
        pytest.skip(f"needs the shared GRID s1 transcripts at {GRID}")
    theirs, cfg = their_checkpoint
    model_file = train_grid_spm(tmp_path, GRID)
    # a units file of 14 of the model's pieces: the fixture's head has 15 tokens with the blank
    units_file(model_file, cfg["odim"] - 2, tmp_path / "units.txt")
    recipe = write_recipe(tmp_path / "small.yaml", {"base": str(REPO / "recipes" / "auto_avsr_vsr.yaml"),
                                                    "model": small_model(cfg, cfg["odim"] - 1)})
    out = tmp_path / "ours.ckpt"
    assert main(["import-checkpoint", str(theirs), "--recipe", str(recipe), "--out", str(out),
                 f"data.tokens.model={model_file}", f"data.tokens.units={tmp_path / 'units.txt'}"]) == 0
    from avtoolkit.models.checkpoint import load_model

    loaded = load_model(out, command="transcribe")
    assert loaded.task == "hybrid" and len(loaded.vocabulary) == cfg["odim"] - 1
    fx = torch.load(FIXTURES / "vsr_small.pt", weights_only=True)
    with torch.no_grad():
        out_ = loaded.model({"video": fx["input"], "video_lengths": fx["lengths"]})
    # the same numbers as their model, read back through avtoolkit's own checkpoint loading
    assert float((out_["memory"] - fx["encoder_out"]).abs().max()) < 1e-4


@pytest.mark.slow  # crops 6 GRID clips and trains 2 epochs: ~60 s of CPU (180 s wall at load 10)
def test_finetune_recipe_trains_on_grid_with_the_imported_front_end_frozen_first(their_checkpoint,
                                                                                  tmp_path: Path) -> None:
    if not (GRID / "s1").is_dir():
        pytest.skip(f"needs the shared GRID s1 clips at {GRID}")
    theirs, cfg = their_checkpoint
    ours = tmp_path / "ours.pt"
    small = write_recipe(tmp_path / "small_vsr.yaml", {"base": str(REPO / "recipes" / "auto_avsr_vsr.yaml"),
                                                       "model": small_model(cfg, cfg["odim"] - 1)})
    assert main(["import-checkpoint", str(theirs), "--recipe", str(small), "--out", str(ours)]) == 0
    # GRID's own subword units: the 15 tokens of the fixture's head cannot spell GRID, so the head
    # starts fresh here and the imported front-end and Conformer are what is carried over
    train_grid_spm(tmp_path, GRID)
    recipe = write_recipe(tmp_path / "finetune.yaml", {
        "base": str(REPO / "recipes" / "auto_avsr_finetune_grid.yaml"),
        "model": small_model(cfg, 39),
        "data": {"root": str(GRID), "max_clips": {"train": 4, "val": 1, "test": 1}, "workers": 0,
                 "prepare_workers": 1, "crop_method": "face", "video_size": 32, "batch_size": 2,
                 "cache_dir": str(tmp_path / "cache"),
                 "tokens": {"kind": "sentencepiece", "model": str(tmp_path / "grid.model"), "units": None,
                            "case": "upper"}},
        "init": [{"path": str(ours), "take": "encoders.video", "freeze_epochs": 1},
                 {"path": str(ours), "take": "backends.0"}],
        "trainer": {"max_epochs": 2, "accelerator": "cpu"},
        "decoding": {"name": "joint", "beam_size": 2, "ctc_weight": 0.1},
    })
    spy = StateSnapshots()
    run_recipe(str(recipe), run_dir=tmp_path / "run", callbacks=[spy])
    imported = read_checkpoint(ours)
    start, after_1, after_2 = spy.states
    video = [k for k in imported if k.startswith("encoders.video.")]
    for key in video:  # loaded, then untouched through epoch 1 (BatchNorm statistics too)
        assert torch.equal(start[key], imported[key]) and torch.equal(after_1[key], imported[key]), key
    assert torch.equal(start["backends.0.proj.weight"], imported["backends.0.proj.weight"])
    assert not torch.equal(after_1["backends.0.proj.weight"], imported["backends.0.proj.weight"])  # trained
    assert not torch.equal(after_2["encoders.video.trunk.layer4.1.conv2.weight"],
                           imported["encoders.video.trunk.layer4.1.conv2.weight"])  # unfrozen in epoch 2
    assert (tmp_path / "run" / "results.json").is_file()
