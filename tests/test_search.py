"""The real search, end to end through the CLI: a trained demo supernet, BN recalibration, scoring, outputs,
resume after SIGKILL, 2-process scoring, and the errors."""

import json
import random

import pytest

from glit import Arch, SearchSpace, cost
from glit.cost import extremes
from glit.presets import space_preset
from glit.recipes.latency import build_table
from glit.report import plots
from glit.search.latency import LatencyTable
from glit.units import parse_count
from helpers import SMALL_SUPERNET, assert_one_line_error, demo_arch_file, kill_when_exists, run_glit, torchrun

SMALL_SEARCH = ("--population", "6", "--generations", "3", "--set", "search.parents=3", "--set",
                "search.mutations=2", "--set", "search.crossovers=2", "--set", "search.bn_batches=2",
                "--set", "search.batch_size=100")


@pytest.fixture(scope="module")
def supernet(tmp_path_factory):
    """A level-1 demo supernet trained for 3 epochs (the same for every test of this module)."""
    out = tmp_path_factory.mktemp("supernet") / "sn"
    proc = run_glit("train-supernet", "--preset", "demo", "--epochs", "3", "--out", out, *SMALL_SUPERNET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def read_candidates(out):
    return [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]


def test_search_end_to_end_writes_every_output_and_best_profiles(supernet, tmp_path):
    out = tmp_path / "search"
    proc = run_glit("search", "--supernet", supernet, "--out", out, *SMALL_SEARCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_candidates(out)
    assert len(rows) == 18 and sorted({r["generation"] for r in rows}) == [0, 1, 2]
    archs = [Arch.from_dict(r["arch"]) for r in rows]
    assert len(set(archs)) == len(archs)  # no architecture scored twice
    space = space_preset("demo", 1)
    budget = cost(Arch.from_dict(json.loads((out / "result.json").read_text())["arch"])).macs
    for arch, row in zip(archs, rows):
        assert space.contains(arch)
        assert row["macs"] == cost(arch).macs and row["params"] == cost(arch).params
        assert 0 <= row["score"] <= 100
    assert budget <= json.loads((out / "result.json").read_text())["budget"]["max_macs"]
    best = Arch.from_json(out / "best.json")
    top = max(r["score"] for r in rows)
    assert best == min((a for a, r in zip(archs, rows) if r["score"] == top), key=lambda a: cost(a).macs)
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto and all(not any(o["score"] >= p["score"] and o["macs"] <= p["macs"] and o != p for o in rows)
                          for p in pareto)
    profile = run_glit("profile", "--arch", out / "best.json", "--json")
    assert profile.returncode == 0 and json.loads(profile.stdout)["params"] == cost(best).params
    assert len(json.loads((out / "topk.json").read_text())) == 5


def test_scores_are_real_accuracies_that_depend_on_the_path(supernet, tmp_path):
    out = tmp_path / "search"
    assert run_glit("search", "--supernet", supernet, "--out", out, *SMALL_SEARCH).returncode == 0
    scores = [r["score"] for r in read_candidates(out)]
    assert len(set(scores)) > 1  # inherited weights differ by path
    assert max(scores) > 20  # 3 epochs of supernet training beat chance (10%) on every good path


def test_random_strategy_and_budget_flags(supernet, tmp_path):
    out = tmp_path / "random"
    proc = run_glit("search", "--supernet", supernet, "--out", out, "--strategy", "random", "--max-macs", "1.8M",
                    *SMALL_SEARCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_candidates(out)
    assert len(rows) == 18
    assert all(r["macs"] <= parse_count("1.8M") for r in rows)


def test_random_search_scores_random_candidates_in_population_batches(supernet, tmp_path):
    out = tmp_path / "random"
    proc = run_glit("search", "--supernet", supernet, "--out", out, "--strategy", "random", *SMALL_SEARCH,
                    "--set", "search.random_candidates=8")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["generation"] for r in read_candidates(out)] == [0] * 6 + [1] * 2  # population 6, then the rest
    again = run_glit("search", "--supernet", supernet, "--out", out, "--strategy", "random", *SMALL_SEARCH,
                     "--set", "search.random_candidates=8", "--resume")
    assert again.returncode == 0 and len(read_candidates(out)) == 8  # finished: nothing more scored
    bad = run_glit("search", "--supernet", supernet, "--out", tmp_path / "bad", "--strategy", "random",
                   "--set", "search.random_candidates=-1")
    assert_one_line_error(bad, "search.random_candidates")
    assert not (tmp_path / "bad").exists()


def test_search_resumed_after_sigkill_equals_an_uninterrupted_search(supernet, tmp_path):
    args = ("--supernet", supernet, *SMALL_SEARCH, "--generations", "5")
    full = tmp_path / "full"
    assert run_glit("search", "--out", full, *args).returncode == 0
    cut = tmp_path / "cut"
    state = cut / "search_state.json"
    kill_when_exists(["search", "--out", cut, *args], state)
    assert json.loads(state.read_text())["generation"] < 5
    resumed = run_glit("search", "--out", cut, *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name in ("candidates.jsonl", "best.json", "pareto.json", "search_state.json", "topk.json"):
        assert (cut / name).read_text() == (full / name).read_text(), name


def test_two_process_search_equals_one_process(supernet, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert run_glit("search", "--supernet", supernet, "--out", one, *SMALL_SEARCH).returncode == 0
    proc = torchrun("-m", "glit", "search", "--supernet", supernet, "--out", two, *SMALL_SEARCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = read_candidates(one), read_candidates(two)
    assert [r["arch"] for r in a] == [r["arch"] for r in b]
    assert [r["score"] for r in a] == pytest.approx([r["score"] for r in b], abs=1e-9)


def test_impossible_budget_is_a_one_line_error(supernet, tmp_path):
    proc = run_glit("search", "--supernet", supernet, "--out", tmp_path / "s", "--max-macs", "1K")
    line = assert_one_line_error(proc, "impossible", "smallest member")
    assert "MACs" in line and "params" in line


def test_missing_or_wrong_checkpoint_is_a_one_line_error(tmp_path):
    assert_one_line_error(run_glit("search", "--supernet", tmp_path / "nowhere", "--out", tmp_path / "s"),
                          "nowhere", "not found")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert_one_line_error(run_glit("search", "--supernet", bad, "--out", tmp_path / "s2"), "bad.pt")
    model = tmp_path / "model"
    arch = demo_arch_file(tmp_path / "arch.json")
    proc = run_glit("train", "--preset", "demo", "--arch", arch, "--epochs", "1", "--out", model,
                    "--set", "train.batch_size=64")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_one_line_error(run_glit("search", "--supernet", model, "--out", tmp_path / "s3"), "not a supernet")


def test_level2_supernet_from_a_level1_search_with_warm_start(supernet, tmp_path):
    """The hierarchy by hand: level-1 search, level-2 supernet around its winner (warm-started), level-2 search."""
    s1 = tmp_path / "s1"
    assert run_glit("search", "--supernet", supernet, "--out", s1, *SMALL_SEARCH).returncode == 0
    level2 = tmp_path / "sn2"
    proc = run_glit("train-supernet", "--preset", "demo", "--distribution", s1 / "best.json", "--warm-start",
                    supernet, "--epochs", "1", "--out", level2, *SMALL_SUPERNET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s2 = tmp_path / "s2"
    assert run_glit("search", "--supernet", level2, "--out", s2, *SMALL_SEARCH).returncode == 0
    winner1, winner2 = Arch.from_json(s1 / "best.json"), Arch.from_json(s2 / "best.json")
    assert [b.num_global_heads for b in winner2.blocks] == [b.num_global_heads for b in winner1.blocks]
    details = {(b.qkv_ratio, b.mlp_ratio, b.conv_ratio, b.kernel_size) for r in read_candidates(s2)
               for b in Arch.from_dict(r["arch"]).blocks}
    assert len(details) > 1  # level 2 varies the details


def test_level1_search_on_a_whole_space_supernet(tmp_path):
    """``glit search --level1`` varies only the distribution of a supernet trained over the whole space."""
    whole = tmp_path / "sn"
    proc = run_glit("train-supernet", "--preset", "demo", "--level", "2", "--epochs", "1", "--out", whole,
                    *SMALL_SUPERNET)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "s"
    proc = run_glit("search", "--supernet", whole, "--level1", "--out", out, *SMALL_SEARCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    archs = [Arch.from_dict(r["arch"]) for r in read_candidates(out)]
    level1 = space_preset("demo", 1)
    assert len(archs) == 18 and all(level1.contains(a) for a in archs)
    assert len({tuple(b.num_global_heads for b in a.blocks) for a in archs}) > 1


def test_a_space_outside_the_supernets_is_an_error(supernet, tmp_path):
    from glit.errors import GlitError
    from glit.recipes.search import search, search_config, supernet_checkpoint

    ckpt, file = supernet_checkpoint(supernet)
    with pytest.raises(GlitError, match="the searched space is not part of the supernet's space"):
        search(search_config(ckpt, file), supernet, tmp_path / "s", space=space_preset("demo", 2))
    assert not (tmp_path / "s").exists()


def test_an_incumbent_is_scored_first_and_kept_unless_beaten_by_the_margin(supernet, tmp_path):
    incumbent = extremes(space_preset("demo", 1))[0]  # the cheapest member: rarely the best scored
    file = tmp_path / "incumbent.json"
    file.write_text(incumbent.to_json())
    answers = {}
    for margin in ("0", "1000"):
        out = tmp_path / f"margin{margin}"
        proc = run_glit("search", "--supernet", supernet, "--out", out, "--incumbent", file, *SMALL_SEARCH,
                        "--set", f"search.incumbent_margin={margin}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = read_candidates(out)
        assert Arch.from_dict(rows[0]["arch"]) == incumbent and rows[0]["generation"] == 0
        assert sum(Arch.from_dict(r["arch"]) == incumbent for r in rows) == 1
        result = json.loads((out / "result.json").read_text())
        answers[margin] = Arch.from_json(out / "best.json"), result["incumbent"], rows
        assert "incumbent kept" in proc.stdout or margin == "0" and "incumbent replaced" in proc.stdout
    best, info, rows = answers["0"]  # no margin: the best score wins, as without an incumbent
    top = json.loads((tmp_path / "margin0" / "topk.json").read_text())[0]
    assert best == Arch.from_dict(top["arch"]) and info["best_score"] == max(r["score"] for r in rows)
    assert info["kept"] == (best == incumbent) and info["margin_points"] == 0
    best, info, _ = answers["1000"]  # a margin no candidate can beat: the incumbent stays
    assert best == incumbent and info["kept"] and info["score"] == rows[0]["score"]


def test_bad_incumbent_is_a_one_line_error(supernet, tmp_path):
    outside = demo_arch_file(tmp_path / "level2.json", seed=4)  # level-2 details: outside the level-1 space
    proc = run_glit("search", "--supernet", supernet, "--out", tmp_path / "s", "--incumbent", outside)
    assert_one_line_error(proc, "incumbent", "outside the space")
    inside = tmp_path / "inside.json"
    inside.write_text(extremes(space_preset("demo", 1))[0].to_json())
    proc = run_glit("search", "--supernet", supernet, "--out", tmp_path / "r", "--incumbent", inside,
                    "--strategy", "random")
    assert_one_line_error(proc, "incumbent", "random")
    plain = tmp_path / "plain"
    assert run_glit("search", "--supernet", supernet, "--out", plain, *SMALL_SEARCH).returncode == 0
    before = (plain / "result.json").read_text()
    proc = run_glit("search", "--supernet", supernet, "--out", plain, "--incumbent", inside, "--resume",
                    *SMALL_SEARCH)
    assert_one_line_error(proc, "search_state.json", "without the incumbent")
    assert (plain / "result.json").read_text() == before


def test_eval_scores_one_supernet_path_after_recalibration(supernet, tmp_path):
    s = tmp_path / "s"
    assert run_glit("search", "--supernet", supernet, "--out", s, *SMALL_SEARCH).returncode == 0
    proc = run_glit("eval", "--checkpoint", supernet / "checkpoint.pt", "--arch", s / "best.json", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["images"] == 359 and result["top1"] > 20  # the digits test split; better than chance
    assert_one_line_error(run_glit("eval", "--checkpoint", supernet / "checkpoint.pt"), "pass --arch")


def test_a_latency_budget_is_checked_before_scoring(supernet, tmp_path):
    space = SearchSpace.from_dict(json.loads((supernet / "space.json").read_text()))
    lut = tmp_path / "lut.json"
    build_table(space, lut, calibration=1, warmup=1, repeats=2, rounds=3, progress=False)
    table = LatencyTable.load(lut)
    members = sorted({space.sample(random.Random(s)) for s in range(100)}, key=table.predict)
    limit = table.predict(members[len(members) // 2])
    out = tmp_path / "s"
    proc = run_glit("search", "--supernet", supernet, "--out", out, "--max-latency", f"{limit}ms", "--lut", lut,
                    "--max-macs", "inf", *SMALL_SEARCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_candidates(out)
    assert rows and all(r["latency_ms"] == table.predict(Arch.from_dict(r["arch"])) <= limit for r in rows)
    front = json.loads((out / "pareto.json").read_text())  # the front trades score against latency, not MACs
    assert front and all(not any(o["score"] >= p["score"] and o["latency_ms"] <= p["latency_ms"] and o != p
                                 for o in rows) for p in front)
    budget = json.loads((out / "result.json").read_text())["budget"]
    assert budget["max_latency_ms"] == limit and budget["latency_table"] == str(lut)
    assert plots.accuracy_vs_cost([], rows, [], front, limit, {}, x="latency_ms")  # plotted against latency
    assert plots.accuracy_vs_cost([], [{**r, "latency_ms": None} for r in rows], [], [], limit, {},
                                  x="latency_ms") is None  # without latencies there is nothing to plot
    proc = run_glit("search", "--supernet", supernet, "--out", tmp_path / "x", "--max-latency",
                    f"{table.fastest(space) / 2}ms", "--lut", lut)
    assert_one_line_error(proc, "impossible in this space: its fastest member takes")
