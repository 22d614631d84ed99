"""``--tensorboard``: every stage folder of a glit run gets event files whose scalars, read back with TensorBoard's
own reader, are its metrics.jsonl (and a search's best and mean per generation), once per step after a kill and a
resume; without the flag nothing is written."""

from __future__ import annotations

import json

import pytest

from helpers import kill_when_exists, run_glit
from test_run import TINY_RUN

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

RUN = (*TINY_RUN, "--set", "run.seeds=1", "--set", "search.level2_epochs=3")


def scalars(folder) -> dict[str, list[tuple[int, float]]]:
    acc = event_accumulator.EventAccumulator(str(folder / "tensorboard"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_a_killed_and_resumed_run_has_each_stages_metrics_once_in_tensorboard(tmp_path):
    out = tmp_path / "run"
    kill_when_exists(["run", "demo", "--out", out, *RUN, "--tensorboard"], out / "4-supernet" / "checkpoint.pt")
    done = run_glit("run", "demo", "--out", out, *RUN, "--tensorboard", timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    trained = sorted(p.parent for p in out.rglob("metrics.jsonl"))
    assert {p.relative_to(out).as_posix() for p in trained} >= {"1-supernet", "4-supernet", "6-random/supernet",
                                                                 "7-searched", "8-baseline", "9-random"}
    for folder in trained:
        lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        desc = "supernet" if "supernet" in folder.as_posix() else "train"
        got = scalars(folder)
        for key in ("loss", "lr", "images_per_s", "top1"):
            want = [(line["epoch"], line[key]) for line in lines if key in line]
            assert [s for s, _ in got[f"{desc}/{key}"]] == [s for s, _ in want], (folder, key)  # each step once
            assert [v for _, v in got[f"{desc}/{key}"]] == pytest.approx([v for _, v in want], rel=1e-6)
    assert [s for s, _ in scalars(out / "4-supernet")["supernet/loss"]] == [1, 2, 3]  # the stage that was killed
    for search in ("2-search", "5-search", "6-random/search"):
        rows = [json.loads(line) for line in (out / search / "candidates.jsonl").read_text().splitlines()]
        got = scalars(out / search)
        generations = sorted({r["generation"] for r in rows})
        assert [s for s, _ in got["search/best"]] == [g + 1 for g in generations]
        for (_, best), g in zip(got["search/best"], generations):
            assert best == pytest.approx(max(r["score"] for r in rows if r["generation"] <= g), rel=1e-6)


def test_without_the_flag_no_event_files_are_written(tmp_path):
    out = tmp_path / "sn"
    proc = run_glit("train-supernet", "--preset", "demo", "--level", "2", "--epochs", "1", "--out", out,
                    "--set", "supernet.optim.batch_size=64", "--set", "data.search_size=200")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (out / "tensorboard").exists()
