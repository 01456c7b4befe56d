"""Encoders ``auto_avsr_video_conformer`` and ``auto_avsr_audio_conformer``: a front-end and its own Conformer.

auto_avsr's audio-visual model (Ma et al., "Auto-AVSR", ICASSP 2023; the ``E2E`` of their
``e2e_asr_conformer_av.py``) encodes each modality completely before fusing: the visual
front-end and a Conformer (their ``encoder``), the waveform front-end and a second Conformer
(their ``aux_encoder``), then an MLP over the two concatenated sequences (``auto_avsr_mlp``),
then CTC and the Transformer decoder (``espnet_hybrid``)::

    video ─> auto_avsr_video ─> espnet_conformer ─┐
                                                  ├─> auto_avsr_mlp ─> espnet_hybrid
    audio ─> auto_avsr_audio ─> espnet_conformer ─┘

Why an encoder that holds a Conformer, rather than per-stream backends in the assembler:
under the model contract an encoder is "everything that turns one modality into
``[B, T, D]``", and that is what their per-stream Conformer is. As encoders, these two keep
what the rest of avtoolkit reads from an encoder's registered *class* without building it:
``modality`` (validation checks the recipe key against it) and ``audio_input`` (the datasets
and the ``Transcriber`` feed the waveform because of it). The assembler's one order
``encoders -> fusion -> backends -> head`` stays as it is, and the parts inside are the
registered ``auto_avsr_video`` / ``auto_avsr_audio`` and ``espnet_conformer`` themselves, so
nothing of either is written twice.

Parameter names: ``frontend.`` (the front-end's, as under their ``encoder.frontend.``) and
``conformer.`` (their ``encoder.``, with their ``encoder.embed.0`` as ``conformer.proj``), so
converting their checkpoint is renaming prefixes (:mod:`avtoolkit.models.convert`).
"""

from __future__ import annotations

from torch import Tensor

from avtoolkit.models.backends.espnet_conformer import ESPnetConformer
from avtoolkit.models.contract import Encoder
# the module, not its names: registering a front-end there loads this module while that one is half-run
from avtoolkit.models.encoders import auto_avsr_frontends as frontends
from avtoolkit.registry.kinds import ENCODERS


class _FrontendConformer(Encoder):
    """A front-end encoder followed by an ``espnet_conformer`` over its 512-dim frames."""

    def __init__(self, frontend: Encoder, dim: int, layers: int, heads: int, ff_dim: int, kernel_size: int,
                 dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.frontend = frontend
        self.conformer = ESPnetConformer(frontend.output_dim, dim=dim, layers=layers, heads=heads, ff_dim=ff_dim,
                                         kernel_size=kernel_size, dropout=dropout,
                                         attention_dropout=attention_dropout)
        self.output_dim = dim
        self.input_rate = frontend.input_rate
        self.time_stride = frontend.time_stride

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """The front-end's frame count (the Conformer keeps the length)."""
        return self.frontend.output_lengths(lengths)

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        return self.conformer(*self.frontend(x, lengths))


@ENCODERS.register("auto_avsr_video_conformer")
class VideoConformer(_FrontendConformer):
    """auto_avsr's visual stream of their AV model: ``auto_avsr_video`` then its own Conformer.

    Their released AV model: ``dim=768, layers=12, heads=12, ff_dim=3072, kernel_size=31``.

    Args:
        dim: Conformer width (the 512 front-end features are projected to it).
        layers: Conformer layers.
        heads: attention heads.
        ff_dim: feed-forward width.
        kernel_size: odd depthwise convolution kernel, in frames.
        dropout: dropout inside the Conformer.
        attention_dropout: dropout on the attention weights.
        input_rate: frames per second of the video (their models: 25).

    Examples:
        >>> import torch
        >>> enc = VideoConformer(dim=8, layers=1, heads=2, ff_dim=16, kernel_size=3).eval()
        >>> x, n = enc(torch.randn(1, 4, 1, 24, 24), torch.tensor([4]))
        >>> tuple(x.shape), n.tolist(), enc.modality, enc.output_rate
        ((1, 4, 8), [4], 'video', 25.0)
    """

    modality = "video"

    def __init__(self, dim: int = 768, layers: int = 12, heads: int = 12, ff_dim: int = 3072, kernel_size: int = 31,
                 dropout: float = 0.1, attention_dropout: float = 0.0, input_rate: float = 25.0) -> None:
        super().__init__(frontends.ResNet18Video(input_rate), dim, layers, heads, ff_dim, kernel_size, dropout,
                         attention_dropout)


@ENCODERS.register("auto_avsr_audio_conformer")
class AudioConformer(_FrontendConformer):
    """auto_avsr's audio stream of their AV model: ``auto_avsr_audio`` (raw waveform) then its own Conformer.

    Reads the 16 kHz waveform (``audio_input = "waveform"``, normalised per utterance as for
    ``auto_avsr_audio``); one frame per 640 samples, 25 per second like the video. Their
    released AV model: ``dim=768, layers=12, heads=12, ff_dim=3072, kernel_size=31``.

    Args:
        dim: Conformer width (the 512 front-end features are projected to it).
        layers: Conformer layers.
        heads: attention heads.
        ff_dim: feed-forward width.
        kernel_size: odd depthwise convolution kernel, in frames.
        dropout: dropout inside the Conformer.
        attention_dropout: dropout on the attention weights.

    Examples:
        >>> import torch
        >>> enc = AudioConformer(dim=8, layers=1, heads=2, ff_dim=16, kernel_size=3).eval()
        >>> x, n = enc(torch.randn(1, 3300), torch.tensor([3300]))
        >>> tuple(x.shape), n.tolist(), enc.audio_input, enc.output_rate
        ((1, 5, 8), [5], 'waveform', 25.0)
    """

    modality = "audio"
    #: read by the batch builders without building the model, as for ``auto_avsr_audio``
    audio_input = "waveform"

    def __init__(self, dim: int = 768, layers: int = 12, heads: int = 12, ff_dim: int = 3072, kernel_size: int = 31,
                 dropout: float = 0.1, attention_dropout: float = 0.0) -> None:
        super().__init__(frontends.ResNet18Audio(), dim, layers, heads, ff_dim, kernel_size, dropout,
                         attention_dropout)
