"""An imported auto_avsr audio-visual checkpoint transcribes a real GRID clip through ``avtoolkit transcribe``.

The checkpoint is the small random-weight AV model of the equivalence fixture
(``tests/fixtures/auto_avsr/avsr_small.pt``), saved with their key names (``encoder.``,
``aux_encoder.``, ``fusion.``) and imported with the CLI onto ``recipes/auto_avsr_avsr.yaml``.
What matters here is what each stream is given: the waveform front-end the clip's 16 kHz
samples normalised per utterance, the visual one their 88x88 crop (``crop_method: auto_avsr``,
from the recipe the checkpoint carries), both covering the same seconds, for one utterance and for
each voice-activity segment of a recording made of two GRID sentences. A spy on each front-end
records its input.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from auto_avsr_weights import seeded_state
from grid_tokens import train_grid_spm, units_file

from avtoolkit.cli.main import main
from avtoolkit.models.encoders.auto_avsr_frontends import ResNet18Audio, ResNet18Video
from auto_avsr_av_model import av_section

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "auto_avsr"
GRID = REPO.parent / "shared" / "data" / "grid_s1"
CLIP = GRID / "s1" / "bbaf2n.mp4"




@pytest.fixture
def fed(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple[torch.Tensor, torch.Tensor]]]:
    seen: dict[str, list] = {"audio": [], "video": []}
    for modality, cls in (("audio", ResNet18Audio), ("video", ResNet18Video)):
        def spy(self, x, lengths, _forward=cls.forward, _m=modality):
            seen[_m].append((x.detach().clone(), lengths.detach().clone()))
            return _forward(self, x, lengths)
        monkeypatch.setattr(cls, "forward", spy)
    return seen


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Their small AV file imported with GRID subword tokens: the avtoolkit checkpoint."""
    if not CLIP.is_file():
        pytest.skip(f"needs the shared GRID s1 clips at {GRID}")
    folder = tmp_path_factory.mktemp("avsr")
    fx = torch.load(FIXTURES / "avsr_small.pt", weights_only=True)
    theirs = folder / "avsr_small.pth"
    torch.save(seeded_state(fx["shapes"]), theirs)
    spm = train_grid_spm(folder, GRID)
    units = units_file(spm, fx["config"]["odim"] - 2, folder / "units.txt")
    recipe = folder / "small.yaml"
    recipe.write_text(yaml.safe_dump({"base": str(REPO / "recipes" / "auto_avsr_avsr.yaml"),
                                      "model": av_section(fx["config"])}))
    ckpt = folder / "avsr_small.ckpt"
    assert main(["import-checkpoint", str(theirs), "--recipe", str(recipe), "--out", str(ckpt),
                 f"data.tokens.model={spm}", f"data.tokens.units={units}"]) == 0
    return ckpt


def direct_input(path: Path) -> torch.Tensor:
    from avtoolkit.data.media import read_audio

    wave = torch.from_numpy(read_audio(path, sample_rate=16000))
    return torch.nn.functional.layer_norm(wave, wave.shape, eps=1e-8)


def test_transcribe_gives_the_av_checkpoint_the_waveform_and_their_crop_of_the_same_seconds(imported, fed,
                                                                                            capsys) -> None:
    capsys.readouterr()
    assert main(["transcribe", "--checkpoint", str(imported), "--audio", str(CLIP), "--video", str(CLIP),
                 "--decoder", "joint", "--beam-size", "2"]) == 0
    transcript, info = capsys.readouterr().out.splitlines()[-2:]
    assert info.startswith("(audio+video, "), info  # the random-weight model's transcript may be empty
    (a, a_len), = fed["audio"]
    (v, v_len), = fed["video"]
    want = direct_input(CLIP)
    assert a.shape == (1, len(want)) and float((a[0] - want).abs().max()) < 1e-6
    assert v.shape == (1, 75, 1, 88, 88) and v_len.tolist() == [75]  # 3 s at 25 fps, their 88x88 crop
    # their crop: the centre 88x88 of the 96x96 auto_avsr crop, normalised as their test transform does
    from avtoolkit.roi import MouthCropper
    from avtoolkit.roi.auto_avsr import auto_avsr_model_input
    from avtoolkit.roi.crop import mouth_rois

    theirs = auto_avsr_model_input(mouth_rois(CLIP, None, MouthCropper(size=(96, 96), method="auto_avsr")))
    assert float((v[0] - torch.from_numpy(theirs)).abs().max()) < 1e-5
    assert abs(len(want) / 640 - 75) < 1  # the waveform covers the same 75 frames


def test_a_recording_of_two_grid_sentences_gives_the_av_checkpoint_both_streams_per_segment(imported, fed,
                                                                                           tmp_path: Path) -> None:
    """``transcribe MEDIA --srt``: cut by voice activity, each segment's waveform and crops over the same seconds."""
    import numpy as np

    from avtoolkit.data.media import read_audio, read_video
    from avtoolkit.demo.writer import write_mp4

    sr, gap = 16000, 30  # 1.2 s of black frames and digital silence around each sentence
    frames, audio = [], []
    for clip in (CLIP, GRID / "s1" / "bbal6n.mp4"):
        rgb, _ = read_video(clip)
        wave = read_audio(clip, sr)[: len(rgb) * sr // 25]
        frames += [np.zeros((gap, *rgb.shape[1:]), np.uint8), rgb]
        audio += [np.zeros(gap * sr // 25, np.float32), np.pad(wave, (0, len(rgb) * sr // 25 - len(wave)))]
    frames.append(np.zeros((gap, *rgb.shape[1:]), np.uint8))
    audio.append(np.zeros(gap * sr // 25, np.float32))
    recording = tmp_path / "two.mp4"
    write_mp4(recording, np.concatenate(frames), np.concatenate(audio), sr, crf=20)
    srt = tmp_path / "two.srt"
    assert main(["transcribe", "--checkpoint", str(imported), str(recording), "--srt", str(srt), "--no-progress",
                 "--decoder", "joint", "--beam-size", "2"]) == 0
    cues = [block for block in srt.read_text().split("\n\n") if block.strip()]
    assert len(cues) == 2, srt.read_text()  # one per sentence
    assert len(fed["audio"]) == len(fed["video"]) == 2
    for (_, n), (v, nv) in zip(fed["audio"], fed["video"]):
        assert v.shape[-2:] == (88, 88) and abs(int(n[0]) / 640 - int(nv[0])) <= 1  # the same seconds
