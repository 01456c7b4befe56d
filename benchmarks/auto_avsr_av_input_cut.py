"""How much auto_avsr's AV input cut changes the output: their ``cut_or_pad`` versus avtoolkit's whole track.

Their AV dataset cuts or zero-pads the waveform to 640 samples per video frame before the
per-utterance normalisation; avtoolkit normalises the whole track and its front-end drops the
samples past the last whole frame. This runs the small random-weight AV fixture model on a few
GRID clips both ways and prints the largest CTC log-probability difference (docs/pretrained.md)::

    .venv/bin/python benchmarks/auto_avsr_av_input_cut.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CLIPS = ["bbaf2n", "bbaf4p", "bbal6n"]


def main() -> None:
    sys.path[:0] = [str(REPO / "tests" / "fixtures"), str(REPO / "tests" / "inference")]
    from auto_avsr_weights import seeded_state
    from test_audio_visual_checkpoint import av_model

    from avtoolkit.data.media import read_audio
    from avtoolkit.models.assemble import assemble
    from avtoolkit.models.convert import convert_auto_avsr
    from avtoolkit.roi import MouthCropper
    from avtoolkit.roi.auto_avsr import auto_avsr_model_input
    from avtoolkit.roi.crop import mouth_rois

    fx = torch.load(REPO / "tests" / "fixtures" / "auto_avsr" / "avsr_small.pt", weights_only=True)
    model = assemble(av_model(fx["config"])).eval()
    model.load_state_dict(convert_auto_avsr(seeded_state(fx["shapes"]), "audiovisual")[0])
    torch.set_grad_enabled(False)
    cropper = MouthCropper(size=(96, 96), method="auto_avsr")
    for clip in CLIPS:
        path = REPO.parent / "shared" / "data" / "grid_s1" / "s1" / f"{clip}.mp4"
        wave = torch.from_numpy(read_audio(path, 16000))
        video = torch.from_numpy(auto_avsr_model_input(mouth_rois(path, None, cropper)))[None]
        want = video.shape[1] * 640
        cut = wave[:want] if len(wave) >= want else torch.nn.functional.pad(wave, (0, want - len(wave)))
        ours, theirs = (model({"video": video, "audio": torch.nn.functional.layer_norm(a, a.shape, eps=1e-8)[None]})
                        ["log_probs"] for a in (wave, cut))
        frames = min(ours.shape[1], theirs.shape[1])
        print(f"{clip}: {len(wave)} samples, {video.shape[1]} frames; frames ours {ours.shape[1]}, theirs "
              f"{theirs.shape[1]}; largest CTC log-prob difference {float((ours[:, :frames] - theirs[:, :frames]).abs().max()):.4f}")


if __name__ == "__main__":
    main()
