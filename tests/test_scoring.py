"""The evaluators (glit.scoring): each runs through ``glit rank --evaluator`` on the demo preset, and each computes
what its paper defines, checked on cases whose answer is known."""

from __future__ import annotations

import json
import random

import pytest
import torch
from scipy import stats

import glit
from glit import cost
from glit.config import OptimConfig, load_config
from glit.presets import space_preset
from glit.scoring import EVALUATORS
from glit.scoring.finetune import finetune
from glit.scoring.proxies import dss, naswot, synflow
from glit.scoring.short import compressed
from glit.scoring.supernet import Batches
from helpers import SMALL_SUPERNET, run_glit

DEMO = space_preset("demo", 2)


@pytest.fixture(scope="module")
def ranked(tmp_path_factory):
    """A one-epoch demo supernet and a truth file of 6 of its architectures."""
    root = tmp_path_factory.mktemp("scoring")
    proc = run_glit("train-supernet", "--preset", "demo", "--level", "2", "--epochs", "1", "--out", root / "sn",
                    *SMALL_SUPERNET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rng = random.Random(0)
    archs = list(dict.fromkeys(DEMO.sample(rng) for _ in range(6)))
    truth = root / "truth.jsonl"
    truth.write_text("".join(json.dumps({"arch": a.to_dict(), "seed": 0, "top1": 50 + i}) + "\n"
                             for i, a in enumerate(archs)))
    return root / "sn", truth, archs


@pytest.mark.parametrize("evaluator", EVALUATORS)
def test_every_evaluator_ranks_the_demo_truth(ranked, evaluator):
    sn, truth, archs = ranked
    proc = run_glit("rank", "--supernet", sn, "--truth", truth, "--json", "--evaluator", evaluator,
                    "--set", "search.finetune_steps=3", *SMALL_SUPERNET[2:4])
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert r["evaluator"] == evaluator and r["n"] == len(archs) and r["cpu_seconds_per_arch"] > 0
    scores = [p["score"] for p in r["pairs"]]
    assert all(isinstance(s, float) for s in scores) and len(set(scores)) > 1  # the architectures differ
    assert r["kendall_tau"] == pytest.approx(stats.kendalltau(scores, [p["truth_top1"] for p in r["pairs"]]).statistic)
    if evaluator == "params":
        assert scores == [float(cost(glit.Arch.from_dict(p["arch"])).params) for p in r["pairs"]]
    if evaluator in ("short", "short-tse"):
        assert "tse" in r  # one run of trainings gives both figures, each architecture's TSE score kept
        assert [q["arch"] for q in r["tse"]["pairs"]] == [q["arch"] for q in r["pairs"]]
        tse = [q["score"] for q in r["tse"]["pairs"]]
        # minus one epoch's mean cross-entropy over 10 classes (about ln 10 at the start): negative, and higher for
        # the lower loss, so the round (the highest score wins) picks the candidate that trained fastest
        assert all(-10 < s < 0 for s in tse)
        # each step's loss is kept, and one epoch (search.short_epochs, 1) of equal batches (drop_last) averages to
        # the TSE figure: the same training read step by step, for TSE over part of the run (bench/tse_prefix.py)
        for q in r["tse"]["pairs"]:
            steps = q["step_losses"]
            assert len(steps) > 1 and all(0 < x < 10 for x in steps)
            assert -sum(steps) / len(steps) == pytest.approx(q["score"], rel=1e-5)
            quarter = len(steps) // 4  # in step order: training from scratch lowers the loss (not so if reordered)
            assert sum(steps[:quarter]) > sum(steps[-quarter:])
        if evaluator == "short-tse":
            assert scores == tse
    if evaluator in ("supernet", "finetune", "short"):
        assert all(0 <= s <= 100 for s in scores)


def test_finetune_lowers_the_training_loss_and_leaves_the_supernet_alone(ranked):
    sn, _, archs = ranked
    supernet = glit.Supernet(DEMO)
    state = {k: v.clone() for k, v in supernet.state_dict().items()}
    model = supernet.extract(archs[0])
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)
    losses = finetune(model, [(x, y)] * 30, OptimConfig(lr=0.01, batch_size=512), 0.0)
    assert len(losses) == 30 and losses[-1] < 0.5 * losses[0]  # it learns the batch
    assert all(torch.equal(v, state[k]) for k, v in supernet.state_dict().items())  # only the copy moved


def test_synflow_is_the_sum_of_abs_weight_times_gradient_of_the_all_ones_output():
    torch.manual_seed(0)
    arch = DEMO.sample(random.Random(1))
    model = glit.build_model(arch).double()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    score = synflow(model, x)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # signs restored
    by_hand = glit.build_model(arch).double()
    by_hand.load_state_dict({k: v.abs() if v.is_floating_point() else v for k, v in before.items()})
    by_hand.eval()(torch.ones(1, 3, 8, 8, dtype=torch.float64)).sum().backward()
    assert score == pytest.approx(sum((p * p.grad).abs().sum().item() for p in by_hand.parameters()), rel=1e-9)
    flipped = glit.build_model(arch).double()
    flipped.load_state_dict({k: -v if v.is_floating_point() and "running_var" not in k else v
                             for k, v in before.items()})
    assert synflow(flipped, x) == pytest.approx(score, rel=1e-9)  # signs play no part


def test_naswot_is_highest_when_the_images_are_told_apart():
    model = glit.build_model(DEMO.sample(random.Random(2)), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    distinct = torch.randn(8, 3, 8, 8, generator=g)
    near = distinct[:1] + 1e-3 * torch.randn(8, 3, 8, 8, generator=g)  # 8 near-copies of one image
    assert naswot(model, distinct) > naswot(model, near) + 5
    units = sum(17 * int(b.mlp_ratio * 48) for b in model.arch.blocks)  # per image: tokens x FFN hidden units
    assert naswot(model, distinct) <= 8 * torch.log(torch.tensor(float(units))).item() + 1e-6  # Hadamard: K_ii = units


def test_dss_is_attention_diversity_plus_the_other_blocks_saliency():
    arch = DEMO.sample(random.Random(3))
    assert any(0 < b.num_global_heads for b in arch.blocks) and any(b.num_global_heads < 3 for b in arch.blocks)
    model = glit.build_model(arch, generator=torch.Generator().manual_seed(0))
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    score = dss(model, x, y)
    assert all(p.grad is None for p in model.parameters())
    torch.nn.functional.cross_entropy(model.train()(x, None), y).backward()
    attn = other = 0.0
    for block in model.blocks:
        for name, p in block.named_parameters():
            if p.ndim >= 2:
                m = (p.grad * p).abs()
                if name.startswith("attn."):
                    attn += torch.linalg.svdvals(m.flatten(1).double()).sum().item()  # the nuclear norm
                else:
                    other += m.sum().item()
    assert attn > 0 and other > 0 and score == pytest.approx(attn + other, rel=1e-6)


def test_short_compresses_the_retraining_recipe():
    cfg = load_config("cifar")
    o = compressed(cfg, 2)
    assert (o.epochs, o.images, o.lr, o.batch_size) == (2, None, cfg.train.lr, cfg.train.batch_size)
    assert o.warmup_epochs == pytest.approx(cfg.train.warmup_epochs * 2 / cfg.train.epochs)


def test_batches_limit():
    loader = [(torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.long))] * 10
    assert len(list(Batches(loader, 4, torch.device("cpu")))) == 4
