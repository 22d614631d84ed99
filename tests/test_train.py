"""Training (SPEC 1.5, 3.4, 3.5): the single-path supernet step and its masked AdamW update, BatchNorm
recalibration, and the real CLI: learning, output-folder rules, non-finite losses and `glit eval`.

Resumption and DDP are in test_resume_ddp.py; data and the sampler in test_data.py.
"""

from __future__ import annotations

import json
import pickle
import random
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from glit import Arch, BlockGenes, Supernet, cost
from glit.config import OptimConfig
from glit.data.mixup import soft_target_cross_entropy
from glit.presets import space_preset
from glit.train.bn import recalibrate_bn
from glit.train.optim import element_masked_step, element_step, lr_at, make_optimizer, masked_step, path_step, set_lr
from helpers import (
    SMALL_SUPERNET,
    SMALL_TRAIN,
    assert_one_line_error,
    block,
    demo_arch_file,
    load_ckpt,
    read_metrics,
    run_glit,
    torchrun,
)

# A short `glit train`: 300 training images (4 steps of 64 per epoch).
FAST_TRAIN = (*SMALL_TRAIN, "--set", "data.train_subset=300", "--set", "data.search_size=44")

# -- the supernet step: gradients and the masked update -----------------------------------------------------------

DEMO = space_preset("demo", 2)
# Partial use of every kind of sliced tensor: fewer heads, narrower qkv/FFN/conv, smaller kernels; block 2 has no
# global part (its attention is unused) and block 3 no local part.
PATH = Arch(DEMO.family, (
    BlockGenes(num_global_heads=1, qkv_ratio=0.5, mlp_ratio=2, conv_ratio=1, kernel_size=3),
    BlockGenes(num_global_heads=2, qkv_ratio=1, mlp_ratio=4, conv_ratio=2, kernel_size=5),
    BlockGenes(num_global_heads=0, qkv_ratio=None, mlp_ratio=2, conv_ratio=4, kernel_size=9),
    BlockGenes(num_global_heads=3, qkv_ratio=2, mlp_ratio=6, conv_ratio=None, kernel_size=None),
))


def demo_supernet() -> tuple[Supernet, torch.Tensor, torch.Tensor]:
    net = Supernet(DEMO, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    return net, torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)


def sliced_params(net: Supernet) -> set[nn.Parameter]:
    """The parameters of the sliceable layers (attention, local module, FFN); the rest is used by every path."""
    return {p for block in net.blocks for name in ("attn", "local", "mlp") if hasattr(block, name)
            for p in getattr(block, name).parameters()}


def backward(net, optimizer, arch, x, y) -> None:
    optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(net(x, arch), y).backward()


def test_path_gradient_stays_inside_the_masks_and_the_masks_count_the_path_params():
    assert DEMO.contains(PATH)
    net, x, y = demo_supernet()
    F.cross_entropy(net(x, PATH), y).backward()
    masks = net.path_masks(PATH)
    sliced = sliced_params(net)
    assert set(masks) <= sliced
    for p in sliced:
        if p in masks:
            assert p.grad is not None and masks[p].any()
            assert (p.grad[~masks[p]] == 0).all()
        else:  # a layer the path does not run at all
            assert p.grad is None or (p.grad == 0).all()
    always = [p for p in net.parameters() if p not in sliced]
    assert all(p.grad is not None for p in always)
    assert not masks[net.blocks[0].attn.qkv.weight].all() and not masks[net.blocks[0].local.dw.weight].all()
    counted = sum(int(m.sum()) for m in masks.values()) + sum(p.numel() for p in always)
    assert counted == cost(PATH).params == sum(p.numel() for p in net.extract(PATH).parameters())
    assert counted < sum(p.numel() for p in net.parameters())


def after_steps_on_other_paths():
    """A supernet and AdamW after 3 masked steps on other paths: moments are nonzero outside PATH's masks."""
    net, x, y = demo_supernet()
    optimizer = make_optimizer(net, OptimConfig(lr=1e-2, batch_size=512, weight_decay=0.05))
    # Every layer of every block at its widest (qkv 2, FFN 6, conv 4, kernel 9), so every tensor gets moments.
    wide = Arch(DEMO.family, tuple(block(1, 2, 6, 4, 9) for _ in range(DEMO.family.depth)))
    rng = random.Random(3)
    for other in (wide, DEMO.sample(rng), DEMO.sample(rng)):
        assert other != PATH
        backward(net, optimizer, other, x, y)
        masked_step(optimizer, net.path_masks(other), optimizer.step)
    return net, optimizer, x, y


def snapshot(net, optimizer) -> dict:
    return {p: [p.detach().clone()] + [optimizer.state[p][k].clone() for k in ("exp_avg", "exp_avg_sq")
                                       if k in optimizer.state.get(p, {})] for p in net.parameters()}


def current(p, optimizer) -> list[torch.Tensor]:
    return [p.detach()] + [optimizer.state[p][k] for k in ("exp_avg", "exp_avg_sq") if k in optimizer.state.get(p, {})]


def test_masked_step_changes_exactly_the_sampled_path():
    net, optimizer, x, y = after_steps_on_other_paths()
    masks = net.path_masks(PATH)
    assert any(optimizer.state[p]["exp_avg"][~m].abs().sum() > 0 for p, m in masks.items() if p in optimizer.state)
    before = snapshot(net, optimizer)
    backward(net, optimizer, PATH, x, y)
    masked_step(optimizer, masks, optimizer.step)
    sliced = sliced_params(net)
    for p in net.parameters():
        old, new = before[p], current(p, optimizer)
        assert len(old) == len(new)
        if p in masks:
            for a, b in zip(old, new):
                assert torch.equal(a[~masks[p]], b[~masks[p]])  # weights and both moments, bit for bit
            assert not torch.equal(old[0][masks[p]], new[0][masks[p]])  # the path itself did move
        elif p in sliced:  # a layer the path does not run
            assert all(torch.equal(a, b) for a, b in zip(old, new))
        else:
            assert not torch.equal(old[0], new[0])


def test_the_in_place_path_update_is_the_masked_update_bit_for_bit():
    """Training's default update (AdamW on views of the path) against the restore-what-is-off-the-path reference."""
    results = []
    for in_place in (False, True):
        net, optimizer, x, y = after_steps_on_other_paths()
        backward(net, optimizer, PATH, x, y)
        if in_place:
            views = net.path_views(PATH)
            masks = net.path_masks(PATH)
            assert set(views) == {p for p, m in masks.items() if not m.all()}  # the parameters used in part
            for p, view in views.items():  # each view holds exactly the masked elements, in storage order
                assert torch.equal(view(p.detach()).flatten(), p.detach()[masks[p]])
            path_step(optimizer, views, optimizer.step)
            assert all(p.grad is not None for p in views)  # the gradients are given back
        else:
            masked_step(optimizer, net.path_masks(PATH), optimizer.step)
        steps = [float(optimizer.state[p]["step"]) for p in net.parameters() if p in optimizer.state]
        results.append((list(snapshot(net, optimizer).values()), steps))
    (reference, reference_steps), (in_place, in_place_steps) = results
    assert in_place_steps == reference_steps  # AdamW's per-tensor step counts, for the bias correction
    for a, b in zip(reference, in_place, strict=True):  # per parameter: weight and both moments, bit for bit
        assert len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b))


def test_per_element_counts_give_each_element_the_adamw_of_its_own_gradients():
    """supernet.adam_step=element: after steps on several paths (with a changing lr), every element of every sliced
    parameter equals a plain torch AdamW run on that element alone, fed only the gradients of the steps that used
    it, at those steps' learning rates. Elements no path used are untouched."""
    torch.manual_seed(0)
    net, x, y = demo_supernet()
    net = net.double()
    x = x.double()
    o = OptimConfig(lr=2e-2, batch_size=512, weight_decay=0.05, warmup_epochs=1, epochs=2, min_lr=1e-4)
    optimizer = make_optimizer(net, o)
    sliced = sliced_params(net)
    start = {p: p.detach().clone() for p in sliced}
    decay = {p: g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    rng = random.Random(5)
    paths = [PATH, DEMO.sample(rng), PATH, DEMO.sample(rng), DEMO.sample(rng), PATH, DEMO.sample(rng)]
    history = []  # per step: lr, and (mask, gradient) per sliced parameter the path used
    for t, arch in enumerate(paths):
        lr = lr_at(t, 4, o)
        set_lr(optimizer, lr)
        backward(net, optimizer, arch, x, y)
        masks = net.path_masks(arch)
        history.append((lr, {p: (masks[p].clone(), p.grad.clone()) for p in masks if p.grad is not None}))
        element_step(optimizer, net.path_views(arch, every=True), optimizer.step)
    assert len({len(steps) for steps in (h[1] for h in history)}) > 1  # the paths used different layers
    gen = torch.Generator().manual_seed(0)
    checked = rare = 0
    for p in sliced:
        used = sum(h[1][p][0].double() for h in history if p in h[1]) if any(p in h[1] for h in history) else None
        if used is None:
            assert p not in optimizer.state and torch.equal(p.detach(), start[p])
            continue
        assert torch.equal(optimizer.state[p]["step"], used)  # the counts: how often each element was on a path
        assert torch.equal(p.detach()[used == 0], start[p][used == 0])  # never used: never moved
        flat = used.flatten()
        picks = torch.randperm(flat.numel(), generator=gen)[:6].tolist() + [int(flat.argmin()), int(flat.argmax())]
        for i in picks:
            if flat[i] == 0:
                continue
            ref = nn.Parameter(start[p].flatten()[i:i + 1].clone())
            ref_opt = torch.optim.AdamW([ref], lr=1.0, weight_decay=decay[p], foreach=False)
            for lr, steps in history:
                if p in steps and steps[p][0].flatten()[i]:
                    set_lr(ref_opt, lr)
                    ref.grad = steps[p][1].flatten()[i:i + 1].clone()
                    ref_opt.step()
            state = optimizer.state[p]
            assert float(p.detach().flatten()[i]) == pytest.approx(float(ref.detach()), rel=1e-12, abs=1e-15)
            assert state["exp_avg"].flatten()[i] == pytest.approx(float(ref_opt.state[ref]["exp_avg"]), rel=1e-12)
            assert state["exp_avg_sq"].flatten()[i] == pytest.approx(float(ref_opt.state[ref]["exp_avg_sq"]),
                                                                     rel=1e-12)
            checked += 1
            rare += 0 < flat[i] < len(paths)
    assert checked > 100 and rare > 20  # elements used in some of the steps only: where the two counts differ


def test_per_element_counts_differ_from_per_tensor_counts_only_where_elements_missed_steps():
    """On a fresh optimiser every element has had as many updates as its tensor: the two updates agree; after steps
    on paths that skipped some elements, they differ exactly there. The union-of-paths form equals the view form."""
    results = {}
    for how in ("tensor", "element", "element-masked"):
        net, x, y = demo_supernet()
        optimizer = make_optimizer(net, OptimConfig(lr=1e-2, batch_size=512, weight_decay=0.05))
        for arch in (PATH, DEMO.sample(random.Random(1))):
            backward(net, optimizer, arch, x, y)
            if how == "tensor":
                path_step(optimizer, net.path_views(arch), optimizer.step)
            elif how == "element":
                element_step(optimizer, net.path_views(arch, every=True), optimizer.step)
            else:
                element_masked_step(optimizer, net.path_masks(arch), optimizer.step)
            if arch == PATH:
                results.setdefault("first", {})[how] = [p.detach().clone() for p in net.parameters()]
        results[how] = [p.detach().clone() for p in net.parameters()]
    first = results["first"]
    close = lambda a, b: torch.allclose(a, b, rtol=1e-6, atol=1e-7)  # noqa: E731 (a rounding apart)
    assert all(close(a, b) for a, b in zip(first["tensor"], first["element"]))
    assert all(torch.equal(a, b) for a, b in zip(results["element"], results["element-masked"]))
    assert not all(close(a, b) for a, b in zip(results["tensor"], results["element"]))


def test_a_per_tensor_checkpoint_continues_with_per_element_counts():
    net, x, y = demo_supernet()
    optimizer = make_optimizer(net, OptimConfig(lr=1e-2, batch_size=512))
    backward(net, optimizer, PATH, x, y)
    path_step(optimizer, net.path_views(PATH), optimizer.step)
    qkv = net.blocks[0].attn.qkv.weight
    assert optimizer.state[qkv]["step"].ndim == 0
    backward(net, optimizer, PATH, x, y)
    element_step(optimizer, net.path_views(PATH, every=True), optimizer.step)
    counts = optimizer.state[qkv]["step"]
    assert counts.shape == qkv.shape and set(counts.unique().tolist()) == {1.0, 2.0}  # 1 before, +1 on the path


def test_path_sampler_under_the_budget_and_by_global_heads_depends_only_on_seed_and_step():
    from glit.recipes.train_supernet import path_sampler
    from glit.search.budget import Budget

    budget = Budget(cost(DEMO.sample(random.Random(0))).macs)  # about half of the space meets it
    uniform = path_sampler(DEMO, 3)
    under = path_sampler(DEMO, 3, budget=budget)
    heads = path_sampler(DEMO, 3, sampling="heads")
    random.seed(1)
    first = [under(t) for t in range(40)]
    random.seed(2)
    assert [under(t) for t in range(40)] == first  # the global RNG plays no part
    assert all(budget(a) for a in first)
    for t in range(40):  # the first draw under the budget from the step's own RNG: the uniform draw when it fits
        if budget(uniform(t)):
            assert under(t) == uniform(t)
    assert sum(under(t) != uniform(t) for t in range(40)) > 5
    rng = random.Random("path:3:7")
    assert heads(7) == DEMO.sample_by_global_heads(rng)
    totals = {sum(b.num_global_heads for b in heads(t).blocks) for t in range(200)}
    assert totals == set(range(13))  # every total of global heads, the pure designs included


def test_without_the_mask_adamw_moves_weights_outside_the_path():
    """Why masking exists: the gradient is zero off the path, but AdamW's momentum and weight decay are not."""
    net, optimizer, x, y = after_steps_on_other_paths()
    masks = net.path_masks(PATH)
    before = snapshot(net, optimizer)
    backward(net, optimizer, PATH, x, y)
    optimizer.step()
    moved = [p for p, m in masks.items() if not torch.equal(before[p][0][~m], p.detach()[~m])]
    assert len(moved) >= len([p for p, m in masks.items() if not m.all()]) // 2


def test_supernet_masked_update_flag_changes_training(tmp_path):
    args = ["train-supernet", "--preset", "demo", "--level", "2", "--epochs", "1", *SMALL_SUPERNET]
    for flag in ("true", "false"):
        done = run_glit(*args, "--set", f"supernet.masked_update={flag}", "--out", tmp_path / flag)
        assert done.returncode == 0, done.stderr
    masked, plain = (load_ckpt(tmp_path / flag / "checkpoint.pt") for flag in ("true", "false"))
    assert [c["config"]["supernet"]["masked_update"] for c in (masked, plain)] == [True, False]
    assert read_metrics(tmp_path / "true")[0]["paths"] == read_metrics(tmp_path / "false")[0]["paths"]
    differ = [k for k, v in masked["model"].items() if not torch.equal(v, plain["model"][k])]
    assert any(".attn." in k or ".local." in k or ".mlp." in k for k in differ), differ


# -- BatchNorm recalibration -------------------------------------------------------------------------------------------


def test_recalibrate_bn_is_the_plain_average_of_per_batch_statistics():
    """Expected values come from the standalone model's local modules: capture each one's input, recompute the
    BatchNorm input by the SPEC's definition (pointwise, GLU, depthwise "same" conv), average per-batch statistics."""
    net = Supernet(DEMO, generator=torch.Generator().manual_seed(0)).double()
    g = torch.Generator().manual_seed(2)
    batches = [torch.randn(n, 3, 8, 8, generator=g, dtype=torch.float64) for n in (5, 9, 6)]  # unequal sizes
    for b in net.blocks:
        b.local.bn.running_mean.fill_(3.0)
        b.local.bn.running_var.fill_(7.0)

    standalone = net.extract(PATH).eval()
    captured = {i: [] for i, genes in enumerate(PATH.blocks) if genes.num_global_heads < DEMO.family.num_heads}
    for i in captured:
        local = standalone.blocks[i].local
        local.bn.train()  # batch statistics inside, everything else in eval mode, as recalibration runs
        local.register_forward_pre_hook(lambda m, args, i=i: captured[i].append(args[0]))
    with torch.no_grad():
        for x in batches:
            standalone(x)

    net.train()
    assert recalibrate_bn(net, PATH, iter(batches)) == len(batches)
    assert net.training and all(b.local.bn.momentum == 0.1 for b in net.blocks)
    for i, b in enumerate(net.blocks):
        bn = b.local.bn
        if i not in captured:  # reset, and untouched by the path
            assert (bn.running_mean == 0).all() and (bn.running_var == 1).all()
            continue
        local, genes = standalone.blocks[i].local, PATH.blocks[i]
        means, variances = [], []
        for h in captured[i]:  # (B, N, C_l)
            z = F.glu(F.linear(h, local.pw1.weight, local.pw1.bias), dim=-1).transpose(1, 2)
            z = F.conv1d(z, local.dw.weight, local.dw.bias, padding=genes.kernel_size // 2, groups=z.shape[1])
            means.append(z.mean(dim=(0, 2)))
            variances.append(z.var(dim=(0, 2), unbiased=True))
        hidden = len(means[0])
        torch.testing.assert_close(bn.running_mean[:hidden], torch.stack(means).mean(0), rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(bn.running_var[:hidden], torch.stack(variances).mean(0), rtol=1e-9, atol=1e-12)
        assert (bn.running_mean[hidden:] == 0).all() and (bn.running_var[hidden:] == 1).all()
        assert int(bn.num_batches_tracked) == len(batches)


# -- the CLI -----------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_training_with_the_demo_recipe_learns_digits(tmp_path):
    out = tmp_path / "out"
    done = run_glit("train", "--preset", "demo", "--arch", demo_arch_file(tmp_path / "arch.json"), "--out", out)
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    metrics = read_metrics(out)
    assert len(metrics) == result["epochs"] == 25  # the demo recipe on its own data
    assert result["top1"] == metrics[-1]["top1"] >= 95.0
    assert metrics[-1]["images"] == 359  # the held-out 20% of the 1,797 digits


def test_output_folder_rules(tmp_path):
    arch = demo_arch_file(tmp_path / "arch.json")
    args = ["train", "--preset", "demo", "--arch", arch, "--epochs", "1", *FAST_TRAIN]
    out = tmp_path / "new" / "out"
    done = run_glit(*args, "--out", out, "--resume")  # --resume with nothing to resume starts afresh
    assert done.returncode == 0, done.stderr
    assert load_ckpt(out / "checkpoint.pt")["epoch"] == 1
    first = (out / "checkpoint.pt").read_bytes()

    assert_one_line_error(run_glit(*args, "--out", out), str(out), "already holds a run", "--resume")
    line = assert_one_line_error(run_glit(*args, "--set", "train.lr=0.01", "--out", out), str(out))
    assert "train.lr" in line
    line = assert_one_line_error(run_glit(*args, "--set", "train.lrr=0.01", "--out", tmp_path / "other"), "train.lrr")
    assert "valid keys" in line and "train.lr," in line and "train.weight_decay" in line
    line = assert_one_line_error(run_glit(*args, "--set", "trian.lr=0.01", "--out", tmp_path / "other"), "trian")
    assert "train.lr," in line and "supernet.optim.batch_size" in line and "data.cache" in line
    assert not (tmp_path / "other").exists()
    assert (out / "checkpoint.pt").read_bytes() == first  # refused runs leave the folder alone

    # A run written before a key existed (its config.yaml lacks it) continues: the key reads as its default.
    config = out / "config.yaml"
    config.write_text(re.sub(r"\n  level1_supernet: fixed\n", "\n", config.read_text()))
    assert "level1_supernet" not in config.read_text()
    done = run_glit(*args, "--out", out, "--resume")
    assert done.returncode == 0, done.stderr
    assert (out / "checkpoint.pt").read_bytes() == first  # finished: nothing recomputed

    (tmp_path / "empty").mkdir()
    done = run_glit(*args, "--out", tmp_path / "empty", "--resume")
    assert done.returncode == 0, done.stderr
    assert load_ckpt(tmp_path / "empty" / "checkpoint.pt")["epoch"] == 1


def test_resume_onto_a_run_of_another_architecture_is_a_one_line_error(tmp_path):
    args = ["train", "--preset", "demo", "--epochs", "1", *FAST_TRAIN, "--out", tmp_path / "out"]
    assert run_glit(*args, "--arch", demo_arch_file(tmp_path / "a.json", seed=0)).returncode == 0
    other = run_glit(*args, "--arch", demo_arch_file(tmp_path / "b.json", seed=1), "--resume")
    assert_one_line_error(other, str(tmp_path / "out"))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    """A weight decay of 3000 at lr 1e-3 multiplies the decayed weights by -2 each step: activations overflow after
    some 20 steps, never in the first 4 (epoch 1), so the run fails in a later epoch after good ones."""
    out = tmp_path / "out"
    args = ["train", "--preset", "demo", "--arch", demo_arch_file(tmp_path / "arch.json"), "--epochs", "30",
            *FAST_TRAIN, "--set", "train.lr=8e-3", "--set", "train.min_lr=1e-3", "--set", "train.warmup_epochs=0",
            "--set", "train.weight_decay=3000", "--out", out]
    line = assert_one_line_error(run_glit(*args), "loss")
    assert re.search(r"\b(nan|inf)\b", line), line
    failed = int(re.search(r"epoch (\d+)", line).group(1))
    assert 2 <= failed < 30
    ckpt = load_ckpt(out / "checkpoint.pt")
    assert ckpt["epoch"] == failed - 1 == len(read_metrics(out))
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    kept = (out / "checkpoint.pt").read_bytes()

    again = assert_one_line_error(run_glit(*args, "--resume"), "loss")  # deterministic: the same step fails
    assert again == line
    assert (out / "checkpoint.pt").read_bytes() == kept
    assert len(read_metrics(out)) == failed - 1


def test_eval_reproduces_the_final_test_top1(tmp_path):
    out = tmp_path / "out"
    done = run_glit("train", "--preset", "demo", "--arch", demo_arch_file(tmp_path / "arch.json"), "--epochs", "3",
                    "--set", "train.warmup_epochs=0", "--out", out)
    assert done.returncode == 0, done.stderr
    final = read_metrics(out)[-1]
    assert final["top1"] > 20  # learned something, so agreement is not a coincidence of chance level

    # The training run evaluated in batches of train.batch_size (32): the same batches give the same float sums.
    evaluated = run_glit("eval", "--checkpoint", out / "checkpoint.pt", "--json", "--batch-size", "32")
    assert evaluated.returncode == 0, evaluated.stderr
    result = json.loads(evaluated.stdout)
    assert result["top1"] == final["top1"] and result["images"] == final["images"] and result["epoch"] == 3
    text = run_glit("eval", "--checkpoint", out / "checkpoint.pt")
    assert text.returncode == 0 and f"top-1 {final['top1']:.2f}%" in text.stdout
    ranks = torchrun("-m", "glit", "eval", "--checkpoint", out / "checkpoint.pt", "--json", "--batch-size", "32")
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    two = json.loads([line for line in ranks.stdout.splitlines() if line.startswith("{")][0])
    assert two["top1"] == final["top1"] and two["images"] == final["images"]  # sharded, counted once each


@pytest.mark.parametrize("kind", ["missing", "garbage", "truncated", "foreign-pickle"])
def test_eval_of_a_bad_checkpoint_is_a_one_line_error(tmp_path, kind):
    path = tmp_path / "checkpoint.pt"
    if kind == "garbage":
        path.write_bytes(b"not a checkpoint, just text\n" * 50)
    elif kind == "foreign-pickle":  # e.g. a results file another tool pickled
        path.write_bytes(pickle.dumps({"accuracy": 0.5}, protocol=4))
    elif kind == "truncated":
        torch.save({"kind": "model", "model": {"w": torch.zeros(1000)}}, path)
        path.write_bytes(path.read_bytes()[:1500])
    assert_one_line_error(run_glit("eval", "--checkpoint", path), str(path))


def test_train_metrics_keep_the_training_loss(tmp_path, monkeypatch):
    """The epoch's ``loss`` is the image-weighted mean of the loss of every training step, recomputed here from the
    logits and (mixed) targets each step saw, and the test split's loss is kept beside it as ``eval_loss``. Guards
    against a logged loss that is the evaluation's (overwritten by it), the last step's or the last sync window's
    (windows of 3 steps here, so the epoch's 4 steps span two), an undivided sum, or one that misses steps."""
    import glit.train.loop
    from glit.config import load_config
    from glit.recipes import evaluate_checkpoint, train

    seen = []  # (logits, targets) of every training step, as the loop passed them to its loss

    def recording(logits, targets):
        seen.append((logits.detach().double(), targets.detach().double()))
        return soft_target_cross_entropy(logits, targets)

    monkeypatch.setattr(glit.train.loop, "soft_target_cross_entropy", recording)
    monkeypatch.setattr(glit.train.loop, "SYNC_EVERY", 3)
    cfg = load_config("demo", None, ["train.epochs=1", "train.batch_size=64", "data.train_subset=300",
                                     "data.search_size=44"])
    train(cfg, Arch.from_json(demo_arch_file(tmp_path / "arch.json")), tmp_path / "out")
    (line,) = read_metrics(tmp_path / "out")

    assert len(seen) == 300 // 64  # every step of the epoch (the last, partial batch is dropped)
    losses = [-(targets * torch.log_softmax(logits, dim=-1)).sum(-1).mean().item() for logits, targets in seen]
    sizes = [len(logits) for logits, _ in seen]
    assert sizes == [64] * 4 and len(set(losses)) == 4
    assert line["loss"] == pytest.approx(sum(l * n for l, n in zip(losses, sizes)) / sum(sizes), rel=1e-6)
    test = evaluate_checkpoint(tmp_path / "out" / "checkpoint.pt", batch_size=64)
    assert line["eval_loss"] == pytest.approx(test["loss"], rel=1e-6)
    assert line["loss"] != pytest.approx(test["loss"], rel=1e-3)


def test_ema_weights_are_kept_and_evaluated(tmp_path):
    from glit.config import load_config
    from glit.recipes import evaluate_checkpoint, train

    cfg = load_config("demo", None, ["train.epochs=2", "train.batch_size=64", "data.train_subset=300",
                                     "data.search_size=44", "train.ema=0.9"])
    train(cfg, Arch.from_json(demo_arch_file(tmp_path / "arch.json")), tmp_path / "out")
    ckpt = load_ckpt(tmp_path / "out" / "checkpoint.pt")
    assert ckpt["ema"].keys() == ckpt["model"].keys()
    moved = [k for k in ckpt["model"] if not torch.equal(ckpt["ema"][k], ckpt["model"][k])]
    assert "head.weight" in moved  # the EMA lags the trained weights
    final = read_metrics(tmp_path / "out")[-1]
    assert evaluate_checkpoint(tmp_path / "out" / "checkpoint.pt", batch_size=64)["top1"] == final["top1"]
