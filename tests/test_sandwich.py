"""The sandwich rule with in-place distillation (``supernet.sandwich``): one step equals its definition computed by
hand, it moves exactly the union of its paths, and the CLI option trains other weights than single-path sampling."""

import copy
import random

import pytest
import torch
import torch.nn.functional as F

from glit import SearchSpace, Supernet
from glit.config import AugConfig, OptimConfig
from glit.cost import cost, extremes
from glit.recipes.train_supernet import SupernetStep, path_sampler, union_masks
from glit.train.dist import Dist
from glit.train.loop import train_one_epoch
from glit.train.optim import lr_at, make_optimizer, masked_step, set_lr
from helpers import SMALL_SUPERNET, assert_one_line_error, load_ckpt, read_metrics, run_glit

NO_AUG = AugConfig(crop="none", flip=False, randaugment="", mixup=0.0, cutmix=0.0, label_smoothing=0.0, erasing=0.0,
                   repeated_aug=1)
OPTIM = OptimConfig(epochs=1, batch_size=8, lr=5e-2, warmup_epochs=0, drop_path=0.0, clip_grad=1.0)


class OneBatch(list):
    """The one batch of a one-step epoch, with the sampler hook that ``train_one_epoch`` calls."""

    class sampler:  # noqa: N801
        @staticmethod
        def set_epoch(epoch):
            pass


def toy(toy_space):
    torch.manual_seed(0)
    net = Supernet(toy_space, generator=torch.Generator().manual_seed(0)).double()
    x = torch.randn(8, 3, 16, 16, dtype=torch.float64)
    y = torch.randint(0, 5, (8,))
    return net, x, y


def test_one_sandwich_step_is_the_summed_gradient_with_in_place_distillation(toy_space):
    net, x, y = toy(toy_space)
    by_hand = copy.deepcopy(net)
    paths = path_sampler(toy_space, seed=0, sandwich=2)(0)
    smallest, largest = extremes(toy_space, "macs")
    assert paths[:2] == [largest, smallest] and len(paths) == 4
    assert all(cost(paths[0]).macs >= cost(p).macs >= cost(paths[1]).macs for p in paths[2:])

    opt = make_optimizer(net, OPTIM)
    step = SupernetStep(OPTIM, NO_AUG, 5, 0, sample=lambda s: paths, distill=True)
    train_one_epoch(net, OneBatch([(x, y)]), opt, 0, step, Dist())

    opt2 = make_optimizer(by_hand, OPTIM)
    set_lr(opt2, lr_at(0, 1, OPTIM))
    by_hand.train()
    teacher = by_hand(x, paths[0]).float()  # the loop takes the loss in float32, as under autocast
    F.cross_entropy(teacher, y).backward()
    soft = F.softmax(teacher.detach(), dim=-1)
    for path in paths[1:]:
        torch.sum(-soft * F.log_softmax(by_hand(x, path).float(), dim=-1), dim=-1).mean().backward()
    update_by_hand_and_compare(net, by_hand, opt2, paths, toy_space)


def update_by_hand_and_compare(net, by_hand, optimizer, paths, toy_space) -> dict:
    """Finish a step by hand on ``by_hand`` (its gradients already summed): clip, then AdamW on the union of
    ``paths``; assert that ``net`` (trained by the loop) matches it and that weights no path uses did not move.
    Returns ``net``'s state minus that of a fresh toy supernet's, per weight name."""
    torch.nn.utils.clip_grad_norm_(by_hand.parameters(), OPTIM.clip_grad)
    masks = union_masks([by_hand.path_masks(p) for p in paths])
    masked_step(optimizer, masks, optimizer.step)
    for (name, a), b in zip(net.state_dict().items(), by_hand.state_dict().values()):
        assert torch.allclose(a, b, rtol=0, atol=1e-12), name
    fresh = toy(toy_space)[0].state_dict()
    names = {p: name for name, p in by_hand.named_parameters()}
    for p, mask in masks.items():
        assert torch.equal(net.state_dict()[names[p]][~mask], fresh[names[p]][~mask]), names[p]
    return {name: net.state_dict()[name] - fresh[name] for name in names.values()}


def test_without_distillation_every_path_learns_the_labels(toy_space):
    net, x, y = toy(toy_space)
    paths = path_sampler(toy_space, seed=3, sandwich=1)(5)
    distilled, plain = copy.deepcopy(net), copy.deepcopy(net)
    for model, distill in ((distilled, True), (plain, False)):
        opt = make_optimizer(model, OPTIM)
        step = SupernetStep(OPTIM, NO_AUG, 5, 0, sample=lambda s: paths, distill=distill)
        train_one_epoch(model, OneBatch([(x, y)]), opt, 0, step, Dist())
    differ = [k for k, v in distilled.state_dict().items() if not torch.equal(v, plain.state_dict()[k])]
    assert differ  # the two rules give other weights


def test_the_sandwich_option_trains_end_to_end(tmp_path):
    args = ["train-supernet", "--preset", "demo", "--level", "2", "--epochs", "1", *SMALL_SUPERNET]
    for n in (0, 1):
        done = run_glit(*args, "--set", f"supernet.sandwich={n}", "--out", tmp_path / str(n))
        assert done.returncode == 0, done.stderr[-3000:]
    single, sandwich = (load_ckpt(tmp_path / n / "checkpoint.pt") for n in ("0", "1"))
    assert sandwich["config"]["supernet"]["sandwich"] == 1
    assert read_metrics(tmp_path / "0")[0]["paths"] != read_metrics(tmp_path / "1")[0]["paths"]
    assert any(not torch.equal(v, single["model"][k]) for k, v in sandwich["model"].items())
    bad = run_glit(*args, "--set", "supernet.sandwich=-1", "--out", tmp_path / "bad")
    assert_one_line_error(bad, "supernet.sandwich")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("seed", [0, 1])
def test_sandwich_paths_depend_only_on_seed_and_step(toy_space, seed):
    a, b = path_sampler(toy_space, seed, 2), path_sampler(toy_space, seed, 2)
    random.seed(99)
    assert [a(s) for s in range(5)] == [b(s) for s in range(5)]
    assert all(SearchSpace.contains(toy_space, p) for s in range(5) for p in a(s))
