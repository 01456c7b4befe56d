"""Backend ``conformer``: torchaudio's Conformer (Gulati et al., 2020), batch-first, padding-exact.

The layers are ``torchaudio.models.Conformer``'s own (half-step feed-forward, self-attention,
convolution module, half-step feed-forward, layer norm), so the weights and arithmetic are
torchaudio's. Only the loop over the layers is ours: torchaudio masks padding in the
attention but not in the convolution module, whose depthwise convolution would read the
padded frames of a short clip; here they are zeroed right before that convolution, so they
contribute exactly what the convolution's own zero padding does for the clip alone.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchaudio.models import Conformer
from torchaudio.models.conformer import ConformerLayer, _ConvolutionModule

from avtoolkit.models.contract import Backend, lengths_to_mask
from avtoolkit.registry.kinds import BACKENDS

#: the depthwise convolution's place in torchaudio's ``_ConvolutionModule.sequential``:
#: pointwise conv, GLU, depthwise conv, norm, activation, pointwise conv, dropout.
_DEPTHWISE = 2


def _convolution(module: _ConvolutionModule, x: Tensor, keep: Tensor) -> Tensor:
    """``module(x)`` for ``x [B, T, D]`` with the frames where ``keep [B, 1, T]`` is 0 zeroed before the depthwise conv."""
    y = module.layer_norm(x).transpose(1, 2)
    for i, part in enumerate(module.sequential):
        y = part(y * keep if i == _DEPTHWISE else y)
    return y.transpose(1, 2)


def _layer(layer: ConformerLayer, x: Tensor, padding: Tensor, keep: Tensor) -> Tensor:
    """``ConformerLayer.forward`` batch-first, with :func:`_convolution` as its convolution module."""
    x = 0.5 * layer.ffn1(x) + x
    if layer.convolution_first:
        x = x + _convolution(layer.conv_module, x, keep)
    y = layer.self_attn_layer_norm(x).transpose(0, 1)  # torchaudio's attention is time-first
    y, _ = layer.self_attn(y, y, y, key_padding_mask=padding, need_weights=False)
    x = x + layer.self_attn_dropout(y.transpose(0, 1))
    if not layer.convolution_first:
        x = x + _convolution(layer.conv_module, x, keep)
    x = 0.5 * layer.ffn2(x) + x
    return layer.final_layer_norm(x)


@BACKENDS.register("conformer")
class ConformerBackend(Backend):
    """Conformer encoder (torchaudio's layers): convolution-augmented self-attention over frames.

    Padded frames change no valid output: attention ignores them through a key-padding mask
    and they are zeroed before every depthwise convolution. There is no position code: the
    depthwise convolution gives each frame its neighbours' relative positions. BatchNorm in
    the convolution module normalises with per-channel running statistics at test time;
    torchaudio's ``use_group_norm`` option is left out because GroupNorm's statistics span the
    padded frames too.

    Args:
        input_dim: features per input frame (injected by the assembler).
        dim: model width; the input is projected to it when it differs (default: ``input_dim``).
        layers: Conformer layers.
        heads: attention heads (must divide ``dim``).
        ff_dim: feed-forward width (default ``4 * dim``).
        kernel_size: odd depthwise convolution kernel, in frames (the paper uses 31 at 25 Hz).
        dropout: dropout inside the layers.
        convolution_first: run the convolution module before the self-attention.

    Raises:
        ValueError: ``dim`` not divisible by ``heads``, or an even ``kernel_size``.

    Examples:
        >>> import torch
        >>> conformer = ConformerBackend(input_dim=16, dim=8, layers=1, heads=2, kernel_size=3)
        >>> y, n = conformer(torch.randn(2, 7, 16), torch.tensor([7, 4]))
        >>> tuple(y.shape), n.tolist(), float(y[1, 4:].detach().abs().sum())
        ((2, 7, 8), [7, 4], 0.0)
    """

    def __init__(self, input_dim: int, dim: int | None = None, layers: int = 4, heads: int = 4,
                 ff_dim: int | None = None, kernel_size: int = 31, dropout: float = 0.1,
                 convolution_first: bool = False) -> None:
        super().__init__()
        dim = dim or input_dim
        if dim % heads:
            raise ValueError(f"conformer dim {dim} is not divisible by heads={heads}")
        if kernel_size % 2 == 0:
            raise ValueError(f"conformer kernel_size must be odd to keep the length, got {kernel_size}")
        self.proj = nn.Linear(input_dim, dim) if dim != input_dim else nn.Identity()
        self.conformer = Conformer(input_dim=dim, num_heads=heads, ffn_dim=ff_dim or 4 * dim, num_layers=layers,
                                   depthwise_conv_kernel_size=kernel_size, dropout=dropout,
                                   use_group_norm=False, convolution_first=convolution_first)
        self.output_dim = dim

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        mask = lengths_to_mask(lengths, x.shape[1])
        keep = mask[:, None, :].to(x.dtype)
        y = self.proj(x)
        for layer in self.conformer.conformer_layers:
            y = _layer(layer, y, ~mask, keep)
        return y * mask[..., None].to(y.dtype), lengths

