"""The LRW recipes: sizes, summary, and prepare + run on a tiny real-mp4 LRW tree."""

from pathlib import Path

import pytest
import torch

from avtoolkit.build import build_model
from avtoolkit.cli.main import main
from avtoolkit.models.summary import summarize_recipe
from avtoolkit.recipe import validate_recipe
from synthetic_lrw import write_synthetic_lrw

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
EFFV2 = ["lrw_effv2t.yaml", "lrw_effv2s.yaml", "lrw_effv2b.yaml"]

#: A model small enough to train in seconds on 2 CPU cores (same components as lrw_effv2t).
TINY = [
    "model.encoders.video.width=0.25", "model.encoders.video.depth=0.2",
    "model.encoders.video.head_features=0", "model.encoders.video.output_dim=32",
    "model.encoders.video.drop_path_rate=0.0",
    "model.backends.0.layers=1", "model.backends.0.ff_dim=64", "model.backends.0.dropout=0.0",
    "model.backends.1.channels=32", "model.backends.1.layers=2", "model.backends.1.dropout=0.0",
]


@pytest.mark.parametrize("name,target,tolerance", [
    ("lrw_effv2t.yaml", 8.2e6, 0.10), ("lrw_effv2s.yaml", 26.2e6, 0.10), ("lrw_effv2b.yaml", 11.9e6, 0.05),
])
def test_parameter_counts_match_the_published_sizes(name, target, tolerance):
    model = build_model(RECIPES / name)  # num_classes defaults to LRW's 500 words
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - target) <= tolerance * target, f"{name}: {count / 1e6:.2f}M"


@pytest.mark.parametrize("name", EFFV2 + ["lrw_resnet18_mstcn.yaml"])
def test_recipes_validate_with_lrw_data(name):
    recipe = validate_recipe(RECIPES / name, require_data=True)
    assert recipe["data"]["name"] == "lrw" and recipe["model"]["head"]["name"] == "word_classifier"


def test_summary_lists_every_component_for_a_29x88x88_clip(capsys):
    summary = summarize_recipe(RECIPES / "lrw_effv2t.yaml", TINY)
    assert [r.name for r in summary.rows] == ["effnetv2_3d", "transformer", "tcn", "word_classifier"]
    assert summary.inputs["video"] == (1, 29, 1, 88, 88)
    assert all(r.macs > 0 for r in summary.rows)
    assert main(["summary", str(RECIPES / "lrw_effv2t.yaml"), *TINY]) == 0
    assert "effnetv2_3d" in capsys.readouterr().out


def test_prepare_without_lrw_explains_where_to_get_it(capsys):
    assert main(["prepare", str(RECIPES / "lrw_effv2t.yaml")]) == 2
    err = capsys.readouterr().err
    assert "robots.ox.ac.uk" in err and "data.root=" in err


def test_variable_lengths_and_padding_do_not_change_a_prediction():
    torch.manual_seed(0)
    model = build_model(RECIPES / "lrw_effv2t.yaml", TINY + ["model.encoders.video.drop_path_rate=0.0"]).eval()
    short = torch.randn(1, 17, 1, 88, 88)
    other = torch.randn(1, 29, 1, 88, 88)
    boundary = torch.ones(1, 29)
    alone = model({"video": short, "video_lengths": torch.tensor([17]), "word_boundary": boundary[:, :17]})
    padded = torch.cat([short, torch.zeros(1, 12, 1, 88, 88)], dim=1)
    batch = {"video": torch.cat([padded, other]), "video_lengths": torch.tensor([17, 29]),
             "word_boundary": torch.cat([torch.cat([boundary[:, :17], torch.zeros(1, 12)], 1), boundary])}
    together = model(batch)
    torch.testing.assert_close(together["log_probs"][:1], alone["log_probs"], atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_prepare_and_run_reach_70_percent_on_a_tiny_lrw_tree_and_predict_reads_the_clips(tmp_path, capsys):
    from avtoolkit.inference.word_prediction import predict_words
    from avtoolkit.engine.run import run_recipe

    root = write_synthetic_lrw(tmp_path / "lipread_mp4", clips={"train": 12, "val": 3, "test": 5},
                               frames=15)  # shorter clips than LRW's 29 keep the CPU run short
    (root / "ABOUT" / "train" / "ABOUT_99999.mp4").write_bytes(b"not a video")
    cache = tmp_path / "rois"
    data = [f"data.root={root}", f"data.cache_dir={cache}", "data.workers=0", "data.batch_size=4",
            "data.crop_size=64", "data.time_mask=3",
            "data.prepare_workers=2"]
    assert main(["prepare", str(RECIPES / "lrw_effv2t.yaml"), *data]) == 1  # 1: a clip failed
    assert "ABOUT_99999.mp4" in (cache / "prepare_report.tsv").read_text()
    # 14 epochs: at 6 the test top-1 of this 48-clip run ranged 40-100% over seeds 0-2 in either
    # memory layout (seed 0 happened to pass); at 14 seeds 0-3 all reached 18/20 or more (also
    # with one thread) until every epoch was reseeded at its start (exact resume): with that,
    # seeds 0-3 give 17, 19, 19, 19 of 20 at 14 epochs and 19, 20, 17, 20 at 18. The EfficientNetV2
    # training route of issue 25 (same values within 5e-6, other rounding) then gave seed 0 15/20 and
    # seeds 1-3 16 or more. So the bar is 14/20 (chance is 5/20, four words): it shows the run
    # learns without betting on one seed's luck. One thread: this model's ops are too small for two, whose OpenMP barriers
    # spin whenever the other thread is descheduled: 97 CPU-s at load 2 and 185 at load 5 with
    # two threads, 32 and 45 with one (the run took over 900 s at load 5 on a user's 2-core CPU).
    metrics = run_recipe(RECIPES / "lrw_effv2t.yaml", data + TINY + [
        "trainer.max_epochs=14", "trainer.precision='32'", "trainer.accelerator=cpu", "trainer.progress_bar=false",
        "trainer.threads=1",
        "optim.lr=0.003", "schedule.warmup_epochs=0", "ema.enabled=false", "loss.mixup_alpha=0.0",
        "loss.label_smoothing=0.0", "seed=0",
    ], run_dir=tmp_path / "run")
    assert metrics["test/acc"] >= 0.7 - 1e-6, metrics  # 14 of 20, give or take float32 rounding
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    assert best.is_file()

    # predict on the raw test mp4s through the trained checkpoint (the synthetic "face" is a disc
    # no detector finds, and the clips are LRW-framed: LRW's fixed mouth box).
    clips = sorted(root.glob("*/test/*.mp4"))
    right = []
    for clip in clips:
        top = predict_words(best, clip, top=4, method="fixed")
        words, probs = [w for w, _ in top], [p for _, p in top]
        assert sorted(words) == ["ABOUT", "BLACK", "CHILD", "DOING"]  # top 4 of 4 words: the whole vocabulary
        assert sum(probs) == pytest.approx(1.0, abs=1e-4) and probs == sorted(probs, reverse=True)
        right.append(words[0] == clip.parent.parent.name)
    # the same bar as the test split's: `predict` reads the raw clips the dataset prepared
    assert sum(right) / len(clips) >= 0.7 - 1e-6, f"predict top-1 {sum(right)}/{len(clips)}, test/acc {metrics['test/acc']}"
    clip = clips[right.index(True)]
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(best), str(clip), "--top", "2", "--crop", "fixed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split()[0] == clip.parent.parent.name
    assert 0.0 < float(lines[1].split()[1]) <= float(lines[0].split()[1]) <= 1.0
