"""The ``grid`` dataset component: batches of both modes on shared clips, failing clips reported."""

from __future__ import annotations

import os

import pytest
import torch

from avtoolkit.registry import registry_for

from .conftest import make_layout, sentence_alignment, write_alignment

FEW = {"train": 3, "val": 1, "test": 2}


def _grid(**kwargs):
    args = {"workers": 0, "prepare_workers": 1, "max_clips": FEW, "crop_method": "face"} | kwargs
    dm = registry_for("dataset").get("grid")(**args)
    dm.prepare_data()
    dm.setup()
    return dm


def test_sentence_batches_follow_the_av_asr_contract(grid_root, tmp_path):
    dm = _grid(root=str(grid_root), cache_dir=str(tmp_path), noise_snr_db=5.0, noise_prob=1.0, noise_type="babble",
               audio_norm="utterance")
    assert dm.describe()["train"] == 3 and dm.describe()["failed_clips"] == 0
    # the prepare run leaves contact sheets of its first clips beside its report
    assert len(list((dm.folder / "sheets").glob("*.png"))) == 3
    batch = next(iter(dm.train_dataloader()))
    assert batch["audio"].shape[0] == 3 and batch["audio"].shape[2] == 40
    assert batch["audio_lengths"].max() == batch["audio"].shape[1] and 295 <= int(batch["audio_lengths"].min()) <= 302
    assert batch["video"].shape[1:] == (75, 1, 64, 64) or batch["video"].shape[1] == 74
    # the targets spell the alignment's words
    from avtoolkit.data.text import CharVocab

    vocab = CharVocab()
    for ids, n, text in zip(batch["targets"], batch["target_lengths"], batch["texts"]):
        assert vocab.decode(ids[:n].tolist()) == text and len(text.split()) == 6
    # per-utterance normalised log-mel: zero mean per band over the valid frames
    first = batch["audio"][0, : batch["audio_lengths"][0]]
    assert first.mean(0).abs().max() < 0.5  # SpecAugment masks move it a little
    test = next(iter(dm.test_dataloader()))
    again = next(iter(dm.test_dataloader()))
    assert torch.equal(test["audio"], again["audio"])  # evaluation is deterministic


def test_trim_silence_cuts_training_clips_to_their_speech_and_leaves_test_clips_whole(grid_root, tmp_path):
    dm = _grid(root=str(grid_root), cache_dir=str(tmp_path), trim_silence=0.2, spec_augment=False)
    train = dm.splits["train"]
    for i, clip in enumerate(train.clips):
        item = train[i]
        speech = clip.end_frame - clip.words[0].start_frame  # in 25 fps frames
        frames = item["video"].shape[0]
        # the aligned speech plus at most 0.2 s (5 frames) each side, on whole frames
        assert speech <= frames <= speech + 2 * 5 + 2, (clip.key, speech, frames)
        # audio and video cut alike: 4 log-mel frames (100 Hz) per video frame
        assert abs(item["audio"].shape[0] - 4 * frames) <= 3
    # margins are drawn afresh: the same clip comes out at different lengths
    assert len({train[0]["video"].shape[0] for _ in range(8)}) > 1
    test = dm.splits["test"][0]
    assert test["video"].shape[0] >= 74 and test["audio"].shape[0] >= 295  # whole clips


def test_babble_comes_from_training_clips_only(grid_root, tmp_path):
    dm = _grid(root=str(grid_root), cache_dir=str(tmp_path), test_noise_snr_db=0.0, noise_type="babble")
    pool = {c.key for c in dm.splits["test"].audio.talkers.pool}
    assert pool == {c.key for c in dm.clips["train"]} and not pool & {c.key for c in dm.clips["test"]}


def test_word_batches_follow_the_lrw_contract(grid_root, tmp_path):
    dm = _grid(root=str(grid_root), cache_dir=str(tmp_path), mode="word", modalities=["video"], word_window=15)
    assert dm.vocabulary[:3] == ["a", "again", "at"] and len(dm.vocabulary) == 51
    batch = next(iter(dm.val_dataloader()))  # one clip: its six words in order
    assert batch["video"].shape == (6, 15, 1, 88, 88)
    assert [dm.vocabulary[i] for i in batch["label"]] == batch["texts"]
    assert batch["word_boundary"].shape == (6, 15)
    assert ((batch["word_boundary"] == 0) | (batch["word_boundary"] == 1)).all()
    assert (batch["word_boundary"].sum(1) >= 1).all()


def test_failing_clips_are_named_in_the_report_and_counted(grid_root, tmp_path):
    root = tmp_path / "grid"
    make_layout(root, {"s1": []})
    (root / "s1").mkdir(parents=True, exist_ok=True)
    for clip_id in ("bbaf2n", "bbal6n"):
        os.symlink(grid_root / "s1" / f"{clip_id}.mp4", root / "s1" / f"{clip_id}.mp4")
        write_alignment(root / "alignments/s1" / f"{clip_id}.align",
                        [(s, e, w) for s, e, w in _real_alignment(grid_root, clip_id)])
    # a clip whose words run past its 75 frames, and one that is not a video at all
    os.symlink(grid_root / "s1" / "bbal7s.mp4", root / "s1" / "bbal7s.mp4")
    write_alignment(root / "alignments/s1/bbal7s.align", sentence_alignment("bin blue at l seven soon", step=20000))
    (root / "s1" / "bbaz4n.mp4").write_bytes(b"not a video")
    write_alignment(root / "alignments/s1/bbaz4n.align", sentence_alignment("bin blue at z four now"))
    (root / "s1" / "bbbm2p.mp4").write_bytes(b"")  # no alignment
    with pytest.warns(UserWarning, match="left out"):
        dm = _grid(root=str(root), cache_dir=str(tmp_path / "cache"), split="hash",
                   split_fractions={"train": 1.0, "val": 0.0, "test": 0.0}, max_clips=None)
    assert dm.describe()["train"] == 2 and dm.describe()["failed_clips"] == 3
    report = (dm.folder / "prepare_report.tsv").read_text()
    assert "s1/bbal7s\talignment ends at frame" in report
    assert "s1/bbaz4n\t" in report and "s1/bbbm2p\tno alignment" in report


def _real_alignment(grid_root, clip_id):
    lines = (grid_root / "alignments/s1" / f"{clip_id}.align").read_text().split("\n")
    return [(int(a), int(b), w) for a, b, w in (ln.split() for ln in lines if ln.strip())]


GRID_RECIPES = ["grid_avasr", "grid_audio", "grid_video", "grid_words"]


@pytest.mark.parametrize("name", GRID_RECIPES)
def test_grid_recipes_run_a_batch_through_their_model(name, grid_root, tmp_path):
    from pathlib import Path

    from avtoolkit import build_model
    from avtoolkit.engine.resolve import resolve_run

    recipe = Path(__file__).resolve().parents[3] / "recipes" / f"{name}.yaml"
    run = resolve_run(recipe, [f"data.root={grid_root}", f"data.cache_dir={tmp_path}", "data.workers=0",
                           "data.prepare_workers=1", "data.max_clips={train: 2, val: 1, test: 1}"])
    dm = run.datamodule
    dm.prepare_data()
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    model = build_model(run.recipe).eval()
    with torch.no_grad():
        out = model(batch)
    if name == "grid_words":
        assert out["log_probs"].shape == (6, 51)
    else:
        assert out["log_probs"].shape[0] == 1 and out["log_probs"].shape[-1] == len(dm.vocabulary)


def test_avtoolkit_prepare_prepares_a_grid_recipe(grid_root, tmp_path, capsys):
    from avtoolkit.cli.main import main

    args = ["prepare", "grid_audio", f"data.root={grid_root}", f"data.cache_dir={tmp_path}",
            "data.max_clips={train: 2, val: 1, test: 1}", "--workers", "1"]
    assert main(args) == 0
    assert "prepared 4 clips, 0 already cached, 0 failed" in capsys.readouterr().out
    assert main(args) == 0  # a second run finds everything cached
    assert "prepared 0 clips, 4 already cached, 0 failed" in capsys.readouterr().out
