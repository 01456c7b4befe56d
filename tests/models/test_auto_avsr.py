"""avtoolkit's auto_avsr components against numbers from mpc001/auto_avsr's own code.

The fixtures (``tests/fixtures/auto_avsr``, made by its ``make_fixtures.py`` from their commit
182b62837773ab01052d4ac21ef1d2203ea7d267) hold their model's outputs at a small configuration
with seeded weights; here the same weights go through :func:`convert_auto_avsr` into our
components, which must give the same numbers and the same beam-search hypothesis.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from auto_avsr_weights import checksum, seeded_state

from avtoolkit.decoding.joint_search import joint_beam_search
from avtoolkit.models.assemble import assemble
from avtoolkit.models.convert import auto_avsr_state, check_conversion, convert_auto_avsr

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "auto_avsr"
#: float32 rounding through ~20 layers of a random network; the largest seen is printed by the test
TOLERANCE = 1e-4


def model_section(modality: str, cfg: dict) -> dict:
    encoder = {"video": "auto_avsr_video", "audio": "auto_avsr_audio"}[modality]
    return {"encoders": {modality: {"name": encoder}},
            "backends": [{"name": "espnet_conformer", "dim": cfg["adim"], "layers": cfg["elayers"],
                          "heads": cfg["heads"], "ff_dim": cfg["units"], "kernel_size": cfg["kernel"]}],
            "head": {"name": "espnet_hybrid", "vocab_size": cfg["odim"] - 1, "layers": cfg["dlayers"],
                     "heads": cfg["heads"], "dim": cfg["adim"], "ff_dim": cfg["units"]}}


def load_fixture(name: str) -> tuple[dict, torch.nn.Module]:
    fx = torch.load(FIXTURES / f"{name}_small.pt", weights_only=True)
    state = seeded_state(fx["shapes"])
    bad = [k for k, v in state.items() if abs(checksum(v) - fx["checksums"][k]) > 1e-6 * (1 + fx["checksums"][k])]
    assert not bad, f"the seeded weights differ from the fixture's (torch version?): {bad[:3]}"
    model = assemble(model_section(fx["modality"], fx["config"])).eval()
    converted, unknown = convert_auto_avsr(auto_avsr_state(state), fx["modality"])
    diff = check_conversion(model, converted, unknown)
    assert diff.clean, diff.describe()
    model.load_state_dict(converted, strict=True)
    return fx, model


def largest(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


@pytest.mark.parametrize("name", ["vsr", "asr"])
def test_converted_small_model_gives_their_numbers(name: str) -> None:
    fx, model = load_fixture(name)
    modality = fx["modality"]
    x = fx["input"] if modality == "video" else fx["input"][..., 0]
    lengths = fx["lengths"] if modality == "video" else torch.tensor([x.shape[1]])
    with torch.no_grad():
        feats, n = model.encoders[modality](x, lengths)
        enc, n = model.backends[0](feats, n)
        out = model.head(enc, n, {})
        eos = fx["config"]["odim"] - 1
        ours_dec = torch.stack([model.head.decoder_step(enc, torch.cat([torch.zeros(1, 1, dtype=torch.long),
                                                                        fx["prefix"][:, 1:k]], 1))[0]
                                for k in range(1, fx["prefix"].shape[1] + 1)])
    theirs_dec = torch.cat([fx["decoder_log_probs"][:, eos:], fx["decoder_log_probs"][:, 1:eos]], 1)
    diffs = {"encoder": largest(enc, fx["encoder_out"]),
             "ctc": largest(out["log_probs"], fx["ctc_log_probs"][..., :eos]),
             "decoder": largest(ours_dec, theirs_dec)}
    print(f"{name}: largest absolute difference {diffs}")
    assert n.tolist() == [fx["encoder_out"].shape[1]]
    assert max(diffs.values()) < TOLERANCE, diffs
    # The hypotheses. Compared where their search behaves as ours by design: no pre-beam pruning
    # (theirs keeps 1.5 x beam tokens per step by decoder score; ours scores every token), and a
    # hypothesis that ended on its own (at maxlen = frames, theirs appends an unscored <eos> to
    # whatever still runs; ours scores <eos> there like anywhere else).
    frames = fx["encoder_out"].shape[1]
    compared = []
    for key, theirs in fx["searches"].items():
        beam, ctc_weight = int(key.split("_")[0][4:]), float(key.split("_")[1][3:])
        expected = [t for t in theirs["yseq"][1:] if t != eos]
        if int(1.5 * beam) < eos + 1 or len(expected) >= frames:
            continue
        hyp = joint_beam_search(out["log_probs"][0], lambda p: model.head.decoder_step(enc, p), beam_size=beam,
                                ctc_weight=ctc_weight)[0]
        print(f"{name} {key}: ours {hyp.tokens} {hyp.score:.5f}, theirs {expected} {theirs['score']:.5f}")
        assert hyp.tokens == expected, (key, hyp.tokens, expected)
        assert hyp.score == pytest.approx(theirs["score"], abs=1e-4), key
        compared.append(key)
    assert compared, "no recorded search to compare: regenerate the fixtures"


@pytest.mark.parametrize("name,modality", [("vsr", "video"), ("asr", "audio")])
def test_base_configuration_skeleton_loads_with_no_missing_or_unexpected_key(name: str, modality: str) -> None:
    manifest = json.loads((FIXTURES / "base_keys.json").read_text())
    skeleton = {k: torch.empty(shape) for k, shape in manifest["keys"][name].items()}
    from avtoolkit.recipe import load_recipe

    recipe = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / f"auto_avsr_{name}.yaml")
    section = dict(recipe["model"])
    section["head"] = {**section["head"], "vocab_size": manifest["odim"] - 1}
    with torch.device("meta"):
        model = assemble(section)
    converted, unknown = convert_auto_avsr(skeleton, modality)
    diff = check_conversion(model, converted, unknown)
    assert diff.clean, diff.describe()
    params = sum(v.numel() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k)
    assert 240e6 < params < 260e6, params  # their README's "about 250M"


def test_a_wrong_checkpoint_is_named_key_by_key() -> None:
    fx = torch.load(FIXTURES / "vsr_small.pt", weights_only=True)
    state = seeded_state(fx["shapes"])
    state.pop("encoder.after_norm.weight")
    state["decoder.output_layer.weight"] = torch.zeros(3, 3)
    state["lm.embed.weight"] = torch.zeros(1)
    model = assemble(model_section("video", fx["config"]))
    diff = check_conversion(model, *convert_auto_avsr(state, "video"))
    text = diff.describe()
    assert "backends.0.after_norm.weight" in text and "lm.embed.weight" in text
    assert diff.mismatched == [("head.decoder.output_layer.weight", (3, 3), (16, 64))]
