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

from glit.genes import kernel_2d


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
        return self._head_cuts(heads, head_dim, 0)  # the global part owns the first token channels

    def _head_cuts(self, heads: int, head_dim: int, first: int) -> dict[str, Cut]:
        """Leading heads and leading dims of each head, on the token channels ``first`` to ``first + heads *
        head_channels``."""
        c, hm, dm = heads * self.head_channels, self.max_heads, self.max_head_dim
        c_max, last = hm * self.head_channels, first + heads * self.head_channels
        return {
            "qkv.weight": Cut(self.qkv.weight, S[:, :heads, :head_dim, first:last], (3, hm, dm, c_max), (-1, c)),
            "qkv.bias": Cut(self.qkv.bias, S[:, :heads, :head_dim], (3, hm, dm), (-1,)),
            "proj.weight": Cut(self.proj.weight, S[first:last, :heads, :head_dim], (c_max, hm, dm), (c, -1)),
            "proj.bias": Cut(self.proj.bias, S[first:last]),
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

    def forward(self, x: Tensor, channels: int, hidden: int, kernel: int) -> Tensor:
        w = self.weights(channels, hidden, kernel)
        x = F.glu(F.linear(x, w["pw1.weight"], w["pw1.bias"]), dim=-1)  # (B, N, hidden)
        # The depthwise conv runs as a 1 x K conv2d on (B, hidden, 1, N) in channels-last layout: that is the
        # (B, N, hidden) token tensor viewed without a copy, and CPU kernels run it ~4x faster than conv1d on
        # (B, hidden, N). Same maths, same weights.
        x = x.unsqueeze(1).permute(0, 3, 1, 2)  # (B, hidden, 1, N), channels-last strides
        x = F.conv2d(x, w["dw.weight"].unsqueeze(2), w["dw.bias"], padding=(0, kernel // 2), groups=hidden)
        x = F.silu(_batch_norm(self.bn, x, w)).permute(0, 2, 3, 1).flatten(1, 2)  # Swish; (B, N, hidden)
        return F.linear(x, w["pw2.weight"], w["pw2.bias"])  # (B, N, C_l)


class LocalConv2d(LocalConv):
    """``local_op`` conv2d: the conv1d module with its depthwise convolution k x k over the patch grid, k =
    ``glit.genes.kernel_2d(K)`` (a window of about K tokens, the reach of the K-tap 1-D kernel), zero "same" padding.

    The class token has no place on the grid: it skips the depthwise convolution (its value passes through, with no
    bias added) and goes through the rest of the module (pointwise convs, GLU, BatchNorm, Swish) like any token.
    A smaller kernel takes the centre of the largest, in both directions.
    """

    def __init__(self, max_channels: int, max_hidden: int, max_kernel: int, grid: int):
        super().__init__(max_channels, max_hidden, max_kernel)
        side = kernel_2d(max_kernel)
        self.grid = grid
        self.dw = nn.Conv2d(max_hidden, max_hidden, side, groups=max_hidden)

    def cuts(self, channels: int, hidden: int, kernel: int) -> dict[str, Cut]:
        cuts = super().cuts(channels, hidden, 1)  # every entry but the depthwise kernel is the conv1d module's
        side, max_side = kernel_2d(kernel), self.dw.kernel_size[0]
        trim = (max_side - side) // 2
        cuts["dw.weight"] = Cut(self.dw.weight, S[:hidden, :, trim:trim + side, trim:trim + side])
        return cuts

    def forward(self, x: Tensor, channels: int, hidden: int, kernel: int) -> Tensor:
        w = self.weights(channels, hidden, kernel)
        x = F.glu(F.linear(x, w["pw1.weight"], w["pw1.bias"]), dim=-1)  # (B, N, hidden)
        B, N, _ = x.shape
        cls, grid = x[:, :1], x[:, 1:].transpose(1, 2).reshape(B, hidden, self.grid, self.grid)
        side = w["dw.weight"].shape[-1]
        grid = F.conv2d(grid, w["dw.weight"], w["dw.bias"], padding=side // 2, groups=hidden)
        x = torch.cat([cls.transpose(1, 2), grid.flatten(2)], dim=2)  # (B, hidden, N)
        x = F.silu(_batch_norm(self.bn, x, w)).transpose(1, 2)  # Swish; (B, N, hidden)
        return F.linear(x, w["pw2.weight"], w["pw2.bias"])  # (B, N, C_l)


class LocalWindowAttention(GlobalAttention):
    """``local_op`` window_attn: multi-head self-attention in which each token attends to the K tokens of the 1-D
    sequence centred on it (the reach of the K-tap conv1d module; the class token is token 0 of the sequence, as
    there). Keys beyond either end are masked out. Its L heads are the block's local head slots, each
    ``conv_ratio`` * head_channels wide: qkv is Linear(C_l, 3 E C_l) and proj Linear(E C_l, C_l), with biases. No
    position bias (the patch embedding's position embedding is there); scale (head_dim)^-0.5.

    It computes only the K scores of each token (its K keys gathered by index), so its cost is t K E C_l per
    product, not t^2. Slicing: token channels from the end, as the conv module; leading heads and leading head
    dims, as global attention (whose layers and slicing it shares).
    """

    def cuts(self, channels: int, hidden: int, kernel: int) -> dict[str, Cut]:
        heads = channels // self.head_channels
        return self._head_cuts(heads, hidden // heads, self.max_heads * self.head_channels - channels)

    def forward(self, x: Tensor, channels: int, hidden: int, kernel: int) -> Tensor:
        w = self.weights(channels, hidden, kernel)
        B, N, _ = x.shape
        heads = channels // self.head_channels
        head_dim, r = hidden // heads, kernel // 2
        q, k, v = F.linear(x, w["qkv.weight"], w["qkv.bias"]).view(B, N, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
        pos = torch.arange(N, device=x.device)[:, None] - r + torch.arange(kernel, device=x.device)  # (N, K)
        outside = (pos < 0) | (pos >= N)  # keys beyond the sequence's ends: gathered, then masked out
        k, v = (t[:, :, pos.clamp(0, N - 1)] for t in (k, v))  # (B, heads, N, K, head_dim)
        scores = torch.einsum("bhnd,bhnkd->bhnk", q, k) * head_dim**-0.5
        x = torch.einsum("bhnk,bhnkd->bhnd", scores.masked_fill(outside, float("-inf")).softmax(-1), v)
        x = x.transpose(1, 2).reshape(B, N, hidden)
        return F.linear(x, w["proj.weight"], w["proj.bias"])  # (B, N, C_l)


def _batch_norm(bn: nn.BatchNorm1d, x: Tensor, w: dict[str, Tensor]) -> Tensor:
    """``bn`` on ``x`` (channels in dim 1) with the path's slices ``w`` of its weights and running statistics."""
    momentum = bn.momentum
    if bn.training:
        bn.num_batches_tracked.add_(1)
        if momentum is None:  # cumulative average, as nn.BatchNorm1d does (used by BN recalibration)
            momentum = 1.0 / float(bn.num_batches_tracked)
    return F.batch_norm(x, w["bn.running_mean"], w["bn.running_var"], w["bn.weight"], w["bn.bias"], bn.training,
                        momentum or 0.0, bn.eps)


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
