"""The three sliceable layers of a block: global attention, the local conv module, and the FFN.

Each layer is allocated at the largest size its genes allow and runs at any smaller size. **The slicing rule is
written once per layer, in its ``weights(...)`` method**: it returns the state-dict entries (same keys) that a path
of the given size uses. ``forward`` computes with those tensors, and ``Supernet.extract`` copies them into a layer
allocated at exactly that size. A layer allocated at exactly the path's size slices whole tensors: views, no copies.

The rule:
- Token channels are sliced by the range that the part owns: the global part owns the first C_g channels of the
  token, the local part the last C_l. So a token channel always meets the same weights, whatever the split.
  (Leading slices for the local part would make channel j meet a different column for each G.)
- Hidden widths take leading slices: whole heads first, then the leading dims of each head (Q, K and V alike);
  the leading E * C_l channels of the local module (in both GLU halves); the leading r * D units of the FFN.
- A smaller kernel takes the centre of the largest one, as once-for-all does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GlobalAttention(nn.Module):
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

    def weights(self, heads: int, head_dim: int) -> dict[str, Tensor]:
        c, hm, dm = heads * self.head_channels, self.max_heads, self.max_head_dim
        c_max = hm * self.head_channels
        return {
            "qkv.weight": self.qkv.weight.view(3, hm, dm, c_max)[:, :heads, :head_dim, :c].reshape(-1, c),
            "qkv.bias": self.qkv.bias.view(3, hm, dm)[:, :heads, :head_dim].reshape(-1),
            "proj.weight": self.proj.weight.view(c_max, hm, dm)[:c, :heads, :head_dim].reshape(c, -1),
            "proj.bias": self.proj.bias[:c],
        }

    def forward(self, x: Tensor, heads: int, head_dim: int) -> Tensor:
        w = self.weights(heads, head_dim)
        B, N, _ = x.shape  # (B, N, C_g)
        qkv = F.linear(x, w["qkv.weight"], w["qkv.bias"]).view(B, N, 3, heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        x = F.scaled_dot_product_attention(q, k, v)  # scale (head_dim)^-0.5
        x = x.transpose(1, 2).reshape(B, N, heads * head_dim)
        return F.linear(x, w["proj.weight"], w["proj.bias"])  # (B, N, C_g)


class LocalConv(nn.Module):
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

    def weights(self, channels: int, hidden: int, kernel: int) -> dict[str, Tensor]:
        first = self.max_channels - channels  # the local part owns the last `channels` token channels
        trim = (self.max_kernel - kernel) // 2
        bn = self.bn
        return {
            "pw1.weight": self.pw1.weight.view(2, self.max_hidden, -1)[:, :hidden, first:].reshape(2 * hidden, -1),
            "pw1.bias": self.pw1.bias.view(2, self.max_hidden)[:, :hidden].reshape(-1),
            "dw.weight": self.dw.weight[:hidden, :, trim:trim + kernel],
            "dw.bias": self.dw.bias[:hidden],
            "bn.weight": bn.weight[:hidden],
            "bn.bias": bn.bias[:hidden],
            "bn.running_mean": bn.running_mean[:hidden],  # views: training updates the shared statistics
            "bn.running_var": bn.running_var[:hidden],
            "bn.num_batches_tracked": bn.num_batches_tracked,
            "pw2.weight": self.pw2.weight[first:, :hidden],
            "pw2.bias": self.pw2.bias[first:],
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


class Mlp(nn.Module):
    """The FFN: Linear(D, r D), GELU, Linear(r D, D).

    Deviation from the paper: its text says Swish, but the released code and checkpoint use GELU; we follow the code.
    """

    def __init__(self, dim: int, max_hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, max_hidden)
        self.fc2 = nn.Linear(max_hidden, dim)

    def weights(self, hidden: int) -> dict[str, Tensor]:
        return {
            "fc1.weight": self.fc1.weight[:hidden],
            "fc1.bias": self.fc1.bias[:hidden],
            "fc2.weight": self.fc2.weight[:, :hidden],
            "fc2.bias": self.fc2.bias,
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
