"""avtoolkit's assembly of auto_avsr's audio-visual model against numbers from their own code.

The fixture ``tests/fixtures/auto_avsr/avsr_small.pt`` (made by ``make_av_fixtures.py`` from their
commit 30951b51f4608e0b135ee5eae54358b324356415, the last with ``e2e_asr_conformer_av.py``) holds
their AV model's outputs at a small configuration with seeded weights; here the same weights go
through :func:`convert_auto_avsr` (``"audiovisual"``) into ``auto_avsr_video_conformer``,
``auto_avsr_audio_conformer``, ``auto_avsr_mlp`` and ``espnet_hybrid``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from auto_avsr_weights import checksum, seeded_state

from avtoolkit.decoding.joint_search import joint_beam_search
from avtoolkit.errors import CheckpointError
from avtoolkit.models.assemble import assemble
from avtoolkit.models.convert import auto_avsr_state, check_conversion, convert_auto_avsr, import_auto_avsr
from auto_avsr_av_model import av_section

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "auto_avsr"
TOLERANCE = 1e-4  # float32 rounding through two encoders, the fusion and the decoder




@pytest.fixture(scope="module")
def converted() -> tuple[dict, torch.nn.Module]:
    fx = torch.load(FIXTURES / "avsr_small.pt", weights_only=True)
    state = seeded_state(fx["shapes"])
    bad = [k for k, v in state.items() if abs(checksum(v) - fx["checksums"][k]) > 1e-6 * (1 + fx["checksums"][k])]
    assert not bad, f"the seeded weights differ from the fixture's (torch version?): {bad[:3]}"
    model = assemble(av_section(fx["config"])).eval()
    ours, unknown = convert_auto_avsr(auto_avsr_state(state), "audiovisual")
    diff = check_conversion(model, ours, unknown)
    assert diff.clean, diff.describe()
    model.load_state_dict(ours, strict=True)
    return fx, model


def largest(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def test_converted_small_av_model_gives_their_numbers_and_hypotheses(converted) -> None:
    fx, model = converted
    batch = {"video": fx["video"], "video_lengths": fx["lengths"],
             "audio": fx["audio"], "audio_lengths": torch.tensor([fx["audio"].shape[1]])}
    eos = fx["config"]["odim"] - 1
    with torch.no_grad():
        video, nv = model.encoders["video"](batch["video"], batch["video_lengths"])
        audio, na = model.encoders["audio"](batch["audio"], batch["audio_lengths"])
        fused, n = model.encode(batch)
        out = model(batch)
        ours_dec = torch.stack([model.head.decoder_step(fused, torch.cat([torch.zeros(1, 1, dtype=torch.long),
                                                                          fx["prefix"][:, 1:k]], 1))[0]
                                for k in range(1, fx["prefix"].shape[1] + 1)])
    theirs_dec = torch.cat([fx["decoder_log_probs"][:, eos:], fx["decoder_log_probs"][:, 1:eos]], 1)
    diffs = {"video_encoder": largest(video, fx["video_encoder_out"]),
             "audio_encoder": largest(audio, fx["audio_encoder_out"]),
             "fused": largest(fused, fx["fused"]),
             "ctc": largest(out["log_probs"], fx["ctc_log_probs"][..., :eos]),
             "decoder": largest(ours_dec, theirs_dec)}
    print(f"avsr: largest absolute difference {diffs}")
    frames = fx["fused"].shape[1]
    assert nv.tolist() == na.tolist() == n.tolist() == [frames]
    assert max(diffs.values()) < TOLERANCE, diffs
    # compared where their search behaves as ours by design (see test_auto_avsr.py): no pre-beam
    # pruning, and a hypothesis that ended before their frame limit
    compared = []
    for key, theirs in fx["searches"].items():
        beam, ctc_weight = int(key.split("_")[0][4:]), float(key.split("_")[1][3:])
        expected = [t for t in theirs["yseq"][1:] if t != eos]
        if int(1.5 * beam) < eos + 1 or len(expected) >= frames:
            continue
        hyp = joint_beam_search(out["log_probs"][0], lambda p: model.head.decoder_step(fused, p), beam_size=beam,
                                ctc_weight=ctc_weight)[0]
        print(f"avsr {key}: ours {hyp.tokens} {hyp.score:.5f}, theirs {expected} {theirs['score']:.5f}")
        assert hyp.tokens == expected, (key, hyp.tokens, expected)
        assert hyp.score == pytest.approx(theirs["score"], abs=1e-4), key
        compared.append(key)
    assert compared, "no recorded search to compare: regenerate the fixtures"


def test_base_av_skeleton_loads_into_the_shipped_recipe_with_no_missing_or_unexpected_key() -> None:
    from avtoolkit.recipe import load_recipe

    manifest = json.loads((FIXTURES / "avsr_base_keys.json").read_text())
    skeleton = {k: torch.empty(shape) for k, shape in manifest["keys"].items()}
    section = dict(load_recipe(REPO / "recipes" / "auto_avsr_avsr.yaml")["model"])
    assert section["head"]["vocab_size"] == manifest["odim"] - 1
    with torch.device("meta"):
        model = assemble(section)
    ours, unknown = convert_auto_avsr(skeleton, "audiovisual")
    diff = check_conversion(model, ours, unknown)
    assert diff.clean, diff.describe()
    assert len(ours) == len(manifest["keys"]) == len(model.state_dict())
    params = sum(v.numel() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k)
    assert 440e6 < params < 450e6, params  # two 12-layer Conformers, the 8192-wide fusion, the decoder


def test_their_av_file_in_a_one_modality_recipe_and_the_reverse_say_which_recipe(converted, tmp_path: Path) -> None:
    fx, _ = converted
    av_file, vsr_file = tmp_path / "avsr.pth", tmp_path / "vsr.pth"
    torch.save(seeded_state(fx["shapes"]), av_file)
    vsr = torch.load(FIXTURES / "vsr_small.pt", weights_only=True)
    torch.save(seeded_state(vsr["shapes"]), vsr_file)
    c = vsr["config"]
    one = assemble({"encoders": {"video": {"name": "auto_avsr_video"}},
                    "backends": [{"name": "espnet_conformer", "dim": c["adim"], "layers": c["elayers"], "heads": c["heads"],
                                  "ff_dim": c["units"], "kernel_size": c["kernel"]}],
                    "head": {"name": "espnet_hybrid", "vocab_size": c["odim"] - 1, "layers": c["dlayers"],
                             "heads": c["heads"], "dim": c["adim"], "ff_dim": c["units"]}})
    with pytest.raises(CheckpointError, match="it is their audiovisual model: use the recipe auto_avsr_avsr") as err:
        import_auto_avsr(av_file, one, tmp_path / "out.pt")
    assert "aux_encoder.after_norm.weight (their name; no avtoolkit part)" in str(err.value)
    with pytest.raises(CheckpointError, match="one of their one-modality models: use auto_avsr_vsr or auto_avsr_asr"):
        import_auto_avsr(vsr_file, assemble(av_section(fx["config"])), tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_mlp_fusion_keeps_padding_out_of_batchnorm_and_their_column_order() -> None:
    from avtoolkit.models.fusion.mlp import MLPFusion

    torch.manual_seed(0)
    f = MLPFusion({"audio": 3, "video": 2}, {"audio": 25.0, "video": 25.0}, hidden=4)
    assert f.order == ["video", "audio"] and f.output_dim == 2
    v, a = torch.randn(2, 5, 2), torch.randn(2, 5, 3)
    lengths = torch.tensor([5, 3])
    f.train()
    f({"video": (v, lengths), "audio": (a, lengths)})
    valid = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    h = f.fc1(torch.cat([v, a], -1))[valid]  # the 8 valid frames; padding would pull the mean towards fc1's bias
    assert torch.allclose(f.bn1.running_mean, 0.1 * h.mean(0), atol=1e-6)  # momentum 0.1 from zero
    f.eval()
    y, _ = f({"video": (v[:1], lengths[:1]), "audio": (a[:1], lengths[:1])})
    h = torch.relu(f.bn1(f.fc1(torch.cat([v[:1], a[:1]], -1)).transpose(1, 2)).transpose(1, 2))
    assert torch.allclose(y, f.fc2(h), atol=1e-6)  # their MLPHead on [video | audio]
