"""crop_method auto_avsr against crops made by auto_avsr's own video_process.py (fixture)."""

from pathlib import Path

import numpy as np
import pytest

from avtoolkit.data.media import MediaError, read_video
from avtoolkit.roi import MouthCropper
from avtoolkit.roi.auto_avsr import auto_avsr_crops, auto_avsr_model_input

FIXTURE = Path(__file__).parent.parent / "fixtures" / "auto_avsr_crop" / "grid_crops.npz"
GRID = Path(__file__).resolve().parents[3] / "shared" / "data" / "grid" / "video"


@pytest.mark.parametrize("clip", ["bbaf2n", "id2_vcd_swwp2s"])
def test_same_pixels_as_their_video_process(clip):
    if not (GRID / f"{clip}.mpg").exists():
        pytest.skip(f"GRID clips not found at {GRID}")
    fixture = np.load(FIXTURE)
    frames, fps = read_video(GRID / f"{clip}.mpg")
    assert fps == 25
    ours = MouthCropper(size=(96, 96), method="auto_avsr").crop(frames[20:40], fixture[f"{clip}_landmarks"])
    theirs = fixture[f"{clip}_crops"]
    assert ours.shape == theirs.shape == (20, 96, 96)
    diff = np.abs(ours.astype(int) - theirs.astype(int))
    assert diff.max() <= 1, f"largest difference {diff.max()} grey levels"
    # The crop really holds a face's mouth, not a black border.
    assert theirs.mean() > 40


def test_model_input_is_their_normalised_centre():
    rois = np.random.default_rng(0).integers(0, 256, (12, 96, 96), dtype=np.uint8)
    x = auto_avsr_model_input(rois)
    assert x.shape == (12, 1, 88, 88)
    np.testing.assert_allclose(x[:, 0], (rois[:, 4:92, 4:92] / 255.0 - 0.421) / 0.165, atol=1e-5)


def test_no_face_and_short_clip_are_media_errors():
    gray = np.zeros((20, 64, 64), np.uint8)
    with pytest.raises(MediaError, match="no facial landmarks|landmarks found on 0 of 20"):
        auto_avsr_crops(gray, np.full((20, 68, 2), np.nan), source="clip.mp4")
    with pytest.raises(MediaError, match="at least 12"):
        auto_avsr_crops(gray[:5], np.zeros((5, 68, 2)), source="clip.mp4")



def test_an_88_pixel_cropper_gives_the_centre_of_their_96_patch():
    """`video_size: 88` (the auto_avsr recipes) must feed the model their CenterCrop(88), not a resize."""
    clip = "bbaf2n"
    if not (GRID / f"{clip}.mpg").exists():
        pytest.skip(f"GRID clips not found at {GRID}")
    fixture = np.load(FIXTURE)
    frames, _ = read_video(GRID / f"{clip}.mpg")
    points = fixture[f"{clip}_landmarks"]
    full = MouthCropper(size=(96, 96), method="auto_avsr").crop(frames[20:40], points)
    model = MouthCropper(size=(88, 88), method="auto_avsr").crop(frames[20:40], points)
    assert model.shape == (20, 88, 88)
    assert np.array_equal(model, full[:, 4:92, 4:92])
    # the model input a Transcriber builds from it is their normalised centre crop
    from avtoolkit.data.video import video_tensor

    np.testing.assert_allclose(video_tensor(model, (88, 88)).numpy(), auto_avsr_model_input(full), atol=1e-5)
