"""benchmarks/grid_pocketsphinx.py: GRID's grammar and pronunciations, and the very audio noise-eval scores."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import grid_pocketsphinx as ps  # noqa: E402

SHARED_GRID = ROOT.parent / "shared" / "data" / "grid_s1"
HAS_POCKETSPHINX = importlib.util.find_spec("pocketsphinx") is not None
needs_pocketsphinx = pytest.mark.skipif(not HAS_POCKETSPHINX,
                                        reason="pocketsphinx is not installed (`make bench-peers` installs it)")

#: GRID's sentence slots as Cooke et al. (2006) define them: the letter slot lacks w.
COOKE_2006 = {
    "command": {"bin", "lay", "place", "set"},
    "colour": {"blue", "green", "red", "white"},
    "preposition": {"at", "by", "in", "with"},
    "letter": set("abcdefghijklmnopqrstuvxyz"),
    "digit": {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"},
    "adverb": {"again", "now", "please", "soon"},
}


def _rules(jsgf: str) -> dict[str, str]:
    return dict(re.findall(r"^(?:public )?<(\w+)> = (.*);$", jsgf, re.M))


def test_the_grammar_is_grids_six_slots_in_order():
    rules = _rules(ps.grid_jsgf())
    assert rules.pop("sentence") == "<command> <colour> <preposition> <letter> <digit> <adverb>"
    assert {slot: set(words.split(" | ")) for slot, words in rules.items()} == COOKE_2006
    assert ps.grid_jsgf().startswith("#JSGF V1.0;\ngrammar grid;\n")


def test_the_dictionary_pronounces_every_grid_word_once_per_pronunciation(tmp_path):
    # a CMU-format dictionary as pocketsphinx ships it: alternates numbered, other words around
    words = sorted({w for slot in COOKE_2006.values() for w in slot})
    cmudict = "".join(f"{w} P{i}\n" for i, w in enumerate(words)) + "a(2) EY\nthe DH AH\nw D AH B AH L Y UW\n"
    gram, dic = ps.write_decoder_files(tmp_path, _write(tmp_path / "cmudict.dict", cmudict))
    entries = [line.split(" ", 1) for line in dic.read_text().splitlines()]
    heads = [w.split("(")[0] for w, _ in entries]
    assert set(heads) == set(words) and len(words) == 51  # every GRID word and nothing else
    # the letter a is never the article AH; z is said both ways by GRID's British talkers
    assert [p for w, p in entries if w.startswith("a(") or w == "a"] == ["EY"]
    assert [w for w, _ in entries if w.split("(")[0] == "z"] == ["z", "z(2)"]
    assert dict(entries)["soon"] == f"P{words.index('soon')}"
    assert _rules(gram.read_text())["sentence"].count("<") == 6


def test_a_grid_word_without_pronunciation_is_named():
    with pytest.raises(ValueError, match=r"GRID words soon, please\b|GRID words please, soon\b"):
        ps.grid_dictionary({w: ["X"] for slot in COOKE_2006.values() for w in slot if w not in ("soon", "please")})


def test_pcm16_keeps_16_bit_audio_exact_and_scales_louder_noise_down():
    clean = torch.arange(-32768, 32768, 997, dtype=torch.float32) / 32768
    pcm, scaled = ps.to_pcm16(clean)
    assert not scaled and torch.equal(torch.frombuffer(bytearray(pcm), dtype=torch.int16).float() / 32768, clean)
    pcm, scaled = ps.to_pcm16(clean * 3)
    back = torch.frombuffer(bytearray(pcm), dtype=torch.int16).float()
    assert scaled and back.abs().max() >= 32767 and torch.allclose(back / back.abs().max(), clean / clean.abs().max(),
                                                             atol=1e-4)


def test_without_pocketsphinx_the_script_says_how_to_install_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # `import pocketsphinx` raises ImportError
    assert ps.main(["--root", "nowhere"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pocketsphinx is not installed" in err[0] and "make bench-peers" in err[0]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def grid_root() -> Path:
    if not (SHARED_GRID / "s1").is_dir():
        pytest.skip(f"needs the shared GRID s1 clips at {SHARED_GRID} (see docs/grid.md)")
    return SHARED_GRID


def _few(tmp_path: Path) -> list[str]:
    return [f"data.cache_dir='{tmp_path}'", "data.max_clips={train: 4, val: 1, test: 2}", "data.workers=0",
            "data.prepare_workers=1"]


@pytest.mark.parametrize("noise,snr", [("babble", 0.0), ("white", -5.0)])
def test_the_benchmark_hears_the_waveform_the_models_log_mel_is_computed_from(grid_root, tmp_path, noise, snr):
    dm = ps.grid_datamodule(grid_root, noise, snr, overrides=_few(tmp_path), prepare=True)
    test = dm.splits["test"]
    fed: list[torch.Tensor] = []
    log_mel = test.audio.log_mel
    test.audio.log_mel = lambda x: (fed.append(x.clone()), log_mel(x))[1]  # what the dataset turns into log-mel
    taken = list(ps.noisy_test_waves(dm))
    assert [key for key, _, _ in taken] == [c.key for c in test.clips] and len(taken) == 2
    clean = ps.grid_datamodule(grid_root, noise, None, overrides=_few(tmp_path)).splits["test"]
    for i, (key, text, wave) in enumerate(taken):
        item = test[i]
        assert item["id"] == key and item["text"] == text
        assert torch.equal(fed[-1], wave)  # bit-identical
        clean_wave = clean.noisy_wave(i)
        achieved = 10 * torch.log10(clean_wave.pow(2).mean() / (wave - clean_wave).pow(2).mean())
        assert abs(float(achieved) - snr) < 0.01  # the noise is there, at the SNR asked for


@needs_pocketsphinx
def test_the_shipped_dictionary_pronounces_every_grid_word(tmp_path):
    import pocketsphinx

    cmudict = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    known = ps.read_cmudict(cmudict.read_text())
    assert all(w in known for slot in COOKE_2006.values() for w in slot)  # the overrides only narrow or add
    ps.Recogniser(tmp_path)  # the decoder accepts the grammar and every phone of the dictionary


@needs_pocketsphinx
def test_pocketsphinx_decodes_clean_grid_sentences(grid_root, tmp_path):
    dm = ps.grid_datamodule(grid_root, "white", None, overrides=_few(tmp_path), prepare=True)
    cond, hyps = ps.run_condition(ps.Recogniser(tmp_path / "decoder"), dm, "white", None)
    assert cond.clips == 2 and cond.incomplete == 0  # clean speech: the grammar's whole path every time
    assert all(len(h["hyp"].split()) == 6 for h in hyps)
    assert cond.wer <= 0.5  # clean studio speech: most words right (10% WER over the whole test split)
