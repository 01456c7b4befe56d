"""benchmarks/grid_table.py: the GRID table and its targets come from the JSON files, checked both ways."""

from __future__ import annotations

from benchmarks.grid_table import labelled, markdown


def _rows(decoder: str, values: dict[tuple[str, str], float], noise: str = "babble") -> list[dict]:
    return [{"decoder": decoder, "noise": noise, "inputs": i, "snr": s, "wer": w / 100, "cer": w / 200}
            for (i, s), w in values.items()]


def _result(rows: list[dict], decoders: list[str], inputs: list[str]) -> dict:
    return {"decoders": decoders, "snrs": ["clean", "0", "-5"], "noises": ["babble"], "inputs": inputs, "rows": rows}


def test_targets_are_computed_from_the_figures() -> None:
    model = _rows("greedy", {("audio-only", "clean"): 0.5, ("audio-only", "0"): 40.0, ("audio-only", "-5"): 60.0,
                             ("video-only", "clean"): 8.0, ("video-only", "0"): 8.0, ("video-only", "-5"): 8.0,
                             ("audio-visual", "clean"): 0.4, ("audio-visual", "0"): 15.0, ("audio-visual", "-5"): 8.0})
    peer = _rows("sphinx", {("audio-only", "clean"): 10.0, ("audio-only", "0"): 30.0})
    result = _result(model, ["greedy"], ["audio-only", "video-only", "audio-visual"])
    md = markdown(result, {"decoders": ["sphinx"], "rows": peer}, None)
    assert "| audio-only | greedy | 0.5 | 40.0 | 60.0 |" in md and "| audio-only | sphinx | 10.0 | 30.0 | - |" in md
    assert "| audio-only clean WER <= 1% | 0.5% | yes |" in md
    assert "| video-only WER <= 10% | 8.0% | yes |" in md
    # 15.0 at 0 dB is worse than video-only's 8.0; at -5 dB 8.0 is no worse (equal) and under a third of 60.0
    assert ("| audio-visual no worse than the better single modality at every SNR (babble) | "
            "0: 15.0 vs 8.0 (video-only greedy) | **no** |") in md
    assert "| audio-visual at -5 dB babble <= a third of its own audio-only | 8.0% vs 60.0% (ratio 0.13) | yes |" in md
    assert "| audio-only beats pocketsphinx at every SNR (babble) | 0: 40.0 vs 30.0 | **no** |" in md


def test_another_models_rows_are_labelled_and_count_as_a_single_modality() -> None:
    av = _result(_rows("joint", {("audio-only", "clean"): 2.0, ("audio-only", "-5"): 30.0,
                                 ("audio-visual", "clean"): 1.5, ("audio-visual", "-5"): 12.0}),
                 ["joint"], ["audio-only", "audio-visual"])
    audio = labelled(_result(_rows("joint", {("audio-only", "clean"): 1.0, ("audio-only", "-5"): 60.0}),
                             ["joint"], ["audio-only"]), "audio")
    md = markdown(av, None, None, [audio], audio_ref="audio: joint")
    assert "| audio-only | audio: joint | 1.0 | - | 60.0 |" in md
    # the separate audio model's 1.0 beats the AV model's clean 1.5
    assert "clean: 1.5 vs 1.0 (audio-only audio: joint) | **no** |" in md
    assert "| audio-visual at -5 dB babble <= a third of its own audio-only | 12.0% vs 30.0% (ratio 0.40) | **no** |" in md
    assert "| audio-visual at -5 dB babble <= a third of audio: joint audio-only | 12.0% vs 60.0% (ratio 0.20) | yes |" in md
