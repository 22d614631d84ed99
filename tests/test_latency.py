"""The latency table: it builds on this machine, predicts an architecture as the sum of its parts, checks itself
against end-to-end timings, and feeds the budget (a candidate over it is rejected; an impossible one is an error).
Accuracy is a benchmark's business (bench/RESULTS.md), not a test's: timings here only need to exist."""

import json
import math
import random

import pytest

import glit
from glit import Family, SearchSpace
from glit.recipes.latency import build_table, calibration_constant, check_table, measure_all, robust_median
from glit.search.budget import Budget
from glit.search.latency import LatencyTable, block_key
from glit.units import parse_ms
from helpers import assert_one_line_error, run_glit

FAMILY = Family(img_size=8, patch_size=2, embed_dim=24, num_heads=3, depth=2, num_classes=5)
SPACE = SearchSpace.uniform(FAMILY, num_global_heads=(0, 1, 3), qkv_ratio=(1,), mlp_ratio=(2, 4), conv_ratio=(1,),
                            kernel_size=(3,))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("lut") / "lut.json"
    return build_table(SPACE, out, batch=2, threads=1, calibration=2, warmup=1, repeats=2, rounds=3,
                       progress=False), out


def test_the_table_holds_every_block_of_the_space_and_what_it_was_measured_on(table):
    t, out = table
    assert set(t.blocks) == {block_key(o) for i in range(FAMILY.depth) for o in SPACE.block_options(i)}
    assert len(t.blocks) == 6 and all(v > 0 for v in t.blocks.values()) and t.stem_ms > 0 and t.head_ms > 0
    info = json.loads(out.read_text())["info"]
    assert info["batch"] == 2 and info["threads"] == 1 and info["dtype"] == "float32" and info["device"] == "cpu"
    assert info["torch"] and SearchSpace.from_dict(info["space"]) == SPACE
    assert LatencyTable.load(out).to_dict() == t.to_dict()


def test_a_prediction_is_the_sum_of_its_parts(table):
    t, _ = table
    arch = SPACE.sample(random.Random(0))
    parts = t.stem_ms + t.head_ms + t.constant_ms + sum(t.blocks[block_key(b)] for b in arch.blocks)
    assert t.predict(arch) == pytest.approx(parts)
    assert t.fastest(SPACE) == pytest.approx(min(t.predict(a) for a in (SPACE.sample(random.Random(s))
                                                                        for s in range(200))))
    other = glit.space_preset("demo", 1).sample(random.Random(0))
    with pytest.raises(glit.GlitError, match="built for another family"):
        t.predict(other)


def test_check_measures_architectures_end_to_end(table):
    t, _ = table
    result = check_table(t, SPACE, archs=3)
    assert len(result["rows"]) == 3 and 0 <= result["within_10pct"] <= 1 and result["rmse_ms"] >= 0
    assert all(r["measured_ms"] > 0 and r["predicted_ms"] > 0 for r in result["rows"])
    # the anchor, timed at build and again with the checked architectures, measures the machine's drift
    assert t.info["anchor_ms"] > 0 and result["drift"] > 0
    rows, drift = result["rows"], result["drift"]
    assert result["within_10pct"] == sum(abs(r["predicted_ms"] - r["measured_ms"]) <= 0.1 * r["measured_ms"]
                                         for r in rows) / len(rows)
    assert result["within_10pct_drift_corrected"] == sum(
        abs(r["predicted_ms"] * drift - r["measured_ms"]) <= 0.1 * r["measured_ms"] for r in rows) / len(rows)


def test_the_budget_rejects_a_candidate_over_its_predicted_latency(table):
    t, _ = table
    archs = sorted({SPACE.sample(random.Random(s)) for s in range(50)}, key=t.predict)
    limit = t.predict(archs[len(archs) // 2])
    budget = Budget(max_latency_ms=limit, latency=t)
    assert [budget(a) for a in archs] == [t.predict(a) <= limit for a in archs]
    assert any(budget(a) for a in archs) and not all(budget(a) for a in archs)
    with pytest.raises(glit.GlitError, match=r"impossible in this space: its fastest member takes"):
        Budget(max_latency_ms=t.fastest(SPACE) - 1.0, latency=t).check_feasible(SPACE)  # below it, whatever its sign
    with pytest.raises(glit.GlitError, match="needs a latency table"):
        Budget(max_latency_ms=3.0)


def test_times_parse_and_timing_is_robust():
    assert [parse_ms(x) for x in ("4ms", "0.5s", "250us", "3", 2)] == [4.0, 500.0, 0.25, 3.0, 2.0]
    for bad in ("fast", "-1ms", "0", "nan"):
        with pytest.raises(glit.GlitError, match="max_latency"):
            parse_ms(bad)
    calls = []
    assert measure_all([lambda: calls.append(1)], warmup=2, repeats=5, rounds=3)[0] >= 0 and len(calls) == 17
    assert math.isfinite(measure_all([lambda: None], warmup=0, repeats=1, rounds=1)[0])
    assert robust_median([1.0, 1.1, 0.9, 1.0, 50.0]) == 1.0  # a slow outlier is dropped


def test_the_calibration_constant_never_makes_a_prediction_negative(table):
    """The constant is the median gap between whole and parts, but on a loaded machine (parts timed slower than the
    whole) it may take off at most half of the fastest member's parts, so every prediction stays positive."""
    assert calibration_constant([0.3, -0.1, 0.2], 10.0) == 0.2
    assert calibration_constant([], 10.0) == 0.0
    assert calibration_constant([-40.0, -30.0, -35.0], 10.0) == -5.0  # a loaded build: clamped
    lut, _ = table
    parts = lut.fastest(SPACE) - lut.constant_ms  # the fastest member's parts alone
    assert lut.constant_ms >= -0.5 * parts
    loaded = LatencyTable(lut.family, lut.stem_ms, lut.head_ms, lut.blocks,
                          calibration_constant([-100 * parts] * 3, parts))
    assert min(loaded.predict(SPACE.sample(random.Random(s))) for s in range(20)) >= 0.5 * parts * (1 - 1e-9) > 0


def test_parts_are_timed_in_interleaved_rounds():
    """Every part is timed in every round, in bursts of ``repeats`` calls, so a slow moment of the machine is shared
    by all parts instead of landing on one."""
    calls = []
    fns = [lambda k=k: calls.append(k) for k in range(3)]
    times = measure_all(fns, warmup=1, repeats=2, rounds=4)
    assert len(times) == 3 and all(t >= 0 for t in times)
    timed = calls[3:]  # after one warm-up call each
    bursts = [timed[i:i + 2] for i in range(0, len(timed), 2)]
    assert all(b[0] == b[1] for b in bursts) and len(bursts) == 12
    rounds = [sorted(b[0] for b in bursts[r * 3:(r + 1) * 3]) for r in range(4)]
    assert rounds == [[0, 1, 2]] * 4  # each round times every part once


def test_bad_tables_and_flags_are_one_line_errors(tmp_path):
    (tmp_path / "bad.json").write_text("{]")
    assert_one_line_error(run_glit("latency", "check", "--lut", tmp_path / "bad.json"), "not a latency table")
    assert_one_line_error(run_glit("latency", "check", "--lut", tmp_path / "none.json"), "cannot read latency table")
    assert_one_line_error(run_glit("latency", "build", "demo"), "needs --out")
    assert_one_line_error(run_glit("run", "demo", "--out", tmp_path / "r", "--max-latency", "4ms"),
                          "search.max_latency needs search.latency_lut")
    assert not (tmp_path / "r" / "1-supernet").exists()


def test_a_run_under_a_latency_budget_records_and_plots_latency(tmp_path):
    """``glit run --max-latency``: every scored candidate within the predicted budget, each finalist's predicted and
    measured latency in the summary, and the report's search plot against predicted latency."""
    space = glit.space_preset("demo", 2)
    lut = tmp_path / "lut.json"
    table = build_table(space, lut, calibration=1, warmup=1, repeats=1, rounds=2, progress=False)
    limit = sorted(table.predict(space.sample(random.Random(s))) for s in range(100))[50]
    out = tmp_path / "run"
    proc = run_glit("run", "demo", "--out", out, "--max-latency", f"{limit}ms", "--lut", lut,
                    "--set", "supernet.optim.epochs=1", "--set", "search.level2_epochs=1", "--set", "train.epochs=1",
                    "--set", "search.population=4", "--set", "search.generations=1", "--set", "search.parents=2",
                    "--set", "search.mutations=2", "--set", "search.crossovers=2", "--set", "data.search_size=200",
                    "--set", "supernet.eval_archs=1", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for name in ("searched", "baseline", "random"):
        t = summary[name]["latency_ms"]
        assert t["predicted"] == pytest.approx(table.predict(glit.Arch.from_dict(summary[name]["arch"])))
        assert t["measured"] > 0
    assert summary["searched"]["latency_ms"]["predicted"] <= limit
    for folder in ("2-search", "5-search", "6-random/search"):
        rows = [json.loads(line) for line in (out / folder / "candidates.jsonl").read_text().splitlines()]
        assert rows and all(r["latency_ms"] <= limit for r in rows)
    report = (out / "report.html").read_text()
    assert "search score against predicted latency" in report and "ms measured" in report
