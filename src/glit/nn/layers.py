"""The three sliceable layers of a block: global attention, the local conv module, and the FFN.

Each layer is allocated at the largest size its genes allow and runs at any smaller size. **The slicing rule is
written once per layer, in its ``cuts(...)`` method**: for each state-dict entry that a path of the given size uses,
a ``Cut``, a box of a row-major view of the tensor and the standalone tensor's shape. ``weights(...)`` applies the
cuts (same keys as the state dict); ``forward`` computes with those tensors, ``Supernet.extract`` copies them into a
layer allocated at exactly that size, ``Supernet.path_masks`` marks them, and the supernet's AdamW update steps the
boxes in place (``Supernet.path_views``). A layer allocated at exactly the path's size slices whole tensors.

The rule:
- Token channels are sliced by the range that the part owns: the global part owns the first C_g channels of the
  token, the local part the last C_l. So a token channel always meets the same weights, whatever the split.
  (Leading slices for the local part would make channel j meet a different column for each G.)
- Hidden widths take leading slices: whole heads first, then the leading dims of each head (Q, K and V alike);
  the leading E * C_l channels of the local module (in both GLU halves); the leading r * D units of the FFN.
- A smaller kernel takes the centre of the largest one, as once-for-all does.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _Index:
    def __getitem__(self, index):
        return index


S = _Index()  # S[:, :3] is the index (slice(None), slice(None, 3)): a box written as the slicing it does


class Cut(NamedTuple):
    """One entry of the slicing rule: view ``tensor`` as ``view`` (no copy; None: as it is), take the ``box``, and
    reshape it to ``shape`` (None: the box's own shape). ``box_of`` applies the first two to any tensor of the same
    shape (a gradient, an AdamW moment), giving a view of the very elements the path uses."""
    tensor: Tensor
    box: tuple = S[...]
    view: tuple | None = None
    shape: tuple | None = None

    def box_of(self, t: Tensor) -> Tensor:
        return (t if self.view is None else t.view(self.view))[self.box]

    def __call__(self) -> Tensor:
        t = self.box_of(self.tensor)
        return t if self.shape is None else t.reshape(self.shape)


class Sliceable(nn.Module):
    """A layer with a slicing rule: ``cuts(**sizes)``; ``weights(**sizes)`` applies it."""

    def cuts(self, *sizes) -> dict[str, Cut]:
        raise NotImplementedError

    def weights(self, *sizes, **named) -> dict[str, Tensor]:
        return {key: cut() for key, cut in self.cuts(*sizes, **named).items()}


class GlobalAttention(Sliceable):
    """Multi-head self-attention over all tokens, on the first C_g = heads * head_channels token channels.

    With ``qkv_ratio`` e the per-head width is e * head_channels: qkv is Linear(C_g, 3 e C_g) with bias and proj is
    Linear(e C_g, C_g) with bias. The softmax scale is (e * head_channels)^-0.5. No dropout.
    """

    def __init__(self, head_channels: int, max_heads: int, max_head_dim: int):
        super().__init__()
        self.head_channels, self.max_heads, self.max_head_dim = head_channels, max_heads, max_head_dim
        channels = max_heads * head_channels
        self.qkv = nn.Linear(channels, 3 * max_heads * max_head_dim)  # rows ordered (q|k|v, head, dim)
        self.proj = nn.Linear(max_heads * max_head_dim, channels)  # columns ordered (head, dim)

    def cuts(self, heads: int, head_dim: int) -> dict[str, Cut]:
        c, hm, dm = heads * self.head_channels, self.max_heads, self.max_head_dim
        c_max = hm * self.head_channels
        return {
            "qkv.weight": Cut(self.qkv.weight, S[:, :heads, :head_dim, :c], (3, hm, dm, c_max), (-1, c)),
            "qkv.bias": Cut(self.qkv.bias, S[:, :heads, :head_dim], (3, hm, dm), (-1,)),
            "proj.weight": Cut(self.proj.weight, S[:c, :heads, :head_dim], (c_max, hm, dm), (c, -1)),
            "proj.bias": Cut(self.proj.bias, S[:c]),
        }

    def forward(self, x: Tensor, heads: int, head_dim: int) -> Tensor:
        w = self.weights(heads, head_dim)
        B, N, _ = x.shape  # (B, N, C_g)
        qkv = F.linear(x, w["qkv.weight"], w["qkv.bias"]).view(B, N, 3, heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        x = F.scaled_dot_product_attention(q, k, v)  # scale (head_dim)^-0.5
        x = x.transpose(1, 2).reshape(B, N, heads * head_dim)
        return F.linear(x, w["proj.weight"], w["proj.bias"])  # (B, N, C_g)


class LocalConv(Sliceable):
    """The locality module: a Conformer-style convolution over the 1-D token sequence (class token included).

    On C_l channels with ``conv_ratio`` E and ``kernel_size`` K: pointwise C_l -> 2 E C_l with bias, GLU, depthwise
    conv with kernel K and zero "same" padding, BatchNorm1d, Swish, pointwise E C_l -> C_l with bias. The pointwise
    convs are stored as Linear layers on (B, N, C) tokens: the same maths and parameter count as kernel-1 Conv1d,
    without two transposes.
    """

    def __init__(self, max_channels: int, max_hidden: int, max_kernel: int):
        super().__init__()
        self.max_channels, self.max_hidden, self.max_kernel = max_channels, max_hidden, max_kernel
        self.pw1 = nn.Linear(max_channels, 2 * max_hidden)  # rows ordered (value|gate, hidden)
        self.dw = nn.Conv1d(max_hidden, max_hidden, max_kernel, groups=max_hidden)
        self.bn = nn.BatchNorm1d(max_hidden)
        self.pw2 = nn.Linear(max_hidden, max_channels)

    def cuts(self, channels: int, hidden: int, kernel: int) -> dict[str, Cut]:
        first = self.max_channels - channels  # the local part owns the last `channels` token channels
        trim = (self.max_kernel - kernel) // 2
        bn, hm, cm = self.bn, self.max_hidden, self.max_channels
        return {
            "pw1.weight": Cut(self.pw1.weight, S[:, :hidden, first:], (2, hm, cm), (2 * hidden, channels)),
            "pw1.bias": Cut(self.pw1.bias, S[:, :hidden], (2, hm), (-1,)),
            "dw.weight": Cut(self.dw.weight, S[:hidden, :, trim:trim + kernel]),
            "dw.bias": Cut(self.dw.bias, S[:hidden]),
            "bn.weight": Cut(bn.weight, S[:hidden]),
            "bn.bias": Cut(bn.bias, S[:hidden]),
            "bn.running_mean": Cut(bn.running_mean, S[:hidden]),  # views: training updates the shared statistics
            "bn.running_var": Cut(bn.running_var, S[:hidden]),
            "bn.num_batches_tracked": Cut(bn.num_batches_tracked),
            "pw2.weight": Cut(self.pw2.weight, S[first:, :hidden]),
            "pw2.bias": Cut(self.pw2.bias, S[first:]),
        }

    def forward(self, x: Tensor, hidden: int, kernel: int) -> Tensor:
        w = self.weights(x.shape[-1], hidden, kernel)
        x = F.glu(F.linear(x, w["pw1.weight"], w["pw1.bias"]), dim=-1)  # (B, N, hidden)
        # The depthwise conv runs as a 1 x K conv2d on (B, hidden, 1, N) in channels-last layout: that is the
        # (B, N, hidden) token tensor viewed without a copy, and CPU kernels run it ~4x faster than conv1d on
        # (B, hidden, N). Same maths, same weights.
        x = x.unsqueeze(1).permute(0, 3, 1, 2)  # (B, hidden, 1, N), channels-last strides
        x = F.conv2d(x, w["dw.weight"].unsqueeze(2), w["dw.bias"], padding=(0, kernel // 2), groups=hidden)
        bn, momentum = self.bn, self.bn.momentum
        if bn.training:
            bn.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative average, as nn.BatchNorm1d does (used by BN recalibration)
                momentum = 1.0 / float(bn.num_batches_tracked)
        x = F.batch_norm(x, w["bn.running_mean"], w["bn.running_var"], w["bn.weight"], w["bn.bias"],
                         bn.training, momentum or 0.0, bn.eps)
        x = F.silu(x).permute(0, 2, 3, 1).flatten(1, 2)  # Swish; (B, N, hidden)
        return F.linear(x, w["pw2.weight"], w["pw2.bias"])  # (B, N, C_l)


class Mlp(Sliceable):
    """The FFN: Linear(D, r D), GELU, Linear(r D, D).

    Deviation from the paper: its text says Swish, but the released code and checkpoint use GELU; we follow the code.
    """

    def __init__(self, dim: int, max_hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, max_hidden)
        self.fc2 = nn.Linear(max_hidden, dim)

    def cuts(self, hidden: int) -> dict[str, Cut]:
        return {
            "fc1.weight": Cut(self.fc1.weight, S[:hidden]),
            "fc1.bias": Cut(self.fc1.bias, S[:hidden]),
            "fc2.weight": Cut(self.fc2.weight, S[:, :hidden]),
            "fc2.bias": Cut(self.fc2.bias),
        }

    def forward(self, x: Tensor, hidden: int) -> Tensor:
        w = self.weights(hidden)
        x = F.gelu(F.linear(x, w["fc1.weight"], w["fc1.bias"]))
        return F.linear(x, w["fc2.weight"], w["fc2.bias"])


def drop_path(x: Tensor, rate: float, training: bool) -> Tensor:
    """Stochastic depth: drop the whole residual branch of a sample with probability ``rate``."""
    if rate == 0.0 or not training:
        return x
    keep = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(1.0 - rate)
    return x * keep / (1.0 - rate)


@torch.no_grad()
def copy_weights(dst: nn.Module, weights: dict[str, Tensor]) -> None:
    """Copy sliced ``weights`` into ``dst``, a layer allocated at exactly their sizes."""
    dst.load_state_dict({k: v.detach().clone() for k, v in weights.items()}, strict=True)
