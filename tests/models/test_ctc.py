"""``ctc`` head: log-probabilities over the character vocabulary, trainable with CTC loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avtoolkit.data.text import CHARACTERS, CharVocab
from avtoolkit.decoding.ctc_search import build_decoder
from avtoolkit.models.heads.ctc import CTCHead


def test_vocabulary_is_blank_space_apostrophe_letters() -> None:
    head = CTCHead(input_dim=8)
    assert head.task == "ctc" and head.output_dim == 29 == len(CHARACTERS)
    out = head(torch.randn(3, 5, 8), torch.tensor([5, 4, 1]), {})
    assert torch.allclose(out["log_probs"].logsumexp(-1), torch.zeros(3, 5), atol=1e-5)
    assert out["lengths"].tolist() == [5, 4, 1]


def test_head_learns_a_transcript_with_ctc_loss() -> None:
    torch.manual_seed(0)
    vocab = CharVocab()
    target = torch.tensor([vocab.encode("bin blue")])
    features = torch.randn(1, 20, 16)
    head = CTCHead(input_dim=16)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(150):
        out = head(features, torch.tensor([20]), {})
        loss = F.ctc_loss(out["log_probs"].transpose(0, 1), target, out["lengths"], torch.tensor([8]), blank=0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    decoded = build_decoder({"name": "greedy"}, CHARACTERS)(out["log_probs"].detach(), out["lengths"])
    assert decoded == ["bin blue"]
