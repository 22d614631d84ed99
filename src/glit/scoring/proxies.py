"""Zero-cost proxies: a candidate's score from its freshly initialised network and one batch, with no training.
Each is one function of a standalone model (train mode, float64 where it matters) and a batch; higher is better.

- ``params``: the number of parameters (the baseline every proxy must beat; no network is built).
- ``synflow``: Tanaka, Kunin, Yamins and Ganguli, "Pruning neural networks without any data by iteratively
  conserving synaptic flow" (NeurIPS 2020), used as a NAS proxy by Abdelfattah, Mehrotra, Dudziak and Lane,
  "Zero-Cost Proxies for Lightweight NAS" (ICLR 2021): with every weight replaced by its absolute value and an input
  of ones, R = sum of the outputs; the score is sum over weights of |theta * dR/dtheta|. Run in float64 (the product
  of absolute weights over a deep network overflows float32).
- ``naswot``: Mellor, Turner, Storkey and Crowley, "Neural Architecture Search without Training" (ICML 2021): the
  binary code of each image is the sign pattern of the network's nonlinearity inputs (here the FFNs' hidden units,
  the inputs of their GELU, over every token; every block has an FFN); with K[i, j] the number of units on which
  images i and j agree, the score is log |det K|.
- ``dss``: TF-TAS, Zhou, Xu, Zhang, Shen and Zou, "Training-free Transformer Architecture Search" (CVPR 2022): the
  DSS indicator, the sum of the attention weights' synaptic diversity (the nuclear norm of |dL/dW * W| for each
  attention projection) and the other weights' synaptic saliency (sum of |dL/dW * W| for the FFN and local-module
  weights), from one cross-entropy backward pass on the batch. The paper defines it for MSA and MLP; glit's local
  modules are counted with the MLPs (an adaptation: they are not attention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from glit.cost import cost
from glit.nn import Supernet
from glit.space import Arch


def params(arch: Arch) -> float:
    return float(cost(arch).params)


def synflow(model: Supernet, x: Tensor) -> float:
    model = model.double().eval()  # eval: BatchNorm uses its (initial) statistics, so a one-image input is fine
    signs = {}
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if p.is_floating_point():
                signs[name] = torch.sign(p)
                p.abs_()
    model.zero_grad(set_to_none=True)
    ones = torch.ones_like(x[:1], dtype=torch.float64)
    model(ones).sum().backward()
    score = sum((p * p.grad).abs().sum().item() for p in model.parameters() if p.grad is not None)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name in signs:
                p.mul_(signs[name])
    return float(score)


def naswot(model: Supernet, x: Tensor) -> float:
    codes = []

    def hook(mlp, args, kwargs, _output):  # the FFN's hidden pre-activations (GELU's inputs), from its own weights
        (tokens,), hidden = args, kwargs["hidden"]
        w = mlp.weights(hidden)
        codes.append((F.linear(tokens, w["fc1.weight"], w["fc1.bias"]).flatten(1) > 0).double())  # a row per image

    handles = [block.mlp.register_forward_hook(hook, with_kwargs=True) for block in model.blocks]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    c = torch.cat(codes, dim=1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(k).logabsdet)


def dss(model: Supernet, x: Tensor, y: Tensor) -> float:
    model.train().zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    diversity = saliency = 0.0
    for name, p in model.named_parameters():
        if p.grad is None or p.ndim < 2 or not name.startswith("blocks."):
            continue
        product = (p.grad * p).abs().detach()
        if ".attn." in name:
            diversity += torch.linalg.matrix_norm(product.flatten(1).double(), ord="nuc").item()
        else:
            saliency += product.sum().item()
    model.zero_grad(set_to_none=True)
    return diversity + saliency


def proxy_score(name: str, model: nn.Module | None, arch: Arch, x: Tensor, y: Tensor) -> float:
    """The proxy ``name`` of a freshly initialised standalone ``model`` of ``arch`` on the batch ``(x, y)``."""
    if name == "params":
        return params(arch)
    if name == "synflow":
        return synflow(model, x)
    if name == "naswot":
        return naswot(model, x)
    return dss(model, x, y)
