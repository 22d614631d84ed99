"""``glit run`` end to end on a shrunken demo preset: every stage, summary.json, report.html, continuing after a
SIGKILL, the budget, and a changed config."""

import base64
import json
import random
import re
import shutil

import pytest
import yaml

from glit import Arch, SearchSpace, cost
from glit.presets import deit, space_preset
from glit.space import Family
from helpers import assert_one_line_error, kill_when_exists, run_glit

TINY_RUN = ("--set", "supernet.optim.epochs=2", "--set", "supernet.optim.batch_size=64",
            "--set", "supernet.eval_archs=1", "--set", "train.epochs=2", "--set", "train.batch_size=64",
            "--set", "search.population=4", "--set", "search.generations=2", "--set", "search.parents=2",
            "--set", "search.mutations=2", "--set", "search.crossovers=2", "--set", "search.topk=2",
            "--set", "data.search_size=200", "--set", "run.seeds=2",
            "--set", "search.level2_epochs=2", "--set", "search.finalists=0")
STAGES = ("1-supernet", "2-search", "3-pick", "4-supernet", "5-search", "6-random/supernet", "6-random/search",
          "7-searched", "8-baseline", "9-random")


def without_timings(summary: dict) -> dict:
    return {k: ({kk: vv for kk, vv in v.items() if kk != "train_seconds"} if isinstance(v, dict) else v)
            for k, v in summary.items() if k != "stage_seconds"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "demo"
    proc = run_glit("run", "demo", "--out", out, *TINY_RUN, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_every_stage_runs_and_the_summary_has_the_contract_keys(finished):
    out, proc = finished
    for stage in STAGES:
        assert (out / stage).is_dir(), stage
    summary = json.loads((out / "summary.json").read_text())
    budget = cost(deit(Family(img_size=8, patch_size=2, embed_dim=48, num_heads=3, depth=4, num_classes=10))).macs
    assert summary["budget_macs"] == budget
    for name in ("searched", "baseline", "random"):
        row = summary[name]
        assert {"arch", "params", "macs", "top1"} <= row.keys()
        arch = Arch.from_dict(row["arch"])
        assert row["params"] == cost(arch).params and row["macs"] == cost(arch).macs
        assert 0 <= row["top1"] <= 100
        result = json.loads((out / STAGES[7 + ("searched", "baseline", "random").index(name)] / "result.json")
                            .read_text())
        assert result["top1"] == row["top1_seeds"][0]  # the test split, as retrained (seed 0; see run.seeds below)
    assert Arch.from_dict(summary["baseline"]["arch"]) == deit(Arch.from_dict(summary["baseline"]["arch"]).family)
    assert "searched" in proc.stdout and "baseline" in proc.stdout and "random" in proc.stdout


def test_the_summary_states_each_comparison_with_its_paired_verdict_over_seeds(finished):
    """run.seeds=2: each finalist retrained with seeds 0 and 1; the comparisons pool both seeds' disagreements."""
    out, proc = finished
    summary = json.loads((out / "summary.json").read_text())
    for name, stage in zip(("searched", "baseline", "random"), STAGES[7:]):
        tops = [json.loads((out / folder / "result.json").read_text())["top1"] for folder in (stage, f"{stage}-seed1")]
        assert summary[name]["seeds"] == [0, 1] and summary[name]["top1_seeds"] == tops
        assert summary[name]["top1"] == pytest.approx(sum(tops) / 2)
        assert summary[name]["top1_std"] == pytest.approx(abs(tops[0] - tops[1]) / 2 ** 0.5)
        seed1 = yaml.safe_load((out / f"{stage}-seed1" / "config.yaml").read_text())
        assert seed1["seed"] == 1
    for key, other in (("vs_baseline", "baseline"), ("vs_random", "random")):
        c = summary["comparisons"][key]
        assert c["difference"] == pytest.approx(summary["searched"]["top1"] - summary[other]["top1"])
        assert c["ci95"][0] <= c["difference"] <= c["ci95"][1] and 0 <= c["p_value"] <= 1
        assert c["verdict"] in ("better", "worse", "no difference detected") and c["seeds"] == 2
        only_a = only_b = images = 0
        for suffix in ("", "-seed1"):
            stage = STAGES[8 if other == "baseline" else 9]
            a = json.loads((out / f"7-searched{suffix}" / "predictions.json").read_text())["correct"]
            b = json.loads((out / f"{stage}{suffix}" / "predictions.json").read_text())["correct"]
            pairs = list(zip(a, b))
            only_a, only_b, images = only_a + pairs.count(("1", "0")), only_b + pairs.count(("0", "1")), images + len(a)
        assert (c["only_a"], c["only_b"], c["images"]) == (only_a, only_b, images) and images == 2 * 359
        assert sum(c["difference_per_seed"]) / 2 == pytest.approx(c["difference"])
    last = proc.stdout.splitlines()[-3:]  # the verdicts end the output, before the summary's path
    assert re.match(r"  searched vs DeiT-style: [+-]\d+\.\d\d points \(95% CI", last[0]), last
    assert last[1].startswith("  searched vs random search: ") and last[2].startswith("summary: ")
    assert last[0].endswith(("searched is better", "searched is worse", "test images"))


def test_the_terminal_shows_each_stage_and_the_times(finished):
    out, proc = finished
    headers = re.findall(r"^\[(\d+)/9\] (.+) \((\S+)\)$", proc.stdout, re.M)
    assert [int(h[0]) for h in headers] == list(range(1, 10))
    assert [h[2] for h in headers] == ["1-supernet", "2-search", "3-pick", "4-supernet", "5-search", "6-random",
                                       "7-searched", "8-baseline", "9-random"]
    assert re.search(r"^level-1 pick: global heads per block \[[\d, ]+\]$", proc.stdout, re.M)
    times = json.loads((out / "times.json").read_text())
    assert list(times) == [h[2] for h in headers] and all(t >= 0 for t in times.values())
    assert json.loads((out / "summary.json").read_text())["stage_seconds"] == times
    assert re.search(r"^time: .+ in all \(1-supernet ", proc.stdout, re.M)
    first = proc.stdout.splitlines()[:4]  # the banner
    assert first[0] == f"glit run demo -> {out}" and first[1].startswith("  machine: CPU, ")
    assert re.fullmatch(r"  data: scikit-learn's digits \(bundled\): 10 classes; training 1,238 images \+ search "
                        r"split 200; test 359", first[2]), first[2]
    assert first[3].startswith("  budget: MACs <= 2.001 M (exact) (the DeiT-style architecture's)")
    assert re.search(r"^random search: \d+/\d+ candidates scored  best ", proc.stdout, re.M)
    assert "search generation" in proc.stdout  # the evolutionary searches keep their generations
    assert re.search(r"^train epoch 1/2 .* ETA ", proc.stdout, re.M)


def test_no_json_file_a_run_writes_holds_nan_or_infinity(finished):
    out, _ = finished

    def refuse(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    files = [*out.rglob("*.json"), *out.rglob("*.jsonl")]
    assert len(files) > 20
    for path in files:
        for line in ([path.read_text()] if path.suffix == ".json" else path.read_text().splitlines()):
            json.loads(line, parse_constant=refuse)


def test_searched_and_random_respect_the_budget(finished):
    out, _ = finished
    summary = json.loads((out / "summary.json").read_text())
    for name in ("searched", "random"):
        assert summary[name]["macs"] <= summary["budget_macs"]
    for stage in ("2-search", "5-search", "6-random/search"):
        rows = [json.loads(line) for line in (out / stage / "candidates.jsonl").read_text().splitlines()]
        assert rows and all(r["macs"] <= summary["budget_macs"] for r in rows)


def test_level2_keeps_the_level1_winner_and_random_searches_the_whole_space(finished):
    out, proc = finished
    winner = Arch.from_dict(json.loads((out / "3-pick" / "pick.json").read_text())["winner"])
    g = [b.num_global_heads for b in winner.blocks]
    for line in (out / "5-search" / "candidates.jsonl").read_text().splitlines():
        assert [b.num_global_heads for b in Arch.from_dict(json.loads(line)["arch"]).blocks] == g
    level1 = (out / "2-search" / "candidates.jsonl").read_text().splitlines()
    evo = (out / "5-search" / "candidates.jsonl").read_text().splitlines()
    rnd = [Arch.from_dict(json.loads(line)["arch"]) for line in
           (out / "6-random" / "search" / "candidates.jsonl").read_text().splitlines()]
    assert len(rnd) == len(level1) + len(evo)  # as many scored candidates as both levels together
    whole = space_preset("demo", 2)
    assert all(whole.contains(a) for a in rnd)
    assert len({tuple(b.num_global_heads for b in a.blocks) for a in rnd}) > 1  # the distribution varies too
    assert json.loads((out / "6-random" / "supernet" / "space.json").read_text()) == whole.to_dict()
    assert Arch.from_dict(json.loads(evo[0])["arch"]) == winner  # the level-1 winner is the incumbent
    incumbent = json.loads((out / "summary.json").read_text())["search"]["level2_incumbent"]
    assert incumbent["score"] == json.loads(evo[0])["score"]
    searched = Arch.from_json(out / "5-search" / "best.json")
    assert (searched == winner) == incumbent["kept"]
    verdict = "kept" if incumbent["kept"] else "replaced"
    assert f"Level 2 {verdict} the level-1 winner's details" in proc.stdout  # the printed table says so too


def test_report_is_self_contained_with_embedded_plots(finished):
    out, _ = finished
    html = (out / "report.html").read_text()
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(images) >= 4
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    assert not re.search(r"(src|href)=\"https?://", html)
    summary = json.loads((out / "summary.json").read_text())
    assert f"{summary['searched']['top1']:.2f}" in html
    verdict = "kept" if summary["search"]["level2_incumbent"]["kept"] else "replaced"
    assert f"Level 2 {verdict} the level-1 winner" in html
    assert "level-1 supernet (trained on the level-1 paths;" in html  # the default, search.level1_supernet=fixed


def test_a_second_run_recomputes_nothing(finished):
    out, _ = finished
    # split.json and candidates.jsonl are written only after a stage has loaded its data: unchanged, no reload.
    files = [p for pattern in ("checkpoint.pt", "split.json", "candidates.jsonl")
             for p in [*out.glob(f"*/{pattern}"), *out.glob(f"6-random/*/{pattern}")]]
    assert len(files) == 6 + 6 * 2 + 3  # three supernets, three retrains of two seeds (run.seeds=2), three searches
    before = {p: p.stat().st_mtime_ns for p in files}
    proc = run_glit("run", "demo", "--out", out, *TINY_RUN, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "epoch" not in proc.stdout.replace("epochs", "")  # no training epoch ran
    assert {p: p.stat().st_mtime_ns for p in files} == before


def test_every_stage_gets_the_runs_config_and_records_its_own_arguments(finished):
    """Each supernet and search stage is handed its space, length and strategy as arguments (stage.json); its
    config.yaml is the run's own, not a copy with keys rewritten."""
    out, _ = finished
    run_config = (out / "config.yaml").read_text()
    stages = {name: json.loads((out / name / "stage.json").read_text())
              for name in ("1-supernet", "2-search", "4-supernet", "5-search", "6-random/supernet",
                           "6-random/search")}
    assert all((out / name / "config.yaml").read_text() == run_config for name in stages)
    winner = Arch.from_dict(json.loads((out / "3-pick" / "pick.json").read_text())["winner"])
    assert stages["1-supernet"]["space"] == space_preset("demo", 1).to_dict()
    assert stages["4-supernet"]["space"] == space_preset("demo", 2, winner).to_dict()
    assert stages["6-random/supernet"]["space"] == space_preset("demo", 2).to_dict()
    assert [stages[s]["epochs"] for s in ("1-supernet", "4-supernet", "6-random/supernet")] == [2, 2, 2]
    assert [stages[s]["strategy"] for s in ("2-search", "5-search", "6-random/search")] == \
        ["evolution", "evolution", "random"]
    scored = sum(len((out / s / "candidates.jsonl").read_text().splitlines()) for s in ("2-search", "5-search"))
    assert stages["6-random/search"]["candidates"] == scored


def test_running_a_finished_run_again_changes_nothing(finished, tmp_path):
    out, _ = finished
    again = tmp_path / "again"
    shutil.copytree(out, again)
    before = {p: p.read_bytes() for p in sorted(again.rglob("*")) if p.is_file()}
    proc = run_glit("run", "demo", "--out", again, *TINY_RUN)
    assert proc.returncode == 0 and "the run is finished" in proc.stdout, proc.stderr[-3000:]
    assert {p: p.read_bytes() for p in sorted(again.rglob("*")) if p.is_file()} == before


def test_a_folder_from_before_stage_arguments_continues(finished, tmp_path):
    """Run folders written before stage.json, whose stages hold a copy of the run's config with the stage's keys
    rewritten (level, distribution, supernet length, strategy), continue without recomputing anything."""
    out, _ = finished
    old = tmp_path / "old"
    shutil.copytree(out, old)
    (old / "summary.json").unlink()  # stopped before its end: the stages are read again
    winner = json.loads((out / "3-pick" / "pick.json").read_text())["winner"]
    # every value differs from the run's config (level 1, no distribution, 2 supernet epochs, evolution, 2
    # generations), so each STAGE_KEYS entry is exercised
    rewritten = {"1-supernet": {"level": 2, "supernet": {"optim": {"images": 5000}}},
                 "2-search": {"search": {"generations": 3}},
                 "4-supernet": {"level": 2, "distribution": [b["num_global_heads"] for b in winner["blocks"]],
                                "supernet": {"optim": {"epochs": 4}}},
                 "6-random/supernet": {"level": 2, "supernet": {"optim": {"epochs": 4}}},
                 "6-random/search": {"level": 2, "search": {"strategy": "random", "random_candidates": 12}}}
    for name, keys in rewritten.items():
        (old / name / "stage.json").unlink()
        config = yaml.safe_load((old / name / "config.yaml").read_text())
        before = json.dumps(config, sort_keys=True)
        merge(config, keys)
        assert json.dumps(config, sort_keys=True) != before
        (old / name / "config.yaml").write_text(yaml.safe_dump(config))
    for file in old.rglob("config.yaml"):  # written before search.local_ops existed
        config = yaml.safe_load(file.read_text())
        del config["search"]["local_ops"]
        file.write_text(yaml.safe_dump(config))
    for file in old.rglob("result.json"):  # and before results recorded their blocks' MACs
        result = json.loads(file.read_text())
        result.pop("block_macs", None)
        file.write_text(json.dumps(result))
    proc = run_glit("run", "demo", "--out", old, *TINY_RUN, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "epoch" not in proc.stdout.replace("epochs", "")  # no training epoch ran
    assert json.loads((old / "summary.json").read_text())["searched"] == \
        json.loads((out / "summary.json").read_text())["searched"]
    assert "The searched architecture" in (old / "report.html").read_text()  # its report, drawn without MACs bars


def merge(config: dict, keys: dict) -> None:
    for key, value in keys.items():
        if isinstance(value, dict):
            merge(config[key], value)
        else:
            config[key] = value


def test_a_changed_config_is_an_error(finished):
    out, _ = finished
    proc = run_glit("run", "demo", "--out", out, *TINY_RUN, "--set", "train.lr=1e-3")
    assert_one_line_error(proc, "train.lr")


def test_bad_level2_epochs_is_an_error_before_anything_is_written(tmp_path):
    proc = run_glit("run", "demo", "--out", tmp_path / "run", *TINY_RUN, "--set", "search.level2_epochs=0")
    assert_one_line_error(proc, "search.level2_epochs")
    assert not (tmp_path / "run").exists()


def test_bad_level1_supernet_is_an_error_before_anything_is_written(tmp_path):
    proc = run_glit("run", "demo", "--out", tmp_path / "run", *TINY_RUN, "--set", "search.level1_supernet=all")
    assert_one_line_error(proc, "search.level1_supernet", "'all'")
    assert not (tmp_path / "run").exists()


def demo_truth(path, n_level1=4, n_whole=5):
    """A hand-made truth file of level-1 and whole-space demo members (made-up top-1s)."""
    whole, level1 = space_preset("demo", 2), space_preset("demo", 1)
    archs = list(dict.fromkeys([level1.sample(random.Random(i)) for i in range(n_level1)]
                               + [whole.sample(random.Random(10 + i)) for i in range(n_whole)]))
    path.write_text("".join(json.dumps({"arch": a.to_dict(), "seed": 0, "top1": 50.0 + i}) + "\n"
                            for i, a in enumerate(archs)))
    return path, archs


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """A run with search.level1_supernet=whole, whose folder holds a truth.jsonl from the start."""
    out = tmp_path_factory.mktemp("whole") / "run"
    out.mkdir()
    _, archs = demo_truth(out / "truth.jsonl")
    proc = run_glit("run", "demo", "--out", out, *TINY_RUN, "--set", "search.level1_supernet=whole", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc, archs


def test_a_whole_space_level1_supernet_is_searched_over_the_level1_space(whole_run):
    """``search.level1_supernet=whole``: the level-1 supernet trains on the whole space, the level-1 search still
    varies only the distribution (detail genes at their level-1 values), and the run goes on to the end."""
    out, _, _ = whole_run
    trained = SearchSpace.from_dict(json.loads((out / "1-supernet" / "space.json").read_text()))
    assert trained == space_preset("demo", 2)
    level1 = space_preset("demo", 1)
    archs = [Arch.from_dict(json.loads(line)["arch"])
             for line in (out / "2-search" / "candidates.jsonl").read_text().splitlines()]
    assert archs and all(level1.contains(a) for a in archs)
    assert len({tuple(b.num_global_heads for b in a.blocks) for a in archs}) > 1
    summary = json.loads((out / "summary.json").read_text())
    assert all(summary[name]["macs"] <= summary["budget_macs"] for name in ("searched", "random"))
    assert "level-1 supernet (trained over the whole space;" in (out / "report.html").read_text()


def test_a_run_reports_supernet_health_against_a_truth_file(whole_run, tmp_path):
    out, proc, archs = whole_run
    health = json.loads((out / "summary.json").read_text())["health"]["supernets"]
    level1 = space_preset("demo", 1)
    level2 = SearchSpace.from_dict(json.loads((out / "4-supernet" / "space.json").read_text()))
    assert health["level1"]["n"] == sum(level1.contains(a) for a in archs)  # the level-1 part, as searched
    assert health["random"]["n"] == len(archs) and health["random"]["skipped"] == 0
    inside = sum(level2.contains(a) for a in archs)
    assert health["level2"]["n"] == inside and (inside > 0 or "none of its" in health["level2"]["error"])
    ranked = run_glit("rank", "--supernet", out / "6-random" / "supernet", "--truth", out / "truth.jsonl", "--json")
    assert ranked.returncode == 0, ranked.stderr[-3000:]
    cached = json.loads((out / "health.json").read_text())["supernets"]["random"]
    assert cached["pairs"] == json.loads(ranked.stdout)["pairs"]  # scored as glit rank scores
    assert health["random"]["kendall_tau"] == json.loads(ranked.stdout)["kendall_tau"]
    assert "supernet health against" in proc.stdout
    assert "Supernet health" in (out / "report.html").read_text()

    # A finished run takes another truth file later (--set run.truth), and a missing one is an error.
    other, archs = demo_truth(tmp_path / "other.jsonl", n_level1=6, n_whole=0)
    again = run_glit("run", "demo", "--out", out, *TINY_RUN, "--set", "search.level1_supernet=whole",
                     "--set", f"run.truth={other}", timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    health = json.loads((out / "summary.json").read_text())["health"]
    assert health["truth"] == str(other) and health["supernets"]["random"]["n"] == len(archs)
    missing = run_glit("run", "demo", "--out", out, *TINY_RUN, "--set", "search.level1_supernet=whole",
                       "--set", f"run.truth={tmp_path / 'none.jsonl'}")
    assert_one_line_error(missing, "run.truth", "none.jsonl")


@pytest.mark.slow
def test_killed_moved_and_continued_from_elsewhere_equals_an_uninterrupted_run(finished, tmp_path):
    """Started with a relative --out from one folder, SIGKILLed mid-pipeline (the level-2 supernet, warm-started
    from stage 1, has finished an epoch), moved, then continued from another working directory by its absolute
    path: the same summary as an uninterrupted run."""
    out, _ = finished
    (tmp_path / "a").mkdir()
    (tmp_path / "elsewhere").mkdir()
    kill_when_exists(["run", "demo", "--out", "cut", *TINY_RUN], tmp_path / "a" / "cut" / "4-supernet" /
                     "checkpoint.pt", cwd=tmp_path / "a")
    assert not (tmp_path / "a" / "cut" / "summary.json").exists()
    moved = tmp_path / "b" / "moved"
    moved.parent.mkdir()
    (tmp_path / "a" / "cut").rename(moved)
    again = run_glit("run", "demo", "--out", moved, *TINY_RUN, timeout=600, cwd=tmp_path / "elsewhere")
    assert again.returncode == 0, again.stderr[-3000:]
    a = json.loads((out / "summary.json").read_text())
    b = json.loads((moved / "summary.json").read_text())
    assert without_timings(a) == without_timings(b)


def test_without_a_round_the_level1_winner_is_the_best_scored_distribution(finished):
    out, _ = finished
    pick = json.loads((out / "3-pick" / "pick.json").read_text())
    topk = json.loads((out / "2-search" / "topk.json").read_text())
    assert len(pick["candidates"]) == 2 and pick["decided_by"] == "search"  # search.topk
    assert [c["score"] for c in pick["candidates"]] == [row["score"] for row in topk]
    assert pick["winner"] == topk[0]["arch"]


def test_marginal_level1_scoring_two_level2_searches_and_the_paper_space_run_end_to_end(tmp_path):
    out = tmp_path / "run"
    proc = run_glit("run", "demo", "--out", out, *TINY_RUN, "--set", "search.level1_supernet=whole",
                    "--set", "search.level1_scoring=marginal", "--set", "search.marginal_samples=2",
                    "--set", "search.level2_topk=2", "--set", "search.level2_space=paper", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    paper = space_preset("demo", 2, level2_space="paper")
    for folder in ("1-supernet", "4-supernet", "4-supernet-2", "6-random/supernet"):
        assert paper.includes(SearchSpace.from_dict(json.loads((out / folder / "space.json").read_text())))
    for folder in ("5-search", "5-search-2", "6-random/search"):
        rows = (out / folder / "candidates.jsonl").read_text().splitlines()
        assert all(paper.contains(Arch.from_dict(json.loads(line)["arch"])) for line in rows)
    summary = json.loads((out / "summary.json").read_text())
    runs = summary["search"]["level2_runs"]
    topk = [Arch.from_dict(r["arch"]) for r in json.loads((out / "2-search" / "topk.json").read_text())]
    picked = Arch.from_dict(json.loads((out / "3-pick" / "pick.json").read_text())["winner"])
    second = next(a for a in topk if a != picked)
    assert [r["distribution"] for r in runs] == [[b.num_global_heads for b in a.blocks] for a in (picked, second)]
    results = [json.loads((out / folder / "result.json").read_text()) for folder in ("5-search", "5-search-2")]
    best = max(range(2), key=lambda j: (results[j]["score"], -j))
    assert [r["won"] for r in runs] == [j == best for j in range(2)]
    assert summary["searched"]["arch"] == results[best]["arch"]
    level2 = [len((out / f / "candidates.jsonl").read_text().splitlines()) for f in ("5-search", "5-search-2")]
    assert summary["search"]["level2_candidates"] == sum(level2)
    assert summary["search"]["random_candidates"] == summary["search"]["level1_candidates"] + sum(level2)
    epochs = [len((out / f / "metrics.jsonl").read_text().splitlines())
              for f in ("4-supernet", "4-supernet-2", "6-random/supernet")]
    assert epochs == [2, 2, 4]  # the random baseline's supernet trains as long as both level-2 supernets
    assert yaml.safe_load((out / "2-search" / "config.yaml").read_text())["search"]["level1_scoring"] == "marginal"


def test_level2_topk_beyond_the_level1_topk_is_an_error(tmp_path):
    proc = run_glit("run", "demo", "--out", tmp_path / "run", *TINY_RUN, "--set", "search.level2_topk=3")
    assert_one_line_error(proc, "search.level2_topk", "3")
    assert not (tmp_path / "run").exists()


def test_one_decode_per_run_and_none_when_everything_is_done(tmp_path, monkeypatch):
    """Every stage of a run gets its splits from the first stage's load (``SharedData``); a finished run loads
    nothing. Counted with a wrapper that calls the real loader."""
    import glit.data.build as build
    from glit.config import load_config
    from glit.recipes.run import run

    loads = []
    real = build._load
    monkeypatch.setattr(build, "_load", lambda cfg: loads.append(cfg.data.cache) or real(cfg))
    cfg = load_config("demo", overrides=[a for a in TINY_RUN if a != "--set"] + [
        "supernet.optim.epochs=1", "train.epochs=1", "search.generations=1", "data.workers=0"])
    run(cfg, tmp_path / "run")
    assert loads == ["no", "auto"]  # the tree listed once before anything is written, then decoded once for all
    run(cfg, tmp_path / "run")
    assert loads == ["no", "auto"]  # done: nothing loaded again


def _shape(line: str) -> str:
    """A printed line with its figures (and the verdict word, which depends on them) made generic."""
    line = re.sub(r"  \(mean of \d+ seeds, std [\d.]+\)$", "", line)  # this test retrains 2 seeds; the demo, 1
    line = re.sub(r"searched is (better|worse)$|no difference detected at [\d,]+ test images$", "VERDICT", line)
    line = re.sub(r"\d+ min \d+ s|\d+ s\b", "TIME", line)
    return " ".join(re.sub(r"[-+]?\d[\d,]*(\.\d+)?(e[-+]?\d+)?", "#", line).split())


def test_the_readme_demo_output_is_what_a_run_prints(finished):
    """Every line of the README's demo output block (bar its '...') is a line `glit run` prints, in that order."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"ends\s+with the answer.*?\n```\n(.*?)```", readme, re.S).group(1)
    wanted = [_shape(x) for x in block.splitlines() if x.strip() and x.strip() != "..."]
    out, proc = finished
    printed = [_shape(x.replace(str(out), "runs/demo")) for x in proc.stdout.splitlines()]
    assert len(wanted) >= 8
    at = 0
    for line in wanted:
        assert line in printed[at:], f"README line not printed (in this order): {line!r}"
        at = printed.index(line, at) + 1


def test_ablate_search_reuses_the_run_and_adds_one_level_search(finished):
    """glit ablate --study search in a finished run's folder: only the one-level search and its retraining run."""
    out, _ = finished
    def written():
        patterns = ("*/checkpoint.pt", "*/*/checkpoint.pt", "*/result.json", "*/search_state.json",
                    "*/*/search_state.json")
        return {f: f.stat().st_mtime_ns for pattern in patterns for f in out.glob(pattern)}

    before = written()
    proc = run_glit("ablate", "demo", "--study", "search", "--seeds", "2", "--out", out, *TINY_RUN, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = written()
    assert len(before) >= 12 and {f: after[f] for f in before} == before  # no stage of the run was redone
    table = json.loads((out / "ablation-search.json").read_text())
    rows = {r["name"]: r for r in table["rows"]}
    assert list(rows) == ["hierarchical", "one-level", "random", "DeiT-style"] and table["seeds"] == [0, 1]
    summary = json.loads((out / "summary.json").read_text())
    searched = summary["search"]["level1_candidates"] + summary["search"]["level2_candidates"]
    assert rows["hierarchical"]["candidates"] == searched
    assert searched <= rows["one-level"]["candidates"] < searched + 4  # whole generations of search.population 4
    assert rows["hierarchical"]["top1_seeds"] == summary["searched"]["top1_seeds"]  # read back, not retrained
    assert rows["random"]["top1_seeds"] == summary["random"]["top1_seeds"]
    one = json.loads((out / "10-one-level" / "best.json").read_text())
    assert rows["one-level"]["arch"] == one
    whole = SearchSpace.from_dict(json.loads((out / "6-random" / "supernet" / "space.json").read_text()))
    assert whole.contains(Arch.from_dict(one))  # evolution over the whole space, on the random baseline's supernet
    assert (out / "11-one-level" / "result.json").is_file() and (out / "11-one-level-seed1" / "result.json").is_file()
    for r in table["rows"][1:]:
        assert r["vs_first"]["verdict"] in ("better", "worse", "no difference detected")
    assert "ablation: search (demo, 2 seeds" in proc.stdout and "hierarchical vs one-level:" in proc.stdout
    page = (out / "ablation-search.html").read_text()
    assert "one-level" in page and "<script" not in page and "http" not in page


def test_the_run_exports_its_searched_model_and_a_supernet_path_exports(finished, tmp_path):
    import onnxruntime
    import torch

    import glit
    from glit.recipes.evaluate import load_trained

    out, _ = finished
    trained = load_trained(out / "7-searched" / "checkpoint.pt")
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    model = glit.load_model(out / "searched.safetensors")
    assert model.arch == Arch.from_json(out / "7-searched" / "arch.json")
    with torch.no_grad():
        expected = trained.model.eval()(x)
        assert torch.equal(model(x), expected)  # the retrained weights (EMA when kept), exactly
    session = onnxruntime.InferenceSession(str(out / "searched.onnx"), providers=["CPUExecutionProvider"])
    assert (torch.from_numpy(session.run(None, {"images": x.numpy()})[0]) - expected).abs().max() <= 1e-4

    path = tmp_path / "path.onnx"
    proc = run_glit("export", "--supernet", out / "6-random" / "supernet", "--arch", out / "9-random" / "arch.json",
                    "--format", "onnx", "--out", path)
    assert proc.returncode == 0 and path.is_file() and "onnxruntime matches PyTorch within" in proc.stdout
    assert_one_line_error(run_glit("export", "--supernet", out / "6-random" / "supernet", "--format", "onnx",
                                   "--out", tmp_path / "x.onnx"), "--supernet needs --arch")
    assert not (tmp_path / "x.onnx").exists()


@pytest.fixture(scope="module")
def round_run(tmp_path_factory):
    """A finished demo run with seed 1, one retraining seed and a finalist round of 3: the round's tests, and the
    second seed of glit compare's."""
    out = tmp_path_factory.mktemp("round") / "run"
    proc = run_glit("run", "demo", "--out", out, *ROUND_RUN, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


ROUND_RUN = (*TINY_RUN, "--set", "seed=1", "--set", "run.seeds=1", "--set", "search.finalists=3")


def test_glit_compare_over_two_seeds_computes_what_scipy_does(finished, round_run, tmp_path):
    from scipy import stats

    out, _ = finished
    second, _ = round_run
    unfinished = tmp_path / "seed2"
    shutil.copytree(out, unfinished)
    (unfinished / "summary.json").unlink()
    (unfinished / "config.yaml").write_text((unfinished / "config.yaml").read_text().replace("seed: 0", "seed: 2", 1))
    proc = run_glit("compare", out, second, unfinished, "--json", "--html", tmp_path / "compare.html")
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout)
    assert (r["finished"], r["not_finished"]) == (2, 1)
    summaries = [json.loads((d / "summary.json").read_text()) for d in (out, second)]
    for key in ("vs_baseline", "vs_random"):
        diffs = [s["comparisons"][key]["difference"] for s in summaries]
        assert r[key]["per_seed"] == {"0": diffs[0], "1": diffs[1]} and r[key]["n"] == 2
        assert r[key]["mean"] == pytest.approx(sum(diffs) / 2)
        assert r[key]["std"] == pytest.approx(stats.tstd(diffs))
        expected = stats.ttest_1samp(diffs, 0.0, alternative="greater").pvalue
        assert r[key]["p_value"] == pytest.approx(expected, nan_ok=True) or r[key]["p_value"] is None
    assert r["searched"]["per_seed"]["1"] == summaries[1]["searched"]["top1"]
    page = (tmp_path / "compare.html").read_text()
    assert "not finished" in page and "one-sided t-test" in page
    text = run_glit("compare", out, second, unfinished)
    assert text.returncode == 0 and "not finished" in text.stdout and "searched - DeiT-style" in text.stdout
    bad = run_glit("compare", tmp_path / "nowhere")
    assert_one_line_error(bad, "nowhere", "not a glit run folder")


def heads(arch: dict) -> list[int]:
    """The distribution of an architecture (its JSON): global heads per block."""
    return [b["num_global_heads"] for b in arch["blocks"]]


def test_a_run_with_a_finalist_round_gives_random_search_the_same_round(round_run):
    out, proc = round_run
    rounds = {name: json.loads((out / folder / "finalists.json").read_text())
              for name, folder in (("searched", "2-finalists"), ("random", "6-random/finalists"))}
    summary = json.loads((out / "summary.json").read_text())
    for name, r in rounds.items():
        assert r["k"] == 3 and r["evaluator"] == "short-tse" and len(r["finalists"]) == 3  # the default evaluator
        assert summary["finalists"][name]["finalists"] == r["finalists"]
    # the hierarchy's round is at level 1: three distinct distributions, its winner the one level 2 searches around
    searched = rounds["searched"]
    assert [f["search"] for f in searched["finalists"]] == [str(out / "2-search")] * 3
    assert len({json.dumps(heads(f["arch"])) for f in searched["finalists"]}) == 3
    pick = json.loads((out / "3-pick" / "pick.json").read_text())
    assert pick["winner"] == searched["winner"]["arch"] and pick["decided_by"] == "round"
    assert "winner (see the finalist round below) went on to level 2" in (out / "report.html").read_text()
    assert heads(summary["searched"]["arch"]) == heads(searched["winner"]["arch"])
    # random search's round winner is the one retrained
    assert summary["random"]["arch"] == rounds["random"]["winner"]["arch"]
    assert [f["search"] for f in rounds["random"]["finalists"]] == [str(out / "6-random" / "search")] * 3
    times = json.loads((out / "times.json").read_text())
    assert {"2-finalists", "6-random/finalists"} <= times.keys() and "[11/11]" in proc.stdout
    page = (out / "report.html").read_text(encoding="utf-8")  # the report shows both rounds and their winners
    assert "<h2>Finalist round</h2>" in page and page.count("<b class='better'>winner</b>") >= 2
    for folder in ("2-finalists", "6-random/finalists"):
        assert f"<span class='muted'>({folder})</span>" in page
        assert re.search(rf"<a href='{folder}/'>{folder}</a></td><td>[^<]*</td><td><span class='state done'>done"
                         rf"</span></td><td>3/3 finalists scored</td>", page)
    again = run_glit("run", "demo", "--out", out, *ROUND_RUN, timeout=600)
    assert again.returncode == 0 and json.loads((out / "2-finalists" / "finalists.json").read_text()) == \
        rounds["searched"]
    # glit ablate --study search gives the one-level search the same round, and retrains its winner
    proc = run_glit("ablate", "demo", "--study", "search", "--out", out, *ROUND_RUN, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = json.loads((out / "10-one-level-finalists" / "finalists.json").read_text())
    assert one["k"] == 3 and one["evaluator"] == "short-tse" and len(one["finalists"]) == 3
    assert [f["search"] for f in one["finalists"]] == [str(out / "10-one-level")] * 3
    row = next(r for r in json.loads((out / "ablation-search.json").read_text())["rows"] if r["name"] == "one-level")
    assert row["arch"] == one["winner"]["arch"]
    # glit compare adds the one-level row of a run folder that holds the ablation
    proc = run_glit("compare", out, "--json")
    r = json.loads(proc.stdout)
    assert r["one_level"]["per_seed"] == {"1": row["top1"]}
    assert r["vs_one_level"]["per_seed"] == {"1": row["vs_first"]["difference"]} and r["vs_one_level"]["n"] == 1
    table = run_glit("compare", out).stdout  # the one-level column, and its difference with its verdict
    assert "one-level" in table.splitlines()[0] and f"{row['top1']:.2f}%" in table
    assert f"searched - one-level search: {row['vs_first']['difference']:+.2f} points over 1 seed;" in table


def test_a_run_searches_every_local_operator_it_is_given(tmp_path):
    """``--set search.local_ops=[conv1d,window_attn]``: every space of the run offers both operators (the supernets
    hold a layer of each), and the searches score architectures with each."""
    out = tmp_path / "ops"
    proc = run_glit("run", "demo", "--out", out, *TINY_RUN, "--set", "search.local_ops=[conv1d,window_attn]",
                    "--set", "run.seeds=1", "--set", "train.epochs=1",
                    "--set", "supernet.optim.epochs=1", "--set", "search.level2_epochs=1", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for folder in ("1-supernet", "4-supernet", "6-random/supernet"):
        space = SearchSpace.from_dict(json.loads((out / folder / "space.json").read_text()))
        assert all(set(c.local_op) == {"conv1d", "window_attn"} for c in space.blocks), folder
    ops = {b["local_op"] for folder in ("2-search", "5-search", "6-random/search")
           for line in (out / folder / "candidates.jsonl").read_text().splitlines()
           for b in json.loads(line)["arch"]["blocks"]}
    assert {"conv1d", "window_attn"} <= ops


def test_a_level2_round_on_the_level1_supernet_pools_complete_architectures_of_each_distribution(tmp_path):
    """``search.finalists_level=2`` with ``search.level2_epochs=0``: no level-2 or random supernet is trained (the
    level-1 whole-space one scores every search), level 1's best-scored distribution and the next go to level 2
    without a round, and the round re-scores the answers and best candidates of both level-2 searches; random
    search, and glit ablate's one-level search, get the same round on the same supernet."""
    out = tmp_path / "run"
    args = (*TINY_RUN, "--set", "seed=1", "--set", "run.seeds=1", "--set", "train.epochs=1",
            "--set", "search.level1_supernet=whole", "--set", "search.level2_epochs=0",
            "--set", "search.level2_topk=2", "--set", "search.finalists=3", "--set", "search.finalists_level=2",
            "--set", "search.incumbent_margin=0")
    proc = run_glit("run", "demo", "--out", out, *args, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for folder in ("2-finalists", "4-supernet", "4-supernet-2", "6-random/supernet"):
        assert not (out / folder).exists(), folder
    assert "[11/11]" in proc.stdout  # 1-supernet, 2-search, 3-pick, two level-2 searches, two rounds, 6-random, 7-9
    level1 = str(out / "1-supernet")
    pick = json.loads((out / "3-pick" / "pick.json").read_text())
    assert pick["decided_by"] == "search" and pick["winner"] == pick["candidates"][0]["arch"]
    searches = [out / "5-search", out / "5-search-2"]
    distributions = [heads(c["arch"]) for c in pick["candidates"][:2]]
    for d, want in zip(searches, distributions):  # each level-2 search kept its distribution, on the level-1 supernet
        rows = [json.loads(line) for line in (d / "candidates.jsonl").read_text().splitlines()]
        assert rows and all(heads(r["arch"]) == want for r in rows)
        assert json.loads((d / "stage.json").read_text())["space"] == \
            space_preset("demo", 2, Arch.from_dict(rows[0]["arch"])).to_dict()
    rnd = json.loads((out / "6-random" / "finalists" / "finalists.json").read_text())
    won = json.loads((out / "5-finalists" / "finalists.json").read_text())
    assert won["k"] == rnd["k"] == 3 and won["evaluator"] == rnd["evaluator"] == "short-tse"
    # the pool: each search's answer first, then the next best, interleaved; all scored on the level-1 supernet
    assert [f["search"] for f in won["finalists"]] == [str(d) for d in (*searches, searches[0])]
    assert [f["arch"] for f in won["finalists"][:2]] == \
        [Arch.from_json(d / "best.json").to_dict() for d in searches]
    assert {f["supernet"] for f in won["finalists"] + rnd["finalists"]} == {level1}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["searched"]["arch"] == won["winner"]["arch"]
    assert summary["searched"]["search_score"] == won["winner"]["search_score"]
    n = won["finalists"].index(won["winner"]) + 1  # the closing table names the round's winner
    assert f"The finalist round after level 2 re-scored 3 architectures of 2 level-2 searches with short-tse: " \
        f"finalist {n} (search score {won['winner']['search_score']:.2f}%) won and was retrained." in proc.stdout
    assert summary["random"]["arch"] == rnd["winner"]["arch"]
    assert summary["finalists"]["searched"]["level"] == 2 and "level" not in summary["finalists"]["random"]
    assert [r["won"] for r in summary["search"]["level2_runs"]] == [str(d) == won["winner"]["search"] for d in searches]
    assert summary["search"]["random_candidates"] == \
        summary["search"]["level1_candidates"] + summary["search"]["level2_candidates"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "round (after level 2: complete architectures)" in page
    assert "The 2 best-scored distributions of the level-1 search went on to level 2" in page
    assert re.search(r"<tr><td>4-supernet</td><td>[^<]*</td><td><span class='muted'>skipped", page)
    assert re.search(r"<a href='5-finalists/'>5-finalists</a></td><td>[^<]*</td><td><span class='state done'>done"
                     r"</span></td><td>3/3 finalists scored</td>", page)
    proc = run_glit("ablate", "demo", "--study", "search", "--out", out, *args, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = json.loads((out / "10-one-level-finalists" / "finalists.json").read_text())
    assert {f["supernet"] for f in one["finalists"]} == {level1} and one["k"] == 3
