"""The GRID layout reader: alignments, transcripts, swapped alignment folders, problems reported."""

from __future__ import annotations

import pytest

from avtoolkit.data.grid_grammar import VOCABULARY
from avtoolkit.datasets.grid.layout import (GridNotFoundError, find_clips, parse_alignment,
                                            resolve_alignment_dirs)

from .conftest import make_layout, write_alignment


def test_alignment_parsing_drops_silence_and_keeps_sample_times(tmp_path):
    make_layout(tmp_path, {"s1": ["bbaf2n"]})
    write_alignment(tmp_path / "alignments/s1/bbaf2n.align",
                    [(0, 23750, "sil"), (23750, 29500, "bin"), (29500, 34000, "blue"), (34000, 34500, "sp"),
                     (34500, 35500, "at"), (35500, 41000, "f"), (41000, 47250, "two"), (47250, 53000, "now"),
                     (53000, 74500, "sil")])
    clip = find_clips(tmp_path).clips[0]
    assert clip.transcript == "bin blue at f two now"
    assert (clip.words[0].start_frame, clip.words[0].end_frame) == (23.75, 29.5)
    assert clip.audio == clip.video  # no audio_25k: the video's own track


def test_audio_25k_wav_is_preferred_when_present(tmp_path):
    make_layout(tmp_path, {"s1": ["bbaf2n"]})
    wav = tmp_path / "audio_25k/s1/bbaf2n.wav"
    wav.parent.mkdir(parents=True)
    wav.write_bytes(b"RIFF")
    assert find_clips(tmp_path).clips[0].audio == wav


def test_bad_alignment_lines_name_file_and_line():
    with pytest.raises(ValueError, match=r"x.align:2: expected"):
        parse_alignment("0 10 sil\r\n10 bin\r\n", "x.align")


def test_clip_without_alignment_and_contradicting_alignment_are_reported(tmp_path):
    make_layout(tmp_path, {"s1": ["bbaf2n", "lgaz9s"]})
    (tmp_path / "s1/pwbk3a.mp4").write_bytes(b"")  # no alignment at all
    write_alignment(tmp_path / "alignments/s1/lgaz9s.align", [(0, 5000, "bin"), (5000, 9000, "red")])
    report = find_clips(tmp_path)
    assert [c.key for c in report.clips] == ["s1/bbaf2n"]
    reasons = dict(report.problems)
    assert "no alignment" in reasons["s1/pwbk3a"]
    assert "'bin red'" in reasons["s1/lgaz9s"] and "lay green at z nine soon" in reasons["s1/lgaz9s"]
    assert "1 clips, 2 left out" in report.summary()


def test_swapped_alignment_folders_are_detected_and_repaired(tmp_path):
    # As in the public release: s5's alignments sit in alignments/s6 and the other way round.
    make_layout(tmp_path, {"s5": ["bbaf2n", "bgim5s", "lrwx1a"], "s6": ["pwbk3a", "sgaz9p", "lbit4n"],
                           "s7": ["bbaz1n"]},
                align_from={"s5": "s6", "s6": "s5"})
    assert resolve_alignment_dirs(tmp_path, ["s5", "s6", "s7"]) == {"s5": "s6", "s6": "s5", "s7": "s7"}
    report = find_clips(tmp_path)
    assert len(report.clips) == 7 and not report.problems
    assert "s5<-s6" in report.summary()
    assert next(c for c in report.clips if c.id == "pwbk3a").transcript == "place white by k three again"


def test_unknown_root_and_speaker_are_errors(tmp_path):
    with pytest.raises(GridNotFoundError, match="zenodo"):
        find_clips(tmp_path / "missing")
    make_layout(tmp_path, {"s1": ["bbaf2n"]})
    with pytest.raises(GridNotFoundError, match="s9"):
        find_clips(tmp_path, ["s9"])


def test_vocabulary_is_grids_51_words():
    assert len(VOCABULARY) == 51 and {"bin", "white", "with", "z", "zero", "soon"} <= set(VOCABULARY)
    assert "w" not in VOCABULARY


def test_reader_on_the_shared_s1_clips(grid_root):
    report = find_clips(grid_root, ["s1"])
    assert len(report.clips) == 900 and not report.problems
    assert report.alignment_dirs == {"s1": "s1"}
    clip = next(c for c in report.clips if c.id == "bbaf2n")
    assert clip.transcript == "bin blue at f two now" and clip.video.suffix == ".mp4"
    assert all(len(c.words) == 6 for c in report.clips)
