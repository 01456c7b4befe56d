"""word_classifier head: probabilities, masked pooling, word boundary option."""

import pytest
import torch

from avtoolkit.models.heads.word_classifier import WordClassifier


def test_log_probs_are_a_distribution_and_padding_is_ignored():
    torch.manual_seed(0)
    head = WordClassifier(input_dim=6, num_classes=4).eval()
    clip = torch.randn(1, 5, 6)
    alone = head(clip, torch.tensor([5]), {})["log_probs"]
    assert alone.shape == (1, 4)
    torch.testing.assert_close(alone.exp().sum(-1), torch.ones(1))
    padded = head(torch.cat([clip, torch.randn(1, 3, 6)], 1), torch.tensor([5]), {})["log_probs"]
    torch.testing.assert_close(padded, alone)


def test_word_boundary_is_used_when_asked():
    torch.manual_seed(0)
    head = WordClassifier(input_dim=6, num_classes=4, use_word_boundary=True).eval()
    x, n = torch.randn(1, 5, 6), torch.tensor([5])
    inside = head(x, n, {"word_boundary": torch.tensor([[0., 1, 1, 1, 0]])})["log_probs"]
    everywhere = head(x, n, {"word_boundary": torch.ones(1, 5)})["log_probs"]
    assert not torch.allclose(inside, everywhere)
    with pytest.raises(KeyError, match="use_word_boundary"):
        head(x, n, {})
    with pytest.raises(ValueError, match="frame rate"):
        head(x, n, {"word_boundary": torch.ones(1, 7)})
