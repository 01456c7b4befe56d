"""Bounds and types on every recipe setting (issue 24, section 3): a recipe too large or too deep once
its YAML is expanded, counts and seeds beyond any sensible size, probabilities outside [0, 1] and
ranges given high-to-low are refused by ``validate`` (and so by ``run``) before any work: exit 2, one
message naming the key (and file), no traceback, nothing written."""

from __future__ import annotations

import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from avtoolkit.cli.main import main

sys.path.insert(0, str(Path(__file__).parent))
from test_recipes import GOOD as RECIPE  # noqa: E402  (the valid tiny recipe of the recipe-mistake rows)

GOOD = RECIPE.replace("optim:\n  lr: 0.001\n", "") + "data: {name: manifest, noise_prob: 0.5, noise_snr_db: [-5, 20]}\n"


def billion_laughs(levels: int = 9, fanout: int = 9) -> str:
    """About 1 kB of YAML whose aliases expand to ``fanout ** levels`` values."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * fanout)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fanout)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n" + GOOD


@contextmanager
def at_most(seconds: int) -> Iterator[None]:
    """Fails the test (instead of hanging it) when the block runs longer than ``seconds``."""
    def expired(signum, frame):  # noqa: ANN001
        raise AssertionError(f"still busy after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# (id, recipe text, overrides, what the message must name)
CASES = [
    ("billion-laughs", billion_laughs(), [], ["r.yaml", "100,000 values", "aliases"]),
    ("5000-nested-brackets", "deep: " + "[" * 5000 + "]" * 5000 + "\n" + GOOD, [],
     ["r.yaml:1", "nested more than 64 levels"]),
    ("5000-nested-brackets-override", GOOD, ["data.noise_snr_db=" + "[" * 5000 + "]" * 5000],
     ["data.noise_snr_db", "nested more than 64 levels"]),
    ("layers-1e29", GOOD.replace("layers: 1", "layers: " + "1" + "0" * 29), [],
     ["r.yaml:6", "model.backends.0.layers", "at most 1,000,000"]),
    ("channels-list-too-large-override", GOOD, ["model.encoders.audio.channels=[4,10000000,4]"],
     ["model.encoders.audio.channels", "at most 1,000,000"]),
    ("seed-1e23", "seed: " + "1" + "0" * 23 + "\n" + GOOD, [], ["r.yaml:1", "seed", "2**32 - 1"]),
    ("negative-seed-override", GOOD, ["seed=-1"], ["seed", "2**32 - 1", "-1"]),
    ("noise-prob-1.5", GOOD.replace("noise_prob: 0.5", "noise_prob: 1.5"), [],
     ["r.yaml:8", "data.noise_prob", "[0, 1]", "1.5"]),
    ("dropout-override", GOOD, ["model.encoders.audio.dropout=-0.1"], ["model.encoders.audio.dropout", "[0, 1]"]),
    ("noise-snr-high-to-low-override", GOOD, ["data.noise_snr_db=[20,-5]"],
     ["data.noise_snr_db", "low must not exceed high", "[-5, 20]"]),
    ("noise-snr-three-numbers", GOOD.replace("[-5, 20]", "[-5, 0, 20]"), [],
     ["r.yaml:8", "data.noise_snr_db", "[low, high] pair"]),
    ("beam-size-1e8", GOOD + "decoding: {name: beam, beam_size: 100000000}\n", [], ["decoding.beam_size", "[1, 10000]"]),
    ("batch-size-0-override", GOOD, ["batch_size=0"], ["batch_size", "at least 1"]),
]


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize("text,extra,names", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_out_of_bounds_recipes_are_refused_at_once(command, text, extra, names, tmp_path: Path, capsys):
    (tmp_path / "r.yaml").write_text(text)
    argv = [command, str(tmp_path / "r.yaml"), *extra]
    if command == "run":
        argv += ["--run-dir", str(tmp_path / "run")]
    start = time.perf_counter()
    with at_most(20):
        code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "RecursionError" not in err
    assert err.count("\n") < 20, err  # one message, not a 3000-line trace
    for name in names:
        assert name in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.yaml"]
    if "laughs" in text or "[[[[" in text:
        assert time.perf_counter() - start < 5


def test_the_good_recipe_validates_and_modest_aliases_load(tmp_path: Path, capsys):
    (tmp_path / "r.yaml").write_text(GOOD)
    assert main(["validate", str(tmp_path / "r.yaml")]) == 0, capsys.readouterr().err
    from avtoolkit.recipe.bounded_yaml import safe_load_bounded

    data, _ = safe_load_bounded(billion_laughs(levels=4, fanout=9))  # 9**4 = 6561 values: fine
    assert len(data["l4"]) == 9 and data["l4"][0] is data["l3"]


def test_the_largest_seed_wraps_round_when_an_epoch_is_added():
    from types import SimpleNamespace

    import numpy as np

    from avtoolkit.engine.callbacks import EpochSeeder

    seeder = EpochSeeder(2**32 - 1)
    seeder._reseed(SimpleNamespace(current_epoch=1))  # seed 2**32 would be refused by numpy
    assert np.random.get_state()[1][0] == np.random.RandomState(0).get_state()[1][0]


def test_summary_of_a_clip_shorter_than_one_video_frame_is_a_table(capsys):
    assert main(["summary", "grid_audio", "--audio-frames", "1"]) == 0  # was a reshape RuntimeError
    assert "total" in capsys.readouterr().out
