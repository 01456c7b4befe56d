"""An imported auto_avsr ASR checkpoint (raw-waveform front-end) transcribes and evaluates real GRID clips.

The checkpoint is the small random-weight ASR model of the equivalence fixtures
(``tests/fixtures/auto_avsr/asr_small.pt``), saved with their key names and imported with the CLI.
What matters here is the input: the front-end ``auto_avsr_audio`` declares ``audio_input =
"waveform"``, so every path that builds its batch must give it the 16 kHz samples normalised per
utterance (zero mean, unit variance; auto_avsr's layer norm over the utterance, ``eps=1e-8``),
the same numbers as reading the file and normalising it directly. A spy on the encoder records
what it is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from auto_avsr_weights import seeded_state
from grid_tokens import train_grid_spm, units_file

from avtoolkit.cli.main import main
from avtoolkit.models.encoders.auto_avsr_frontends import ResNet18Audio, ResNet18Video

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "auto_avsr"
GRID = REPO.parent / "shared" / "data" / "grid_s1"
CLIPS = [GRID / "s1" / "bbaf2n.mp4", GRID / "s1" / "bbaf4p.mp4"]
JOINT_2 = ["--decoder", "joint", "--beam-size", "2"]


def small_model(cfg: dict, encoders: dict | None = None) -> dict:
    """The fixture's configuration as a recipe model section (audio-only unless ``encoders`` says otherwise)."""
    return {"encoders": encoders or {"audio": {"name": "auto_avsr_audio"}},
            "backends": [{"name": "espnet_conformer", "dim": cfg["adim"], "layers": cfg["elayers"],
                          "heads": cfg["heads"], "ff_dim": cfg["units"], "kernel_size": cfg["kernel"]}],
            "head": {"name": "espnet_hybrid", "vocab_size": cfg["odim"] - 1, "layers": cfg["dlayers"],
                     "heads": cfg["heads"], "dim": cfg["adim"], "ff_dim": cfg["units"]}}


def direct_input(path: Path) -> torch.Tensor:
    """What auto_avsr's test pipeline gives its front-end for ``path``: the 16 kHz mono samples, layer-normed."""
    from avtoolkit.data.media import read_audio

    wave = torch.from_numpy(read_audio(path, sample_rate=16000))
    return torch.nn.functional.layer_norm(wave, wave.shape, eps=1e-8)


@pytest.fixture
def fed(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    """``{"audio": [(x, lengths), ...], "video": [...]}``: what the auto_avsr front-ends are given."""
    seen: dict[str, list] = {"audio": [], "video": []}
    for modality, cls in (("audio", ResNet18Audio), ("video", ResNet18Video)):
        def spy(self, x, lengths, _forward=cls.forward, _m=modality):
            seen[_m].append((x.detach().clone(), lengths.detach().clone()))
            return _forward(self, x, lengths)
        monkeypatch.setattr(cls, "forward", spy)
    return seen


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Their small ASR checkpoint imported with GRID subword tokens: ``{"ckpt", "model", "units", "cfg"}``."""
    if not (GRID / "s1").is_dir():
        pytest.skip(f"needs the shared GRID s1 clips at {GRID}")
    folder = tmp_path_factory.mktemp("asr")
    fx = torch.load(FIXTURES / "asr_small.pt", weights_only=True)
    cfg = fx["config"]
    theirs = folder / "asr_small.pth"
    torch.save(seeded_state(fx["shapes"]), theirs)
    model = train_grid_spm(folder, GRID)
    units = units_file(model, cfg["odim"] - 2, folder / "units.txt")  # the head's 15 tokens with the blank
    recipe = folder / "small.yaml"
    recipe.write_text(yaml.safe_dump({"base": str(REPO / "recipes" / "auto_avsr_asr.yaml"), "model": small_model(cfg)}))
    ckpt = folder / "asr_small.ckpt"
    assert main(["import-checkpoint", str(theirs), "--recipe", str(recipe), "--out", str(ckpt),
                 f"data.tokens.model={model}", f"data.tokens.units={units}"]) == 0
    return {"ckpt": ckpt, "model": model, "units": units, "cfg": cfg}


def test_transcribe_cli_gives_the_imported_asr_model_the_normalised_waveform(imported, fed, capsys) -> None:
    capsys.readouterr()
    assert main(["transcribe", "--checkpoint", str(imported["ckpt"]), "--audio", str(CLIPS[0]), *JOINT_2]) == 0
    transcript, info = capsys.readouterr().out.splitlines()[-2:]
    assert info.startswith("(audio, ") and transcript == transcript.strip()
    (x, lengths), = fed["audio"]
    want = direct_input(CLIPS[0])
    assert x.shape == (1, len(want)) and lengths.tolist() == [len(want)]
    assert float((x[0] - want).abs().max()) < 1e-6  # exactly what their code would feed the checkpoint


def test_transcriber_batches_waveforms_and_the_long_video_path_normalises_each_segment(imported, fed) -> None:
    from avtoolkit.inference import Transcriber
    from avtoolkit.inference.long_video import transcribe_recording

    asr = Transcriber.from_checkpoint(imported["ckpt"], decoding={"name": "joint", "beam_size": 2})
    assert asr.audio.kind == "waveform"
    results = asr.transcribe_batch([{"audio": str(c), "reference": "bin blue at f two now"} for c in CLIPS])
    assert [r.modalities for r in results] == [["audio"], ["audio"]] and all(r.wer is not None for r in results)
    (x, lengths), = fed["audio"]
    wants = [direct_input(c) for c in CLIPS]
    assert lengths.tolist() == [len(w) for w in wants] and x.shape == (2, max(map(len, wants)))
    for row, n, want in zip(x, lengths, wants):
        assert float((row[:n] - want).abs().max()) < 1e-6 and not row[n:].any()  # zero padding past the end
    with pytest.raises(Exception, match="too short to transcribe; it needs more than 639"):
        asr.transcribe(audio=np.zeros(600, np.float32))
    fed["audio"].clear()
    cues = transcribe_recording(asr, CLIPS[0], progress=False)  # cut by voice activity
    assert cues and len(fed["audio"]) == len(cues)
    for x, n in fed["audio"]:  # each segment normalised on its own, as their code does an utterance
        seg = x[0, :n[0]].double()
        assert x.dim() == 2 and abs(float(seg.mean())) < 1e-4 and abs(float(seg.var(unbiased=False)) - 1) < 1e-3


def grid_recipe(path: Path, imported: dict, tmp_path: Path, **data) -> Path:
    path.write_text(yaml.safe_dump({
        "name": "asr_on_grid", "model": small_model(imported["cfg"]),
        "data": {"name": "grid", "root": str(GRID), "modalities": ["audio"], "crop_method": "fixed",
                 "cache_dir": str(tmp_path / "cache"), "max_clips": {"train": 1, "val": 1, "test": 2},
                 "workers": 0, "prepare_workers": 1, "batch_size": 2,
                 "tokens": {"kind": "sentencepiece", "model": str(imported["model"]),
                            "units": str(imported["units"]), "case": "upper"}, **data},
        "trainer": {"accelerator": "cpu"}, "decoding": {"name": "joint", "beam_size": 2, "ctc_weight": 0.1}}))
    return path


def test_eval_of_the_imported_checkpoint_on_grid_feeds_it_waveforms(imported, fed, tmp_path: Path, capsys) -> None:
    from avtoolkit.datasets.grid.clips import load_prepared
    from avtoolkit.datasets.grid.layout import find_clips

    recipe = grid_recipe(tmp_path / "grid.yaml", imported, tmp_path)
    preds = tmp_path / "preds.csv"
    assert main(["eval", "--checkpoint", str(imported["ckpt"]), str(recipe), "--save-predictions", str(preds)]) == 0
    assert "test/wer" in capsys.readouterr().out and len(preds.read_text().splitlines()) == 3
    (x, lengths), = fed["audio"]
    assert x.dim() == 2 and len(lengths) == 2
    # the prepared clips' samples (int16 in the cache), normalised per clip: no log-mel anywhere
    by_key = {c.key: c for c in find_clips(GRID, None).clips}
    folder = next((tmp_path / "cache").glob("rois_*"))
    ids = [line.split(",")[0] for line in preds.read_text().splitlines()[1:]]
    for row, n, key in zip(x, lengths, ids):
        wave = torch.from_numpy(load_prepared(folder, by_key[key], rois=False)[1])
        want = torch.nn.functional.layer_norm(wave, wave.shape, eps=1e-8)
        assert int(n) == len(want) and float((row[:n] - want).abs().max()) < 1e-6


def test_eval_with_a_log_mel_models_recipe_feeds_the_checkpoints_waveform_encoder(imported, fed, tmp_path: Path,
                                                                                  capsys) -> None:
    """The recipe gives data and decoding only: the evaluated model (and so its input) is the checkpoint's."""
    tokens = f"{{kind: sentencepiece, model: '{imported['model']}', units: '{imported['units']}', case: upper}}"
    assert main(["eval", "--checkpoint", str(imported["ckpt"]), "grid_audio", f"data.root={GRID}",
                 f"data.cache_dir={tmp_path / 'cache'}", "data.crop_method=fixed", "data.workers=0",
                 "data.prepare_workers=1", "data.max_clips={train: 1, val: 1, test: 1}", f"data.tokens={tokens}",
                 "decoding.name=greedy"]) == 0
    assert "test/wer" in capsys.readouterr().out
    (x, lengths), = fed["audio"]
    assert x.dim() == 2 and float((x[0] - x[0].mean()).pow(2).mean()) == pytest.approx(1.0, abs=1e-3)


def test_grid_noise_goes_into_the_waveform_before_its_normalisation(imported, tmp_path: Path) -> None:
    from avtoolkit.data.audio_input import normalise_waveform
    from avtoolkit.engine.resolve import resolve_run

    run = resolve_run(grid_recipe(tmp_path / "noisy.yaml", imported, tmp_path, test_noise_snr_db=0.0))
    assert run.recipe["data"]["audio_input"] == "waveform"  # filled in from the encoder, kept in the run's recipe
    dm = run.datamodule
    dm.prepare_data()
    dm.setup()
    test = dm.splits["test"]
    item, noisy = test[0]["audio"], test.noisy_wave(0)
    assert torch.equal(item, normalise_waveform(noisy))  # noise first, then the normalisation
    assert torch.equal(test[0]["audio"], item)  # evaluation noise is fixed per clip
    from avtoolkit.datasets.grid.clips import load_prepared

    clean = torch.from_numpy(load_prepared(test.folder, test.clips[0], rois=False)[1])
    snr = 10 * torch.log10(clean.pow(2).mean() / (noisy - clean).pow(2).mean())
    assert abs(float(snr)) < 0.5  # 0 dB into the samples, not into normalised or log-mel features
    # training (spec_augment): spans of the waveform zeroed before the normalisation, i.e. constant after it
    # (GRID's digital silence alone makes runs of up to ~200 equal samples; one mask is up to 6400)
    train = dm.splits["train"]
    torch.manual_seed(0)
    masked = train[0]["audio"]
    unmasked = normalise_waveform(torch.from_numpy(load_prepared(train.folder, train.clips[0], rois=False)[1]))
    assert masked.shape == unmasked.shape and longest_constant_run(masked) >= 1000 > longest_constant_run(unmasked)


def longest_constant_run(x: torch.Tensor) -> int:
    change = torch.nonzero(x[1:] != x[:-1]).flatten()
    edges = torch.cat([torch.tensor([-1]), change, torch.tensor([len(x) - 1])])
    return int((edges[1:] - edges[:-1]).max())


def test_noise_eval_of_the_imported_checkpoint_adds_the_noise_to_its_waveform(imported, fed, tmp_path: Path) -> None:
    from avtoolkit.data.audio_input import normalise_waveform

    recipe = grid_recipe(tmp_path / "grid.yaml", imported, tmp_path)
    assert main(["noise-eval", "--checkpoint", str(imported["ckpt"]), "--recipe", str(recipe), "--noise", "white",
                 "--snr", "clean", "0", "--decoder", "joint", "--beam-size", "2", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "noise_eval.json").is_file()
    (clean, n), (noisy, n0) = fed["audio"]  # clean, then at 0 dB
    assert torch.equal(n, n0)
    for c, m, k in zip(clean, noisy, n):
        c, m = c[:k].double(), m[:k].double()
        assert float((m - normalise_waveform(m)).abs().max()) < 1e-5  # normalised after the noise was added
        # white noise as loud as the speech: the noisy input keeps 1/sqrt(2) of the clean one
        assert 0.65 < float((c * m).mean()) < 0.76


def test_audio_visual_auto_avsr_model_gets_the_waveform_and_the_crops(fed, tmp_path: Path) -> None:
    if not (GRID / "s1").is_dir():
        pytest.skip(f"needs the shared GRID s1 clips at {GRID}")
    from avtoolkit.inference import Transcriber
    from avtoolkit.models.assemble import assemble

    fx = torch.load(FIXTURES / "asr_small.pt", weights_only=True)
    section = small_model(fx["config"], {"audio": {"name": "auto_avsr_audio"}, "video": {"name": "auto_avsr_video"}})
    section["fusion"] = {"name": "concat"}
    torch.manual_seed(0)
    model = assemble(section).eval()
    vocab = ["<blank>"] + [chr(ord("a") + i) for i in range(fx["config"]["odim"] - 2)]
    recipe = {"model": section, "data": {"name": "manifest", "video_size": 88, "crop_method": "fixed"},
              "decoding": {"name": "joint", "beam_size": 2}}
    asr = Transcriber(model, vocab, ["audio", "video"], recipe)
    result = asr.transcribe(audio=str(CLIPS[0]), video=str(CLIPS[0]))
    assert result.modalities == ["audio", "video"]
    (a, a_len), = fed["audio"]
    (v, v_len), = fed["video"]
    want = direct_input(CLIPS[0])
    assert float((a[0] - want).abs().max()) < 1e-6 and a_len.tolist() == [len(want)]
    assert v.shape[:3] == (1, 75, 1) and v.shape[-2:] == (88, 88) and v_len.tolist() == [75]
    # the two streams cover the same 3 s: 75 frames of 640 samples
    assert abs(len(want) / 640 - 75) < 1


def test_an_audio_visual_recipe_of_the_auto_avsr_front_ends_gets_both_inputs_from_grid(imported, tmp_path: Path) -> None:
    from avtoolkit import build_model
    from avtoolkit.engine.resolve import resolve_run

    path = grid_recipe(tmp_path / "av.yaml", imported, tmp_path, modalities=["audio", "video"], video_size=88)
    recipe = yaml.safe_load(path.read_text())
    recipe["model"]["encoders"]["video"] = {"name": "auto_avsr_video"}
    recipe["model"]["fusion"] = {"name": "concat"}
    path.write_text(yaml.safe_dump(recipe))
    run = resolve_run(path)
    dm = run.datamodule
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.test_dataloader()))
    assert batch["audio"].dim() == 2 and batch["video"].shape[2:] == (1, 88, 88)
    assert (batch["audio_lengths"] / 640 - batch["video_lengths"]).abs().max() < 1  # the same seconds
    with torch.no_grad():
        out = build_model(run.recipe).eval()(batch)
    assert out["log_probs"].shape[:2] == (2, int(batch["video_lengths"].max()))


def test_manifest_dataset_reads_the_waveform_for_a_waveform_encoder(tmp_path: Path) -> None:
    if not (GRID / "s1").is_dir():
        pytest.skip(f"needs the shared GRID s1 clips at {GRID}")
    from avtoolkit.datasets.manifest.datamodule import ManifestDataModule

    manifest = tmp_path / "test.txt"
    manifest.write_text(f"{CLIPS[0]}||bin blue at f two now\n")
    dm = ManifestDataModule(test=str(manifest), modalities=["audio"], audio_input="waveform",
                            cache_dir=str(tmp_path / "cache"))
    dm.setup("test")
    assert float((dm.splits["test"][0]["audio"] - direct_input(CLIPS[0])).abs().max()) < 1e-6


def test_a_recipe_cannot_give_a_waveform_encoder_log_mel(tmp_path: Path) -> None:
    from avtoolkit.recipe import RecipeError, validate_recipe

    model = small_model({"adim": 8, "elayers": 1, "heads": 2, "units": 8, "kernel": 3, "odim": 5, "dlayers": 1})
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({"model": model, "data": {"name": "manifest", "test": "t.txt",
                                                               "audio_input": "log_mel"}}))
    with pytest.raises(RecipeError, match=r"data.audio_input.*is 'log_mel' but model.encoders.audio "
                                          r"\('auto_avsr_audio'\) reads the waveform; remove the key"):
        validate_recipe(recipe, require_data=True)
    # a dataset that makes log-mel only is named, with the encoder
    with pytest.raises(RecipeError, match="dataset 'lrs3' gives audio encoders log-mel frames only, but "
                                          r"model.encoders.audio \('auto_avsr_audio'\) reads the waveform"):
        validate_recipe({"model": model, "data": {"name": "lrs3", "root": str(tmp_path)}}, require_data=True)
    assert validate_recipe(recipe, ["data.audio_input=waveform"], require_data=True)["data"]["audio_input"] == "waveform"


def test_log_mel_models_get_the_audio_norm_they_were_trained_with() -> None:
    from avtoolkit.data.audio_input import normalise_log_mel
    from avtoolkit.data.features import LogMel
    from avtoolkit.inference import Transcriber

    wave = torch.randn(16000, generator=torch.Generator().manual_seed(0)) * 0.1
    model = {"encoders": {"audio": {"name": "audio_cnn"}}}
    for norm in ("utterance", "none"):
        recipe = {"model": model, "data": {"name": "grid", "audio_norm": norm, "video_size": 64, "crop_method": "fixed"}}
        asr = Transcriber(object(), ["<blank>", "a"], ["audio"], recipe)
        assert asr.audio.kind == "log_mel"
        assert torch.equal(asr.audio_features(wave), normalise_log_mel(LogMel()(wave), norm))


def test_asr_finetune_recipe_trains_on_grid_waveforms_with_the_imported_front_end_frozen(imported, fed,
                                                                                       tmp_path: Path) -> None:
    from avtoolkit.engine import run_recipe
    from avtoolkit.models.checkpoint import read_checkpoint
    from tiny_models import StateSnapshots

    fx = torch.load(FIXTURES / "asr_small.pt", weights_only=True)
    theirs, ours = tmp_path / "asr_small.pth", tmp_path / "ours.pt"
    torch.save(seeded_state(fx["shapes"]), theirs)
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump({"base": str(REPO / "recipes" / "auto_avsr_asr.yaml"), "model": small_model(fx["config"])}))
    assert main(["import-checkpoint", str(theirs), "--recipe", str(small), "--out", str(ours)]) == 0
    model = small_model(fx["config"])
    model["head"]["vocab_size"] = 39  # GRID's 40 pieces with the blank: the head starts fresh
    recipe = tmp_path / "finetune.yaml"
    recipe.write_text(yaml.safe_dump({
        "base": str(REPO / "recipes" / "auto_avsr_asr_finetune_grid.yaml"), "model": model,
        "data": {"root": str(GRID), "max_clips": {"train": 2, "val": 1, "test": 1}, "workers": 0, "prepare_workers": 1,
                 "batch_size": 2, "cache_dir": str(tmp_path / "cache"),
                 "tokens": {"kind": "sentencepiece", "model": str(imported["model"]), "units": None, "case": "upper"}},
        "init": [{"path": str(ours), "take": "encoders.audio", "freeze_epochs": 1}, {"path": str(ours), "take": "backends.0"}],
        "trainer": {"max_epochs": 1, "accelerator": "cpu"}, "decoding": {"name": "greedy"}}))
    spy = StateSnapshots()
    run_recipe(str(recipe), run_dir=tmp_path / "run", callbacks=[spy])
    start, after = spy.states
    imported_state = read_checkpoint(ours)
    for key in (k for k in imported_state if k.startswith("encoders.audio.")):
        assert torch.equal(after[key], imported_state[key]), key  # frozen, BatchNorm statistics too
    assert not torch.equal(after["backends.0.proj.weight"], imported_state["backends.0.proj.weight"])
    assert fed["audio"] and all(x.dim() == 2 for x, _ in fed["audio"])  # waveforms in training and validation
