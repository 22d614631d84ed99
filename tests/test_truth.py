"""``glit truth``: the stratified sample, truth.jsonl, resuming after SIGKILL, extending, and parallel workers."""

import fcntl
import json
import random
import shutil
import time
from collections import Counter

import pytest

from glit import Arch, cost
from glit.config import load_config
from glit.health.sample import CYCLE, global_band, stratified_sample
from glit.presets import deit, level1_part, space_preset
from glit.recipes.truth import sample
from helpers import assert_one_line_error, kill_when_exists, run_glit, torchrun

TINY = ("--set", "train.epochs=2", "--set", "train.batch_size=64", "--set", "data.search_size=200")
KEYS = {"arch", "params", "macs", "seed", "top1", "train_seconds", "glit"}


def rows(out):
    return [json.loads(line) for line in (out / "truth.jsonl").read_text().splitlines()]


def truth(out, *args, timeout=300):
    return run_glit("truth", "demo", "--out", out, "--jobs", "1", "--threads", "1", *TINY, *args, timeout=timeout)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    out = tmp_path_factory.mktemp("truth") / "t"
    proc = truth(out, "--archs", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_truth_writes_one_line_per_training_with_the_contract_keys(three):
    out, proc = three
    lines = rows(out)
    assert [r["index"] for r in lines] == [0, 1, 2] and {r["seed"] for r in lines} == {0}
    for r in lines:
        assert KEYS <= r.keys()
        arch = Arch.from_dict(r["arch"])
        assert (r["params"], r["macs"]) == (cost(arch).params, cost(arch).macs)
        assert 0 <= r["top1"] <= 100 and r["train_seconds"] > 0 and r["glit"].startswith("0.1.0")
        result = json.loads((out / "runs" / f"a{r['index']:03d}-s0" / "result.json").read_text())
        assert result["top1"] == r["top1"]  # the test-split top-1 that glit train reports
    assert [r["stratum"] for r in lines] == ["deit", "all-local", "level1/few"]
    assert Arch.from_dict(lines[0]["arch"]) == deit(Arch.from_dict(lines[0]["arch"]).family)
    assert all(b["num_global_heads"] == 0 for b in lines[1]["arch"]["blocks"])
    assert "truth.jsonl" in proc.stdout and "[3/3]" in proc.stdout


def test_extending_archs_and_seeds_trains_only_the_new_jobs(three, tmp_path):
    out, _ = three
    ext = tmp_path / "t"
    shutil.copytree(out, ext)
    before = {f.parent.name: f.stat().st_mtime_ns for f in (ext / "runs").glob("*/row.json")}
    proc = truth(ext, "--archs", "4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = truth(ext, "--archs", "2", "--seeds", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = rows(ext)
    assert [(r["seed"], r["index"]) for r in lines] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)]
    assert lines[:3] == rows(out)  # the old lines, unchanged
    after = {f.parent.name: f.stat().st_mtime_ns for f in (ext / "runs").glob("*/row.json")}
    assert all(after[name] == t for name, t in before.items())  # never retrained
    members = json.loads((ext / "sample.json").read_text())["members"]
    assert len(members) == 4 and [m["arch"] for m in members[:3]] == [r["arch"] for r in lines[:3]]
    assert lines[4]["arch"] == lines[0]["arch"] and lines[4]["top1"] != lines[0]["top1"]  # another seed


def test_truth_resumes_after_sigkill_without_retraining_finished_members(three, tmp_path):
    out, _ = three
    killed = tmp_path / "killed"
    # Kill while the second training runs (its first epoch checkpoint exists), after the first finished.
    kill_when_exists(["truth", "demo", "--out", killed, "--archs", "3", "--jobs", "1", "--threads", "1", *TINY],
                     killed / "runs" / "a001-s0" / "checkpoint.pt")
    first = killed / "runs" / "a000-s0" / "row.json"
    assert first.exists() and not (killed / "runs" / "a001-s0" / "row.json").exists()
    _assert_released(killed / "runs" / "a001-s0.lock")  # the worker died with the command: no orphan training
    stamp = first.stat().st_mtime_ns
    proc = truth(killed, "--archs", "3")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert first.stat().st_mtime_ns == stamp
    log = (killed / "runs" / "a000-s0" / "log.txt").read_text()
    assert log.count("train epoch 1/2") == 1  # trained once
    strip = [{k: v for k, v in r.items() if k not in ("train_seconds", "glit")} for r in rows(killed)]
    assert strip == [{k: v for k, v in r.items() if k not in ("train_seconds", "glit")} for r in rows(out)]


def _assert_released(lock, timeout=10.0):
    deadline = time.monotonic() + timeout
    with open(lock, "a") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{lock} is still held: a worker outlived the command"
                time.sleep(0.1)


def test_two_workers_share_the_jobs_and_train_each_once(three, tmp_path):
    out, _ = three
    both = tmp_path / "both"
    proc = run_glit("truth", "demo", "--out", both, "--archs", "3", "--jobs", "2", "--threads", "1", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    strip = [{k: v for k, v in r.items() if k not in ("train_seconds", "glit")} for r in rows(both)]
    assert strip == [{k: v for k, v in r.items() if k not in ("train_seconds", "glit")} for r in rows(out)]
    for name in ("a000-s0", "a001-s0", "a002-s0"):
        assert (both / "runs" / name / "log.txt").read_text().count("train epoch 1/2") == 1


def test_the_sample_is_stratified_and_prefix_stable():
    cfg = load_config("cifar")
    big = sample(cfg, 10, 2 + 2 * len(CYCLE))
    assert sample(cfg, 10, 9) == big[:9]
    whole = space_preset("cifar", 2)
    level1 = level1_part("cifar", whole)
    budget = cost(deit(whole.family)).macs
    assert len({m.arch for m in big}) == len(big)
    assert all(cost(m.arch).macs <= budget and whole.contains(m.arch) for m in big)
    for m in big[2:]:
        kind, band, *_ = m.stratum.split("/")
        assert global_band(m.arch) == band
        assert kind == "whole" or level1.contains(m.arch)
    cells = ["/".join(x for x in cell if x) for cell in CYCLE]
    assert Counter(m.stratum for m in big[2:]) == Counter(cells * 2)  # two whole cycles: every cell, as often
    lighter = [cost(m.arch).macs for m in big if m.stratum.endswith("lighter")]
    heavier = [cost(m.arch).macs for m in big if m.stratum.endswith("heavier")]
    assert max(lighter) < min(heavier)


def test_the_uniform_sample_is_distinct_under_the_budget_prefix_stable_and_seeded():
    cfg = load_config("cifar")
    big = sample(cfg, 10, 16, "uniform", 1)
    whole = space_preset("cifar", 2)
    budget = cost(deit(whole.family)).macs
    assert sample(cfg, 10, 5, "uniform", 1) == big[:5]
    assert len({m.arch for m in big}) == 16 and {m.stratum for m in big} == {"uniform"}
    assert all(cost(m.arch).macs <= budget and whole.contains(m.arch) for m in big)
    assert sample(cfg, 10, 16, "uniform", 2) != big  # another seed, another sample
    stratified = {m.arch for m in sample(cfg, 10, 16)}
    assert not stratified & {m.arch for m in big}  # not the stratified sample


def test_a_folder_holding_another_kind_of_sample_is_refused(three, tmp_path):
    out = tmp_path / "t"
    shutil.copytree(three[0], out)
    before = (out / "truth.jsonl").read_text()
    proc = truth(out, "--archs", "3", "--sample", "uniform", "--sample-seed", "1")
    assert_one_line_error(proc, "sample.json", "stratified", "uniform")
    assert (out / "truth.jsonl").read_text() == before


def test_an_empty_cell_falls_back_to_its_kind():
    space = space_preset("demo", 2)
    level1 = level1_part("demo", space)
    never_many = lambda a: global_band(a) != "many"  # noqa: E731  (a budget that empties the "many" band)
    members = stratified_sample(space, level1, [], never_many, lambda a: cost(a).macs, 6, max_tries=2000)
    assert [m.stratum for m in members] == ["level1/few", "whole/few/lighter", "level1/mixed", "whole/mixed/heavier",
                                            "level1/any", "whole/any"]
    assert all(never_many(m.arch) for m in members)


def test_bad_truth_input_is_a_one_line_error(tmp_path):
    assert_one_line_error(truth(tmp_path / "a", "--archs", "0"), "--archs")
    assert_one_line_error(truth(tmp_path / "b", "--seeds", "0,x"), "--seeds", "0,x")
    assert_one_line_error(truth(tmp_path / "c", "--max-macs", "1K"), "impossible")
    for name in ("a", "b", "c"):
        assert not (tmp_path / name).exists()  # nothing written


def test_truth_random_draws_do_not_depend_on_the_global_rng():
    cfg = load_config("demo")
    random.seed(1)
    a = sample(cfg, 10, 8)
    random.seed(2)
    assert sample(cfg, 10, 8) == a


def test_under_torchrun_each_rank_trains_its_own_models(three, tmp_path):
    out, _ = three
    ranks = tmp_path / "ranks"
    proc = torchrun("-m", "glit", "truth", "demo", "--out", ranks, "--archs", "3", "--threads", "1", *TINY)
    assert proc.returncode == 0, proc.stderr[-3000:]
    strip = [{k: v for k, v in r.items() if k not in ("train_seconds", "glit")} for r in rows(ranks)]
    assert strip == [{k: v for k, v in r.items() if k not in ("train_seconds", "glit")} for r in rows(out)]
    for name in ("a000-s0", "a001-s0", "a002-s0"):
        assert (ranks / "runs" / name / "log.txt").read_text().count("train epoch 1/2") == 1
    assert "3 trainings" in proc.stdout


def test_a_failed_training_is_reported_and_kept_out_of_the_truth(tmp_path):
    out = tmp_path / "nan"
    proc = run_glit("truth", "demo", "--out", out, "--archs", "1", "--jobs", "1", "--threads", "1",
                    "--set", "train.epochs=1", "--set", "train.lr=1e12")
    assert_one_line_error(proc, "1 training(s) failed (a000-s0)", "loss is nan")
    assert (out / "runs" / "a000-s0" / "failed.txt").exists() and rows(out) == []
