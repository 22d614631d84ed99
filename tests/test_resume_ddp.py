"""Reproducibility end to end (SPEC 3.7): a killed and resumed run equals an uninterrupted one bit for bit, and a
2-process DDP run (gloo on loopback) trains the same paths as 1 process, with identical weights on every rank."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import (
    SMALL_SUPERNET,
    SMALL_TRAIN,
    WORKER,
    assert_identical,
    cli_env,
    demo_arch_file,
    demo_landmarks_file,
    kill_when_exists,
    load_ckpt,
    read_metrics,
    run_glit,
    torchrun,
    without_timings,
)


def kill_after_first_checkpoint(args: list, out: Path, timeout: float = 300) -> int:
    """Start ``glit ARGS``, SIGKILL it as soon as ``out/checkpoint.pt`` exists; the checkpoint's epoch."""
    kill_when_exists(args, out / "checkpoint.pt", timeout)
    return load_ckpt(out / "checkpoint.pt")["epoch"]


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-identical model, optimiser, RNG and config, and the same metrics apart from the timings."""
    ca, cb = load_ckpt(a / "checkpoint.pt"), load_ckpt(b / "checkpoint.pt")
    assert ca.keys() == cb.keys()
    assert ca["model"].keys() == cb["model"].keys()
    for name, tensor in ca["model"].items():
        assert torch.equal(tensor, cb["model"][name]), name
    assert_identical(ca["optimizer"], cb["optimizer"], "optimizer")
    for key in ca.keys() - {"metrics"}:
        assert_identical(ca[key], cb[key], key)
    assert without_timings(ca["metrics"]) == without_timings(cb["metrics"])
    assert without_timings(read_metrics(a)) == without_timings(read_metrics(b))


@pytest.mark.slow
@pytest.mark.parametrize("command", ["train-supernet", "train-supernet-options", "train"])
def test_a_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path, command):
    """Random crops (seeded per sample), drop path (the global torch RNG, restored from the checkpoint) and
    Mixup/CutMix (seeded by the step) are on, so that a resume which lost any random state would diverge."""
    epochs = 3
    if command == "train":
        args = ["train", "--preset", "demo", "--arch", demo_arch_file(tmp_path / "arch.json"), *SMALL_TRAIN,
                "--set", "train.drop_path=0.1", "--set", "aug.mixup=0.8", "--set", "aug.cutmix=1.0"]
    else:
        args = ["train-supernet", "--preset", "demo", "--level", "2", *SMALL_SUPERNET,
                "--set", "supernet.optim.drop_path=0.1"]
        if command == "train-supernet-options":  # per-element AdamW counts, paths balanced over the global heads and
            args += ["--set", "supernet.adam_step=element", "--set", "supernet.sampling=heads",  # under the budget,
                     "--set", "supernet.under_budget=true", "--set", "supernet.local_weights=per_heads",  # few-shot,
                     "--set", f"supernet.landmarks={demo_landmarks_file(tmp_path / 'marks.jsonl')}",  # landmarks
                     "--set", "supernet.landmark_every=2"]
    args += ["--set", "aug.crop=pad"]
    args += ["--epochs", epochs]
    whole, killed = tmp_path / "whole", tmp_path / "killed"

    done = run_glit(*args, "--out", whole)
    assert done.returncode == 0, done.stderr
    assert load_ckpt(whole / "checkpoint.pt")["epoch"] == epochs

    reached = kill_after_first_checkpoint([*args, "--out", killed], killed)
    assert 1 <= reached < epochs  # killed in the middle of the run
    assert not (killed / "metrics.jsonl").exists() or len(read_metrics(killed)) <= reached

    resumed = run_glit(*args, "--out", killed, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(whole, killed)
    assert len(read_metrics(killed)) == epochs


@pytest.mark.parametrize(("adam_step", "landmarks"), [("tensor", False), ("element", False), ("element", True)])
def test_ddp_supernet_ranks_train_the_same_paths_and_end_equal(tmp_path, adam_step, landmarks):
    """Every rank samples the same path at every step (the 1-process sequence), and the ranks' supernets, BatchNorm
    statistics included, are identical at the end; with landmarks, the same pairs too (they are in the paths)."""
    args = ["train-supernet", "--preset", "demo", "--level", "2", "--epochs", "1", *SMALL_SUPERNET,
            "--set", f"supernet.adam_step={adam_step}"]
    if landmarks:
        args += ["--set", f"supernet.landmarks={demo_landmarks_file(tmp_path / 'marks.jsonl')}",
                 "--set", "supernet.landmark_every=2"]
    ddp, one = tmp_path / "ddp", tmp_path / "one"
    two = torchrun(WORKER, *args, "--out", ddp, env=cli_env(GLIT_TEST_WEIGHTS=str(tmp_path / "w2")))
    assert two.returncode == 0, two.stderr[-3000:]
    alone = run_glit(*args, "--out", one)
    assert alone.returncode == 0, alone.stderr

    assert two.stdout.count("supernet: 1 epochs") == 1  # only rank 0 prints the summary
    paths = [line["paths"] for line in read_metrics(ddp)]
    assert all(len(p) == 2 and p[0] == p[1] for p in paths), paths
    assert [p[0] for p in paths] == [line["paths"][0] for line in read_metrics(one)]

    rank0, rank1 = (torch.load(tmp_path / "w2" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert any(name.endswith("bn.running_mean") for name in rank0)
    assert_identical(rank0, rank1, "rank 0 vs rank 1")
    assert_identical(rank0, load_ckpt(ddp / "checkpoint.pt")["model"], "rank 0 vs checkpoint")


@pytest.mark.parametrize("bucket", [1000, 2**22])
def test_overlapped_path_sync_equals_a_flat_all_reduce(tmp_path, bucket):
    """``GradSync`` sends only the path's elements, in buckets (many small ones, or one), as backward produces them.
    On every rank the result is the mean of the two ranks' own gradients (which differ: different images), and it
    equals one flat all-reduce of every gradient bit for bit."""
    proc = torchrun(Path(__file__).with_name("gradsync_worker.py"), bucket,
                    env=cli_env(GLIT_TEST_WEIGHTS=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"grads{r}.pt", weights_only=True) for r in (0, 1)]
    local = [r["local"] for r in ranks]
    assert local[0].keys() == local[1].keys() and any(name.startswith("blocks.") for name in local[0])
    assert any(not torch.equal(local[0][name], local[1][name]) for name in local[0])
    for grads in ranks:
        assert grads["flat"].keys() == grads["overlapped"].keys() == local[0].keys()
        for name, flat in grads["flat"].items():
            torch.testing.assert_close(flat, (local[0][name] + local[1][name]) / 2, rtol=0, atol=1e-7, msg=name)
            assert torch.equal(flat, grads["overlapped"][name]), name


def test_ddp_train_matches_one_process_with_the_same_global_batch(tmp_path):
    """An all-global architecture (no BatchNorm, whose statistics are per rank by design), per-sample seeded
    augmentation (random pad-and-crop), no Mixup/CutMix, no drop path: 2 processes with 32 images each equal
    1 process with 64."""
    from glit import build_model
    from glit.presets import SPACES, deit
    from glit.recipes.common import init_generator

    arch = tmp_path / "deit.json"
    arch.write_text(deit(SPACES["demo"].family).to_json())
    args = ["train", "--preset", "demo", "--arch", arch, "--epochs", "1", *SMALL_TRAIN, "--set", "train.drop_path=0",
            "--set", "aug.mixup=0", "--set", "aug.cutmix=0", "--set", "aug.repeated_aug=1", "--set", "aug.crop=pad"]
    two = torchrun(WORKER, *args, "--out", tmp_path / "ddp", env=cli_env(GLIT_TEST_WEIGHTS=str(tmp_path / "w2")))
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, WORKER, *map(str, args), "--out", tmp_path / "one"], capture_output=True,
                         text=True, env=cli_env(GLIT_TEST_WEIGHTS=str(tmp_path / "w1")), timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]

    rank0, rank1 = (torch.load(tmp_path / "w2" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert_identical(rank0, rank1, "rank 0 vs rank 1")
    single = torch.load(tmp_path / "w1" / "rank0.pt", weights_only=True)
    init = build_model(deit(SPACES["demo"].family), generator=init_generator(0)).state_dict()
    assert rank0.keys() == single.keys() == init.keys()
    for name, tensor in single.items():
        if name.endswith("attn.qkv.bias"):
            # Softmax ignores the key bias: its gradient is pure rounding noise, which AdamW scales up to lr-sized
            # steps. Compare it more loosely; the query and value biases as tightly as everything else.
            (q, k, v), (q1, k1, v1) = rank0[name].view(3, -1), tensor.view(3, -1)
            torch.testing.assert_close(torch.stack([q, v]), torch.stack([q1, v1]), atol=1e-5, rtol=0, msg=name)
            torch.testing.assert_close(k, k1, atol=1e-4, rtol=0, msg=name)
        else:
            torch.testing.assert_close(rank0[name], tensor, atol=1e-5, rtol=0, msg=name)
    assert (single["head.weight"] - init["head.weight"]).abs().max() > 1e-3  # training moved the weights

    (ddp_line,), (one_line,) = read_metrics(tmp_path / "ddp"), read_metrics(tmp_path / "one")
    assert ddp_line["paths"] == one_line["paths"] * 2
    assert ddp_line["loss"] == pytest.approx(one_line["loss"], rel=1e-4)
    assert abs(ddp_line["top1"] - one_line["top1"]) <= 100 / ddp_line["images"] + 1e-9  # at most one image flips
