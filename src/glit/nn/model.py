"""The GLiT vision transformer: one definition for the supernet and for every standalone model.

A ``Supernet(space)`` allocates each weight at the largest size the space allows; ``forward(x, arch)`` runs one
path. A standalone model is the supernet of a one-architecture space (``build_model(arch)``): the same classes,
with weights allocated at exactly that architecture's sizes, so every slice is the whole tensor.
``supernet.extract(arch)`` builds that standalone model and copies the path's weights into it.

State-dict keys follow timm's ViT: ``patch_embed.proj``, ``cls_token``, ``pos_embed``, ``blocks.N.norm1``,
``blocks.N.attn.qkv``, ``blocks.N.attn.proj``, ``blocks.N.local.{pw1,dw,bn,pw2}``, ``blocks.N.norm2``,
``blocks.N.mlp.fc1``, ``blocks.N.mlp.fc2``, ``norm``, ``head``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from glit.errors import GlitError
from glit.genes import LOCAL_OPS, block_dims, resolve
from glit.nn.layers import (
    GlobalAttention,
    LocalConv,
    LocalConv2d,
    LocalWindowAttention,
    Mlp,
    copy_weights,
    drop_path,
)
from glit.space import Arch, BlockChoices, BlockGenes, Family, SearchSpace

# The layer builders of the local operators, named by their glit.genes.LOCAL_OPS records: build(family,
# max_channels, max_hidden, max_kernel); a layer's state-dict name in a block is the record's ``layer``.

def conv1d_layer(fam: Family, c: int, h: int, k: int) -> nn.Module:
    return LocalConv(c, h, k)


def window_attn_layer(fam: Family, c: int, h: int, k: int) -> nn.Module:
    return LocalWindowAttention(fam.head_channels, c // fam.head_channels, h // (c // fam.head_channels))


def conv2d_layer(fam: Family, c: int, h: int, k: int) -> nn.Module:
    return LocalConv2d(c, h, k, fam.img_size // fam.patch_size)


class Block(nn.Module):
    """``x = x + DropPath(GL(LN1(x)))``, then ``x = x + DropPath(FFN(LN2(x)))``.

    GL splits the LN'd token: the first C_g channels go to global attention, the last C_l to the local module, and
    the two outputs are concatenated back to D channels with no projection across them (the FFN mixes them).
    A block whose choices are all global has no local module, and vice versa: no empty tensors. Each candidate
    ``local_op`` has its own layer; the sizes of every layer come from ``glit.genes.block_dims``.
    """

    def __init__(self, family: Family, choices: BlockChoices, drop_path_rate: float, local_weights: str = "shared"):
        super().__init__()
        d, hc, h = family.embed_dim, family.head_channels, family.num_heads
        self.family, self.drop_path_rate = family, drop_path_rate
        max_global = max(choices.num_global_heads)
        local_heads = sorted({h - g for g in choices.num_global_heads if g < h})
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        if max_global:
            max_head_dim = int(max(choices.qkv_ratio) * hc)
            self.attn = GlobalAttention(hc, max_global, max_head_dim)
        # per_heads (few-shot local weights): one local module per number of local heads, named `local_<L>heads`
        # (`local` when there is one: a standalone block keeps timm-style names); shared: one, at the most heads
        self.per_heads = local_weights == "per_heads" and len(local_heads) > 1
        for heads in local_heads if self.per_heads else local_heads[-1:]:
            c_l = heads * hc
            for op in choices.local_op:
                layer = resolve(LOCAL_OPS[op].build)(family, c_l, int(max(choices.conv_ratio) * c_l),
                                                     max(choices.kernel_size))
                self.add_module(LOCAL_OPS[op].layer + (f"_{heads}heads" if self.per_heads else ""), layer)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(d, int(max(choices.mlp_ratio) * d))

    def layer(self, name: str, genes: BlockGenes) -> nn.Module:
        """The module that runs part ``name`` (a key of ``sizes``) of a block with these genes."""
        if self.per_heads and name not in ("attn", "mlp"):
            return getattr(self, f"{name}_{self.family.num_heads - genes.num_global_heads}heads")
        return getattr(self, name)

    def sizes(self, genes: BlockGenes) -> dict:
        """The active sizes of each layer for these genes: the arguments of their ``weights`` and ``forward``, by
        the layer's name in the block (``attn``, the local operator's layer, ``mlp``)."""
        dims = block_dims(self.family, genes)
        sizes = {"mlp": {"hidden": dims.mlp_hidden}}
        if dims.heads:
            sizes["attn"] = {"heads": dims.heads, "head_dim": dims.head_dim}
        if dims.local_op:
            sizes[LOCAL_OPS[dims.local_op].layer] = {"channels": dims.local_channels, "hidden": dims.local_hidden,
                                                    "kernel": dims.kernel}
        return sizes

    def forward(self, x: Tensor, genes: BlockGenes) -> Tensor:
        s = self.sizes(genes)
        h = self.norm1(x)  # (B, N, D)
        parts = []
        if "attn" in s:
            parts.append(self.attn(h[..., :s["attn"]["heads"] * self.family.head_channels], **s["attn"]))
        local = next((name for name in s if name not in ("attn", "mlp")), None)
        if local:
            parts.append(self.layer(local, genes)(h[..., h.shape[-1] - s[local]["channels"]:], **s[local]))
        y = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        x = x + drop_path(y, self.drop_path_rate, self.training)
        return x + drop_path(self.mlp(self.norm2(x), **s["mlp"]), self.drop_path_rate, self.training)


class Supernet(nn.Module):
    """The weight-sharing supernet of ``space``; ``forward(x, arch)`` runs only ``arch``'s path.

    Stochastic depth rises linearly from 0 in the first block to ``drop_path`` in the last. ``local_weights``
    "per_heads" gives each block one local module per number of local heads (few-shot; ``supernet.local_weights``)
    instead of one shared by all.
    """

    def __init__(self, space: SearchSpace, drop_path: float = 0.0, generator: torch.Generator | None = None,
                 local_weights: str = "shared"):
        super().__init__()
        fam = self.family = space.family
        self.space, self.drop_path, self.local_weights = space, drop_path, local_weights
        self._single = None
        self._paths: dict[tuple, tuple[dict, dict, dict]] = {}  # _layer_paths' cache
        if space.is_single():
            self._single = Arch(fam, tuple(space.block_options(i)[0] for i in range(fam.depth)))
        d = fam.embed_dim
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(fam.in_chans, d, fam.patch_size, stride=fam.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, fam.num_tokens, d))
        rates = [drop_path * i / max(fam.depth - 1, 1) for i in range(fam.depth)]
        self.blocks = nn.ModuleList(Block(fam, c, r, local_weights) for c, r in zip(space.blocks, rates))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        self.head = nn.Linear(d, fam.num_classes)
        self.reset_parameters(generator)

    @property
    def arch(self) -> Arch:
        """The architecture of a standalone model (a supernet whose space holds one architecture)."""
        if self._single is None:
            raise GlitError("this supernet holds many architectures: pass one to forward(x, arch)")
        return self._single

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Truncated-normal (std 0.02) Linear weights, class token and position embedding; zero biases; unit norms.
        The patch and depthwise convs keep PyTorch's default initialisation, as DeiT does."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02, generator=generator)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv1d | nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, a=5**0.5, generator=generator)
                bound = m.weight[0].numel() ** -0.5
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
            elif isinstance(m, nn.LayerNorm | nn.BatchNorm1d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.cls_token, std=0.02, generator=generator)
        nn.init.trunc_normal_(self.pos_embed, std=0.02, generator=generator)

    def forward(self, x: Tensor, arch: Arch | None = None) -> Tensor:
        if arch is None:
            arch = self.arch
        else:
            self.space.check(arch)  # a path outside the space would silently run a different network
        x = self.embed(x)
        for block, genes in zip(self.blocks, arch.blocks):
            x = block(x, genes)
        return self.classify(x)

    def embed(self, images: Tensor) -> Tensor:
        """The stem: patches, class token and position embedding, (B, C, H, W) -> (B, N, D) tokens."""
        x = self.patch_embed.proj(images).flatten(2).transpose(1, 2)  # (B, num_patches, D)
        return torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed  # (B, N, D)

    def classify(self, tokens: Tensor) -> Tensor:
        """The head: the final norm and the classifier on the class token, (B, N, D) -> (B, classes)."""
        return self.head(self.norm(tokens[:, 0]))

    def path_masks(self, arch: Arch) -> dict[nn.Parameter, Tensor]:
        """For each sliced parameter, a boolean mask of the elements that ``arch``'s path uses.

        Marked by the layers' own slicing rule (``cuts``), so it cannot drift from the forward pass. Parameters
        outside the sliced layers are always wholly used.
        """
        return {p: m for masks, _, _ in self._layer_paths(arch) for p, m in masks.items()}

    def path_views(self, arch: Arch, every: bool = False) -> dict[nn.Parameter, Callable[[Tensor], Tensor]]:
        """For each parameter that ``arch``'s path uses in part (with ``every``: each parameter of the sliced layers
        that it uses at all), the function that views the path's elements of any tensor of the parameter's shape
        (the parameter, its gradient, its AdamW moments): one box of the slicing rule, no copy. The supernet's AdamW
        update steps those views in place (``train.optim.path_step`` and ``element_step``)."""
        return {p: v for _, every_view, partial in self._layer_paths(arch)
                for p, v in (every_view if every else partial).items()}

    def _layer_paths(self, arch: Arch) -> list[tuple[dict, dict, dict]]:
        """``(masks, views, views of the parameters used in part)`` of each layer that ``arch`` runs. A layer's
        depend only on its sizes (and the device), so each is made once and then reused: a supernet step would
        otherwise spend more on them than a small model spends on arithmetic."""
        found = []
        device = self.head.weight.device
        for i, (block, genes) in enumerate(zip(self.blocks, arch.blocks)):
            for layer_name, sizes in block.sizes(genes).items():
                key = (i, layer_name, tuple(sorted(sizes.items())), device)
                if key not in self._paths:
                    self._paths[key] = _layer_path(block.layer(layer_name, genes), sizes)
                found.append(self._paths[key])
        return found

    @torch.no_grad()
    def extract(self, arch: Arch) -> Supernet:
        """A standalone model of ``arch`` with its own copy of the inherited weights (BatchNorm statistics
        included). In the same mode (train or eval) as this supernet, it gives the same output as ``self(x, arch)``."""
        self.space.check(arch)
        ref = self.patch_embed.proj.weight
        with torch.device("meta"):  # every tensor is overwritten below: skip allocation-time initialisation
            subnet = Supernet(SearchSpace.single(arch), drop_path=self.drop_path)
        subnet = subnet.to_empty(device=ref.device).to(ref.dtype)
        for name in ("patch_embed", "norm", "head"):
            getattr(subnet, name).load_state_dict(getattr(self, name).state_dict())
        subnet.cls_token.copy_(self.cls_token)
        subnet.pos_embed.copy_(self.pos_embed)
        for src, dst, genes in zip(self.blocks, subnet.blocks, arch.blocks):
            dst.norm1.load_state_dict(src.norm1.state_dict())
            dst.norm2.load_state_dict(src.norm2.state_dict())
            for layer, sizes in src.sizes(genes).items():
                copy_weights(dst.layer(layer, genes), src.layer(layer, genes).weights(**sizes))
        return subnet.train(self.training)


    @torch.no_grad()
    def inherit(self, arch: Arch, subnet: Supernet) -> None:
        """Write a standalone model's weights into ``arch``'s path: the inverse of ``extract``.

        Each slice of the slicing rule is a box of a row-major view of its parameter, so the path's elements, in
        storage order, are exactly the standalone tensor's elements in order: ``masked_scatter`` puts them back.
        Used to warm-start one supernet from another (``recipes.train_supernet.inherit_paths``).
        """
        self.space.check(arch)
        for name in ("patch_embed", "norm", "head"):
            getattr(self, name).load_state_dict(getattr(subnet, name).state_dict())
        self.cls_token.copy_(subnet.cls_token)
        self.pos_embed.copy_(subnet.pos_embed)
        masks = self.path_masks(arch)
        for dst, src, genes in zip(self.blocks, subnet.blocks, arch.blocks):
            dst.norm1.load_state_dict(src.norm1.state_dict())
            dst.norm2.load_state_dict(src.norm2.state_dict())
            for layer in dst.sizes(genes):
                d, s = dst.layer(layer, genes), src.layer(layer, genes)
                for p, q in zip(d.parameters(), s.parameters()):
                    p.masked_scatter_(masks[p], q)
                for key, value in d.weights(**dst.sizes(genes)[layer]).items():
                    if key.startswith("bn.running"):  # buffers: leading slices, views
                        value.copy_(s.state_dict()[key])


def build_model(arch: Arch, drop_path: float = 0.0, generator: torch.Generator | None = None) -> Supernet:
    """A fresh standalone model of ``arch``; ``model(x)`` runs it."""
    return Supernet(SearchSpace.single(arch), drop_path=drop_path, generator=generator)


def _layer_path(layer: nn.Module, sizes: dict) -> tuple[dict, dict, dict]:
    """The masks and views of ``layer``'s parameters that ``layer.weights(**sizes)`` uses (see ``path_masks``), and
    the views of those it uses in part."""
    masks = {p: torch.zeros_like(p, dtype=torch.bool) for p in layer.parameters()}
    views = {}
    for cut in layer.cuts(**sizes).values():
        if cut.tensor in masks:
            cut.box_of(masks[cut.tensor]).fill_(True)
            views[cut.tensor] = cut.box_of
    return masks, views, {p: v for p, v in views.items() if not masks[p].all()}
