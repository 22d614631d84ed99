"""The optimiser and its schedule (glit.train.optim) and the EMA of the weights (glit.train.loop.update_ema, used by
glit.train.fit): which parameters decay, the warm-up + cosine learning rate, ``sized`` edge cases, and the EMA's
closed form. The sizing rule's main cases are in test_length.py."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import glit
from glit import Arch, BlockGenes, GlitError
from glit.config import Config, OptimConfig
from glit.presets import SPACES, deit
from glit.train.checkpoint import load_checkpoint
from glit.train.dist import Dist
from glit.train.fit import fit
from glit.train.loop import update_ema
from glit.train.optim import lr_at, make_optimizer, scaled_lr, sized

DEMO = SPACES["demo"].family  # 8 px, patch 2, D 48, H 3, depth 4, 10 classes
MIXED = Arch(DEMO, tuple(BlockGenes(num_global_heads=g, qkv_ratio=1 if g else None, mlp_ratio=4,
                                    conv_ratio=2 if g < 3 else None, kernel_size=3 if g < 3 else None)
                         for g in (1, 0, 3, 2)))

# -- which parameters decay -----------------------------------------------------------------------------------------


def _no_decay_by_name(model: nn.Module) -> set[str]:
    """DeiT's rule, written out by name and module type (not by tensor shape): biases, the weights of every norm
    (LayerNorm and the local module's BatchNorm), the class token and the position embedding."""
    norms = {name for name, m in model.named_modules() if isinstance(m, (nn.LayerNorm, nn.BatchNorm1d))}
    return {name for name, _ in model.named_parameters()
            if name.endswith(".bias") or name in ("cls_token", "pos_embed") or name.rpartition(".")[0] in norms}


@pytest.mark.parametrize("arch", [deit(DEMO), MIXED], ids=["deit", "mixed"])
def test_weight_decay_spares_biases_norms_and_the_tokens(arch):
    """Every parameter is in exactly one group; the configured decay goes to the matrices and kernels (patch
    embedding, qkv, projections, FFN, pointwise and depthwise convolutions, head), 0 to the rest. Guards against a
    rule by shape alone (cls_token and pos_embed are 3-d), against decaying everything or nothing, and against a
    parameter left out of the optimiser or in both groups."""
    model = glit.build_model(arch)
    names = {p: name for name, p in model.named_parameters()}
    optimizer = make_optimizer(model, OptimConfig(weight_decay=0.07))
    decay = {g["weight_decay"]: [names[p] for p in g["params"]] for g in optimizer.param_groups}
    assert sorted(decay) == [0.0, 0.07]
    assert sorted(decay[0.0] + decay[0.07]) == sorted(names.values())  # each parameter once
    assert set(decay[0.0]) == _no_decay_by_name(model)
    assert {"cls_token", "pos_embed", "norm.weight", "blocks.0.norm1.weight", "blocks.3.mlp.fc2.bias",
            "head.bias"} <= set(decay[0.0])
    assert {"patch_embed.proj.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight",
            "blocks.0.mlp.fc1.weight", "head.weight"} <= set(decay[0.07])
    if arch == MIXED:
        assert {"blocks.1.local.bn.weight", "blocks.1.local.bn.bias", "blocks.1.local.dw.bias"} <= set(decay[0.0])
        assert {"blocks.1.local.pw1.weight", "blocks.1.local.dw.weight", "blocks.1.local.pw2.weight"} <= \
            set(decay[0.07])


def test_a_step_with_zero_gradients_decays_exactly_the_decayed_group():
    """With zero gradients, AdamW's step is the decoupled decay alone: the decayed weights shrink by 1 - lr * wd at
    the batch-scaled lr, the others stay bit for bit. Guards against a group whose decay the step does not apply,
    and against an lr that is not scaled by batch_size / 512."""
    model = glit.build_model(MIXED, generator=torch.Generator().manual_seed(0))
    o = OptimConfig(lr=4e-3, batch_size=256, weight_decay=0.5)
    optimizer = make_optimizer(model, o)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    spared = _no_decay_by_name(model)
    shrink = 1 - 2e-3 * 0.5
    assert scaled_lr(o) == 2e-3
    for name, p in model.named_parameters():
        if name in spared:
            assert torch.equal(p.detach(), before[name]), name
        else:
            torch.testing.assert_close(p.detach(), before[name] * shrink, rtol=1e-6, atol=0)
            assert not torch.equal(p.detach(), before[name]), name


# -- the learning-rate schedule -------------------------------------------------------------------------------------

# 10 epochs of 5 steps: 10 warm-up steps (2 epochs), then 40 cosine steps; base lr 1e-3 * 256 / 512 = 5e-4.
SCHEDULE = OptimConfig(epochs=10, batch_size=256, lr=1e-3, warmup_epochs=2, warmup_lr=1e-6, min_lr=1e-5)
STEPS, WARMUP, TOTAL, BASE = 5, 10, 50, 5e-4


def _cosine(step: int) -> float:
    return 1e-5 + 0.5 * (BASE - 1e-5) * (1 + math.cos(math.pi * (step - WARMUP) / (TOTAL - WARMUP)))


def test_warmup_then_cosine_at_known_steps():
    """Step 0 is warmup_lr; warm-up is linear and reaches the batch-scaled lr at its end; then the closed form of the
    cosine, which is halfway between lr and min_lr halfway through and min_lr at the end. Guards against an lr not
    scaled by the batch, a warm-up that starts at 0 or at lr, an off-by-one at the end of the warm-up, and a cosine
    that counts from step 0 instead of from the end of the warm-up."""
    assert lr_at(0, STEPS, SCHEDULE) == 1e-6
    assert lr_at(4, STEPS, SCHEDULE) == pytest.approx(1e-6 + (BASE - 1e-6) * 0.4, rel=1e-12)
    assert lr_at(WARMUP - 1, STEPS, SCHEDULE) < BASE
    assert lr_at(WARMUP, STEPS, SCHEDULE) == pytest.approx(BASE, rel=1e-12)
    assert lr_at(20, STEPS, SCHEDULE) == pytest.approx(1e-5 + 0.5 * (BASE - 1e-5) * (1 + math.sqrt(0.5)), rel=1e-12)
    assert lr_at(30, STEPS, SCHEDULE) == pytest.approx((BASE + 1e-5) / 2, rel=1e-12)
    for step in range(WARMUP, TOTAL):
        assert lr_at(step, STEPS, SCHEDULE) == pytest.approx(_cosine(step), rel=1e-12), step
    # The last step (49) is one cosine step short of min_lr, which the schedule reaches at step 50 and keeps after.
    assert 1e-5 < lr_at(TOTAL - 1, STEPS, SCHEDULE) < 1e-5 + 1e-6
    assert lr_at(TOTAL, STEPS, SCHEDULE) == pytest.approx(1e-5, rel=1e-12)
    assert lr_at(TOTAL + 7, STEPS, SCHEDULE) == pytest.approx(1e-5, rel=1e-12)


def test_the_schedule_rises_through_warmup_and_falls_after():
    """Strictly rising over the warm-up by equal steps, strictly falling over the cosine, never below min_lr or above
    the scaled lr. Guards against a schedule that restarts, jumps at the warm-up's end, or overshoots."""
    lrs = [lr_at(step, STEPS, SCHEDULE) for step in range(TOTAL)]
    rises = [b - a for a, b in zip(lrs[:WARMUP + 1], lrs[1:WARMUP + 1])]
    assert all(r > 0 for r in rises) and max(rises) == pytest.approx(min(rises), rel=1e-9)
    assert all(b < a for a, b in zip(lrs[WARMUP:], lrs[WARMUP + 1:]))
    assert all(1e-5 <= lr <= BASE * (1 + 1e-12) for lr in lrs[WARMUP:])


def test_no_warmup_starts_at_the_scaled_lr():
    """warmup_epochs=0: step 0 is already the cosine's start (no division by an empty warm-up); a fractional warm-up
    counts whole steps (rounded down)."""
    o = OptimConfig(epochs=4, batch_size=512, lr=1e-3, warmup_epochs=0, min_lr=0.0)
    assert lr_at(0, 10, o) == pytest.approx(1e-3, rel=1e-12)
    assert lr_at(20, 10, o) == pytest.approx(5e-4, rel=1e-12)
    half = OptimConfig(epochs=4, batch_size=512, lr=1e-3, warmup_epochs=0.5, warmup_lr=0.0, min_lr=0.0)
    assert lr_at(2, 7, half) == pytest.approx(1e-3 * 2 / 3, rel=1e-12)  # 0.5 * 7 = 3.5: 3 warm-up steps
    assert lr_at(3, 7, half) == pytest.approx(1e-3, rel=1e-12)


# -- sized: edge cases that test_length.py leaves out ---------------------------------------------------------------


def test_sized_edge_cases():
    """An empty training set counts as one image (no division by zero; then max_epochs bounds it); without
    max_epochs there is no upper bound; images < 1 and min_epochs < 1 are refused; the config is not changed in
    place. Guards against a crash on empty data and against a silent default bound."""
    o = OptimConfig(epochs=10, warmup_epochs=2, images=1000, max_epochs=50)
    assert sized(o, 0).epochs == 50
    assert sized(OptimConfig(epochs=10, warmup_epochs=2, images=1000), 10).epochs == 100
    assert sized(OptimConfig(epochs=10, warmup_epochs=2, images=1000), 10).warmup_epochs == 20
    assert (o.epochs, o.warmup_epochs) == (10, 2)
    for bad in (OptimConfig(images=0), OptimConfig(images=100, min_epochs=0)):
        with pytest.raises(GlitError, match="images must be positive"):
            sized(bad, 10)


# -- the EMA of the weights -----------------------------------------------------------------------------------------


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()


def test_ema_after_k_updates_is_the_closed_form():
    """After updates with decay d from weights w_1..w_k, the EMA is d^k e_0 + sum_t (1 - d) d^(k - t) w_t, and the
    model is untouched. Guards against d and 1 - d swapped, against an EMA that resets to the model, and against
    an update that writes into the model."""
    model, d = _net(), 0.8
    ema = copy.deepcopy(model).requires_grad_(False)
    start = [p.detach().clone() for p in ema.parameters()]
    gen = torch.Generator().manual_seed(1)
    history = []
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype))
        history.append([p.detach().clone() for p in model.parameters()])
        update_ema(ema, model, d)
        assert all(torch.equal(p, w) for p, w in zip(model.parameters(), history[-1]))
    k = len(history)
    for i, e in enumerate(ema.parameters()):
        expected = d**k * start[i] + sum((1 - d) * d ** (k - t) * history[t - 1][i] for t in range(1, k + 1))
        torch.testing.assert_close(e, expected, rtol=1e-12, atol=1e-12)


def test_ema_copies_the_buffers():
    """The docstring's rule: BatchNorm statistics (and the integer batch count) are copied, not averaged. Guards
    against averaging them (or failing on the integer buffer) and against leaving them at their start."""
    model = _net().train()
    ema = copy.deepcopy(model).requires_grad_(False)
    model(torch.randn(5, 3, dtype=torch.float64) * 3 + 2)
    model(torch.randn(5, 3, dtype=torch.float64) * 3 + 2)
    update_ema(ema, model, 0.9)
    for name, b in model.named_buffers():
        assert torch.equal(dict(ema.named_buffers())[name], b), name
    assert int(ema[1].num_batches_tracked) == 2 and not torch.equal(ema[1].running_mean, torch.zeros(4))


class _Batches:
    """Two fixed batches of the demo family, with the ``sampler.set_epoch`` that the training loop calls."""

    def __init__(self):
        self.sampler = SimpleNamespace(set_epoch=lambda epoch: None)
        gen = torch.Generator().manual_seed(2)
        self.batches = [(torch.randn(4, 3, 8, 8, generator=gen), torch.randint(0, 10, (4,), generator=gen))
                        for _ in range(2)]

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


@pytest.mark.parametrize("decay", [0.0, 0.7])
def test_fit_evaluates_the_ema_weights(tmp_path, decay):
    """``fit`` with ``ema`` set hands evaluation the EMA model, whose weights after two steps are d^2 w_0 +
    (1 - d) d w_1 + (1 - d) w_2 of the trained weights w_t after t steps, and saves them as the checkpoint's "ema";
    with ``ema`` 0 it hands over the trained model itself. Guards against evaluating the trained weights while an EMA
    is kept, against an EMA updated other than once per step, and against saving another model's weights as "ema"."""
    model = glit.build_model(deit(DEMO), generator=torch.Generator().manual_seed(0))
    o = OptimConfig(epochs=1, batch_size=4, lr=1.0, warmup_epochs=0, min_lr=0.0, ema=decay)
    seen = []  # the weights that each training forward sees: w_0 at step 1, w_1 at step 2

    def snapshot(m, args):
        if m.training:
            seen.append({k: v.clone() for k, v in m.state_dict().items()})

    model.register_forward_pre_hook(snapshot)
    handed = []

    def evaluate_fn(m):
        handed.append((m, {k: v.clone() for k, v in m.state_dict().items()}))
        return {"top1": 0.0, "loss": 0.0}

    fit(model, Config(), o, _Batches(), tmp_path, Dist(), evaluate_fn=evaluate_fn,
        payload={"kind": "model", "arch": deit(DEMO).to_dict()}, num_classes=10)
    (evaluated, state), = handed
    checkpoint = load_checkpoint(tmp_path / "checkpoint.pt")
    if not decay:
        assert evaluated is model and checkpoint["ema"] is None
        return
    assert evaluated is not model
    (w0, w1), w2 = seen, model.state_dict()
    assert not torch.equal(w1["head.weight"], w0["head.weight"])
    assert not torch.equal(w2["head.weight"], w1["head.weight"])
    params = dict(model.named_parameters())
    for key, value in state.items():
        assert torch.equal(checkpoint["ema"][key], value), key
        if key in params:
            expected = decay**2 * w0[key] + (1 - decay) * decay * w1[key] + (1 - decay) * w2[key]
            torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-7)
    assert not torch.equal(state["head.weight"], w2["head.weight"])
