"""benchmarks/grid_table.py: the GRID table and its targets come from the JSON files, checked both ways."""

from __future__ import annotations

from benchmarks.grid_table import markdown


def _rows(decoder: str, values: dict[tuple[str, str], float], noise: str = "babble") -> list[dict]:
    return [{"decoder": decoder, "noise": noise, "inputs": i, "snr": s, "wer": w / 100, "cer": w / 200}
            for (i, s), w in values.items()]


def test_targets_are_computed_from_the_figures() -> None:
    model = _rows("greedy", {("audio-only", "clean"): 0.5, ("audio-only", "0"): 40.0, ("video-only", "clean"): 8.0,
                             ("video-only", "0"): 8.0, ("audio-visual", "clean"): 0.4, ("audio-visual", "0"): 15.0})
    peer = _rows("sphinx", {("audio-only", "clean"): 10.0, ("audio-only", "0"): 30.0})
    result = {"decoders": ["greedy"], "snrs": ["clean", "0"], "noises": ["babble"],
              "inputs": ["audio-only", "video-only", "audio-visual"], "rows": model}
    md = markdown(result, {"decoders": ["sphinx"], "rows": peer}, None)
    assert "| audio-only | greedy | 0.5 | 40.0 |" in md and "| audio-only | sphinx | 10.0 | 30.0 |" in md
    assert "| audio-only clean WER <= 1% | 0.5% | yes |" in md
    assert "| video-only WER <= 10% | 8.0% | yes |" in md
    assert "| audio-visual at 0 dB babble <= half of audio-only | 15.0% vs 40.0% (ratio 0.38) | yes |" in md
    # 15.0 at 0 dB is more than video-only's 8.0 + 1, and 40.0 loses to pocketsphinx's 30.0
    assert "| audio-visual <= better single modality + 1 at every SNR (babble) | 0: 15.0 vs 8.0 | **no** |" in md
    assert "| audio-only beats pocketsphinx at every SNR (babble) | 0: 40.0 vs 30.0 | **no** |" in md
