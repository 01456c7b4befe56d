"""LRS transcript files and cutting utterances at word timings."""

from __future__ import annotations

import random
import re

import pytest

from avtoolkit.data.timed_words import TimedWord, TranscriptError, parse_transcript, segment_words

LRS3_FILE = ("Text:  SO {LG} WE STARTED\nConf:  3\nRef:   https://www.youtube.com/watch?v=0akiEFwtkyA\n\n"
             "WORD START END ASDSCORE\nSO 0.04 0.20 5.1\n{LG} 0.20 0.90 0.0\nWE 0.95 1.10 4.2\nSTARTED 1.10 1.62 3.9\n")


def test_an_lrs3_file_gives_text_ref_and_words_without_non_speech() -> None:
    t = parse_transcript(LRS3_FILE, "00001.txt")
    assert (t.text, t.conf, t.ref) == ("SO WE STARTED", "3", "https://www.youtube.com/watch?v=0akiEFwtkyA")
    assert [w.word for w in t.words] == ["SO", "WE", "STARTED"] and t.words[-1].end == 1.62


@pytest.mark.parametrize("text, line, reason", [
    ("Text:  {NS}\nConf: 1\n", 1, "the 'Text:' line holds no words"),
    ("Text:  HI\n\nWORD START END ASDSCORE\nHI 0.1\n", 4, "expected 'WORD START END [ASDSCORE]'"),
    ("Text:  HI\nsomething else\n", 2, "expected 'Text:', 'Conf:', 'Ref:' or the 'WORD START END'"),
    ("Text:  HI\n\nWORD START END\nHI -0.2 0.1\n", 4, "word 'HI' spans -0.2-0.1 s (end before start, or a negative time)"),
])
def test_malformed_files_name_the_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(TranscriptError, match=f"^a.txt:{line}: {re.escape(reason)}"):
        parse_transcript(text, "a.txt")


def test_segments_cover_every_word_in_order_within_the_limit() -> None:
    rng = random.Random(0)
    t, words = 0.0, []
    for i in range(300):  # a ten-minute pretrain utterance
        t += rng.uniform(0.0, 0.6)
        d = rng.uniform(0.05, 1.2)
        words.append(TimedWord(f"w{i}", round(t, 2), round(t + d, 2)))
        t += d
    for limit in (16.0, 24.0, 1.5):
        segments = segment_words(words, limit)
        assert [w for s in segments for w in s.words] == words  # nothing lost, split or reordered
        assert all(s.end - s.start <= limit for s in segments)
        # greedy: the next word would not have fitted in the segment before it
        assert all(b.words[0].end - a.start > limit for a, b in zip(segments, segments[1:]))


def test_a_word_longer_than_the_limit_is_an_error() -> None:
    with pytest.raises(ValueError, match="word 'long' at 1-4 s is longer than the 2 s segment limit"):
        segment_words([TimedWord("a", 0.0, 0.5), TimedWord("long", 1.0, 4.0)], 2.0)
