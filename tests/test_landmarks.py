"""Landmark regularisation (``supernet.landmarks``, ``glit.train.landmarks``): one step equals its definition computed
by hand and moves exactly the union of its paths, the pairs depend only on the seed and the step, and the option
trains end to end from the CLI with clear errors on bad files."""

import copy
import json
import random

import torch
import torch.nn.functional as F

from glit.recipes.train_supernet import SupernetStep, union_masks
from glit.train.dist import Dist
from glit.train.landmarks import Landmarks, WithLandmarks
from glit.train.loop import train_one_epoch
from glit.train.optim import lr_at, make_optimizer, set_lr
from helpers import SMALL_SUPERNET, assert_one_line_error, demo_landmarks_file, load_ckpt, read_metrics, run_glit
from test_sandwich import NO_AUG, OPTIM, OneBatch, toy, update_by_hand_and_compare


def test_one_landmark_step_adds_the_hinge_of_the_pair_and_moves_only_their_paths(toy_space):
    net, x, y = toy(toy_space)
    by_hand = copy.deepcopy(net)
    rng = random.Random(0)
    path, good, bad = (toy_space.sample(rng) for _ in range(3))
    marks = Landmarks((good, bad), (70.0, 60.0), seed=0, every=1)
    assert marks.pair(0) == (good, bad)

    opt = make_optimizer(net, OPTIM)
    step = SupernetStep(OPTIM, NO_AUG, 5, 0, sample=lambda s: path, masked=True, landmarks=marks,
                        landmark_weight=2.0, landmark_margin=5.0)  # a margin this wide keeps the hinge active
    assert step.path(0) == WithLandmarks(path, good, bad)
    train_one_epoch(net, OneBatch([(x, y)]), opt, 0, step, Dist())

    opt2 = make_optimizer(by_hand, OPTIM)
    set_lr(opt2, lr_at(0, 1, OPTIM))
    by_hand.train()
    F.cross_entropy(by_hand(x, path).float(), y).backward()
    hinge = 2.0 * F.relu(5.0 + F.cross_entropy(by_hand(x, good).float(), y)
                         - F.cross_entropy(by_hand(x, bad).float(), y))
    assert hinge > 0
    hinge.backward()
    change = update_by_hand_and_compare(net, by_hand, opt2, (path, good, bad), toy_space)

    # The landmarks' own weights (those the sampled path does not use) moved too.
    path_masks = by_hand.path_masks(path)
    names = {p: name for name, p in by_hand.named_parameters()}
    landmark_only = {names[p]: m & ~path_masks[p] if p in path_masks else m
                     for p, m in union_masks([by_hand.path_masks(a) for a in (good, bad)]).items()}
    assert any(change[n][m].abs().sum() > 0 for n, m in landmark_only.items())


def test_pairs_depend_only_on_seed_and_step_and_put_the_better_first(toy_space):
    rng = random.Random(1)
    archs = tuple(toy_space.sample(rng) for _ in range(5))
    top1 = (50.0, 61.0, 55.0, 58.0, 52.0)
    a, b = Landmarks(archs, top1, 3, every=2), Landmarks(archs, top1, 3, every=2)
    random.seed(99)
    pairs = [a.pair(s) for s in range(40)]
    random.seed(7)  # the global RNG in another state: the pairs do not read it
    assert pairs == [b.pair(s) for s in range(40)]
    assert [a.pair(s) for s in reversed(range(40))] == pairs[::-1]  # nor any state of their own (resume mid-run)
    assert all(p is None for p in pairs[1::2])  # only every second step ranks a pair
    assert len({p for p in pairs[::2]}) > 3
    for better, worse in pairs[::2]:
        assert top1[archs.index(better)] > top1[archs.index(worse)]
    assert [Landmarks(archs, top1, 4, every=2).pair(s) for s in range(40)] != pairs


def test_landmarks_train_end_to_end_and_bad_files_are_one_line_errors(tmp_path):
    args = ["train-supernet", "--preset", "demo", "--level", "2", "--epochs", "1", *SMALL_SUPERNET]
    done = run_glit(*args, "--out", tmp_path / "plain")
    assert done.returncode == 0, done.stderr[-3000:]
    truth = demo_landmarks_file(tmp_path / "truth.jsonl")

    done = run_glit(*args, "--set", f"supernet.landmarks={truth}", "--set", "supernet.landmark_every=1",
                    "--out", tmp_path / "marks")
    assert done.returncode == 0, done.stderr[-3000:]
    plain, marks = load_ckpt(tmp_path / "plain" / "checkpoint.pt"), load_ckpt(tmp_path / "marks" / "checkpoint.pt")
    assert marks["config"]["supernet"]["landmarks"] == str(truth)
    assert read_metrics(tmp_path / "plain")[0]["paths"] != read_metrics(tmp_path / "marks")[0]["paths"]
    assert any(not torch.equal(v, plain["model"][k]) for k, v in marks["model"].items())

    missing = run_glit(*args, "--set", f"supernet.landmarks={tmp_path / 'nope.jsonl'}", "--out", tmp_path / "bad1")
    assert_one_line_error(missing, "supernet.landmarks", "nope.jsonl")
    one = demo_landmarks_file(tmp_path / "one.jsonl", n=1)
    assert_one_line_error(run_glit(*args, "--set", f"supernet.landmarks={one}", "--out", tmp_path / "bad2"),
                          "supernet.landmarks", "one.jsonl", "two architectures")
    other = demo_landmarks_file(tmp_path / "other.jsonl", n=2)
    rows = [json.loads(line) for line in other.read_text().splitlines()]
    for block in rows[0]["arch"]["blocks"]:
        block["mlp_ratio"] = 5  # the demo space allows 2, 4 and 6
    other.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert_one_line_error(run_glit(*args, "--set", f"supernet.landmarks={other}", "--out", tmp_path / "bad3"),
                          "supernet.landmarks", "other.jsonl", "outside")
    for bad in ("bad1", "bad2", "bad3"):  # nothing written: the file is read before the folder is touched
        assert not (tmp_path / bad / "config.yaml").exists()
