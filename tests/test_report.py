"""The HTML report of ``glit run``, on a small hand-written run folder: one self-contained page with the plots, the
numbers, the config and the command; and a page for a run still in progress."""

from __future__ import annotations

import base64
import json
import random
import re
import shutil
import sys
from pathlib import Path

import pytest

import glit
from glit.presets import deit
from glit.recipes.search import pareto
from glit.report import write_report
from glit.verdict import compare

PNG = b"\x89PNG\r\n\x1a\n"
TOP1 = {"searched": 97.31, "baseline": 96.12, "random": 95.47}
COMMAND = "glit run demo --out runs/demo --set train.epochs=3"
CONFIG = """preset: demo
seed: 0
data:
  source: digits
  root: "data/a&b <x>"
train:
  epochs: 3
supernet:
  optim:
    epochs: 2
search:
  population: 6
  generations: 3
  level2_epochs: 4
"""


def _write(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))


def _write_lines(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _candidates(space: glit.SearchSpace, seed: int, budget: int, generations: int = 3, per_gen: int = 6,
                base: float = 60.0) -> list[dict]:
    """Distinct architectures under the budget with plausible scores that improve a little per generation."""
    rng, seen, rows = random.Random(seed), set(), []
    for i in range(10_000):
        arch = space.sample(random.Random(seed * 10_000 + i))
        c = glit.cost(arch)
        if arch in seen or c.macs > budget:
            continue
        seen.add(arch)
        gen = len(rows) // per_gen
        rows.append({"arch": arch.to_dict(), "params": c.params, "macs": c.macs,
                     "score": round(base + 2.0 * gen + rng.uniform(-4, 4), 2), "generation": gen})
        if len(rows) == generations * per_gen:
            return rows
    raise AssertionError("the demo space ran out of architectures under the budget")


def _block_macs(arch: dict) -> list[int]:
    return [b.total.macs for b in glit.cost(glit.Arch.from_dict(arch)).blocks]


def _search(folder: Path, rows: list[dict], budget: int, space: glit.SearchSpace) -> dict:
    """The files glit search writes: its stage.json (the space searched) and its answer's costs included."""
    best = max(rows, key=lambda r: r["score"])
    _write(folder / "stage.json", {"strategy": "evolution", "space": space.to_dict()})
    _write_lines(folder / "candidates.jsonl", rows)
    _write(folder / "pareto.json", pareto(rows))
    _write(folder / "best.json", best["arch"])
    _write(folder / "result.json", {**best, "block_macs": _block_macs(best["arch"]), "scored": len(rows),
                                    "generations": 3,
                                    "budget": {"max_macs": budget, "max_params": float("inf"), "convention": "exact"},
                                    "budget_text": f"MACs <= {budget / 1e6:.2f} M (exact)"})
    return best


def _train(folder: Path, arch: dict, top1: float, epochs: int = 3) -> None:
    c = glit.cost(glit.Arch.from_dict(arch))
    rows = [{"epoch": e, "loss": (102 - top1) / e, "lr": 1e-3, "images_per_s": 900.0, "seconds": 1.5,
             "top1": top1 - 10.0 / e + 10.0 / epochs, "eval_loss": (101 - top1) / e, "images": 360}
            for e in range(1, epochs + 1)]
    _write_lines(folder / "metrics.jsonl", rows)
    _write(folder / "arch.json", arch)
    _write(folder / "result.json", {"top1": top1, "params": c.params, "macs": c.macs, "epochs": epochs,
                                    "block_macs": _block_macs(arch), "train_seconds": 4.5})


def make_run(root: Path, top1: dict[str, float] = TOP1) -> Path:
    """A finished, consistent ``glit run`` folder for the demo preset, written by hand."""
    run = root / "run"
    run.mkdir()
    (run / "config.yaml").write_text(CONFIG)
    _write(run / "run.json", {"command": COMMAND, "preset": "demo", "started": "2025-01-01T12:00:00"})
    level1 = glit.space_preset("demo", 1)
    baseline = deit(level1.family).to_dict()
    budget = glit.cost(glit.Arch.from_dict(baseline)).macs
    for folder, start in (("1-supernet", 40.0), ("4-supernet", 50.0), ("6-random/supernet", 45.0)):
        _write_lines(run / folder / "metrics.jsonl", [
            {"epoch": e, "loss": (100 - start) / 25 / e, "lr": 1e-3, "images_per_s": 800.0, "seconds": 2.0,
             "paths": ["a", "b"], "top1": start + 10 * e, "top1_paths": [start - 1 + 10 * e, start + 1 + 10 * e]}
            for e in (1, 2)])
    rows1 = _candidates(level1, 1, budget, base=55.0)
    _search(run / "2-search", rows1, budget, level1)
    top = sorted(rows1, key=lambda r: -r["score"])[:3]
    _write(run / "3-pick" / "pick.json", {"winner": top[0]["arch"], "decided_by": "search", "candidates": [
        {"arch": r["arch"], "score": r["score"]} for r in top]})
    level2 = glit.space_preset("demo", 2, distribution=glit.Arch.from_dict(top[0]["arch"]))
    searched = _search(run / "5-search", _candidates(level2, 2, budget), budget, level2)
    whole = glit.space_preset("demo", 2)
    random_best = _search(run / "6-random" / "search", _candidates(whole, 3, budget, base=58.0), budget, whole)
    archs = {"searched": searched["arch"], "baseline": baseline, "random": random_best["arch"]}
    scores = {"searched": searched["score"], "baseline": None, "random": random_best["score"]}
    summary = {"budget_macs": budget, "budget_text": f"MACs <= {budget / 1e6:.2f} M (exact)",
               "search": {"level1_candidates": len(rows1), "level2_candidates": 18, "random_candidates": 18}}
    for i, name in enumerate(("searched", "baseline", "random")):
        _train(run / f"{7 + i}-{name}", archs[name], top1[name])
        c = glit.cost(glit.Arch.from_dict(archs[name]))
        summary[name] = {"arch": archs[name], "params": c.params, "macs": c.macs, "top1": top1[name],
                         "train_seconds": 4.5, "search_score": scores[name]}
    _write(run / "summary.json", summary)
    return run


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(b64, validate=True)
            for b64 in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)]


def _assert_self_contained(page: str) -> None:
    assert not re.search(r"https?://", page), "the page must not load or link anything from the network"
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert not re.search(r"""src\s*=\s*['"](?!data:)""", page), "every image is embedded"


@pytest.fixture
def finished_run(tmp_path) -> Path:
    return make_run(tmp_path)


def test_report_of_a_finished_run(finished_run):
    path = write_report(finished_run)
    assert path == finished_run / "report.html"
    assert [p.name for p in finished_run.iterdir() if p.name.endswith(".tmp")] == []
    page = path.read_text(encoding="utf-8")
    _assert_self_contained(page)

    images = _images(page)
    # search progress, accuracy vs MACs, final training curves, supernet curves: one image per panel
    assert len(images) == 2 + 1 + 2 + 2 and page.count("<div class='panels'>") == 3
    assert all(png.startswith(PNG) and len(png) > 5000 for png in images)

    for value in TOP1.values():
        assert f"{value:.2f}" in page
    assert "beats</b> the DeiT-style baseline (96.12%) by <b class='better'>+1.19 points</b> at " in page
    assert "beats</b> the random-search winner (95.47%) by <b class='better'>+1.84 points</b> at " in page
    assert "The test split has 360 images: one image is 0.28 points" in page
    assert "<x>" not in page  # the config text is escaped, not injected
    assert "root: &#34;data/a&amp;b &lt;x&gt;&#34;" in page  # markupsafe escapes a quote as &#34;
    assert "search:\n  population: 6\n  generations: 3" in page
    assert COMMAND in page
    assert "glit run --config runs/demo/config.yaml" in page

    # The winner's per-block diagram: one G or L cell per head slot, matching its genes.
    winner = json.loads((finished_run / "7-searched" / "arch.json").read_text())
    heads = winner["family"]["num_heads"]
    assert page.count("<span class='head g'>G</span>") == 1 + sum(b["num_global_heads"] for b in winner["blocks"])
    assert page.count("<span class='head l'>L</span>") == 1 + sum(heads - b["num_global_heads"]
                                                                 for b in winner["blocks"])
    assert "Level 1: the distribution of global heads" in page  # 3-pick is shown when present
    assert "The best-scored distribution of the level-1 search went on to level 2." in page  # no round here
    assert "Short retrain top-1" not in page  # a column only for runs that retrained the top-k (a retired key)
    assert "still in progress" not in page
    # the pipeline: supernet epochs out of supernet.optim.epochs (level 1) or search.level2_epochs (the other two)
    for folder, epochs in (("1-supernet", "2/2"), ("4-supernet", "2/4"), ("6-random/supernet", "2/4"),
                           ("6-random/search", None), ("7-searched", "3/3")):
        row = re.search(f"<tr><td><a href='{folder}/'>{folder}</a></td>.*?</tr>", page).group(0)
        assert "state done" in row and (epochs is None or f"{epochs} epochs" in row), row


def test_report_says_when_the_searched_model_loses(tmp_path):
    run = make_run(tmp_path, {"searched": 95.10, "baseline": 96.12, "random": 95.10})
    page = write_report(run).read_text(encoding="utf-8")
    assert "trails</b> the DeiT-style baseline (96.12%) by <b class='worse'>−1.02 points" in page
    assert "<b>matches</b> the random-search winner (95.10%)" in page


def test_report_states_the_paired_verdicts(tmp_path):
    """With the summary's ``comparisons`` (glit.verdict), the headline gives each verdict, not a bare difference."""
    run = make_run(tmp_path, {"searched": 95.83, "baseline": 96.11, "random": 96.94})
    summary = json.loads((run / "summary.json").read_text())
    summary["comparisons"] = {"vs_baseline": compare(2, 3, 360), "vs_random": compare(1, 40, 360)}
    _write(run / "summary.json", summary)
    page = write_report(run).read_text(encoding="utf-8")
    assert ("Against the DeiT-style baseline (96.11%): −0.28 points (95% interval" in page
            and "<b class='tie'>no difference detected at 360 test images</b>" in page)
    assert "<b class='worse'>the searched model is worse</b>" in page  # 1 vs 40 disagreements
    assert "trails" not in page


def test_report_shows_stage_times_links_and_a_saturated_search_split(tmp_path):
    run = make_run(tmp_path)
    config = (run / "config.yaml").read_text().replace("  source: digits\n", "  source: digits\n  search_size: 300\n")
    (run / "config.yaml").write_text(config)
    _write(run / "times.json", {"1-supernet": 24.0, "2-search": 12.0, "6-random": 26.0, "7-searched": 65.0})
    _write(run / "run.json", {"command": COMMAND, "preset": "demo", "started": "2025-01-01T12:00:00",
                              "machine": "CPU, 2 threads", "torch": "2.13.0+cpu", "glit": "0.1.0+gabc1234"})
    rows = [json.loads(line) for line in (run / "5-search" / "candidates.jsonl").read_text().splitlines()]
    for i, row in enumerate(rows):  # 12 of 18 within a point of the best on 300 images
        row["score"] = 98.0 - (0.1 * i if i < 12 else 5.0 + i)
    _write_lines(run / "5-search" / "candidates.jsonl", rows)
    page = write_report(run).read_text(encoding="utf-8")
    assert "time: <b>2 min 07 s</b>" in page and "In all: 2 min 07 s of wall time." in page
    assert re.search(r"<a href='7-searched/'>7-searched</a></td>.*?<td>1 min 05 s</td></tr>", page)
    assert "<a href='summary.json'>summary.json</a>" in page and "<a href='config.yaml'>config.yaml</a>" in page
    assert "machine: <b>CPU, 2 threads</b>" in page and "glit: <b>0.1.0+gabc1234</b>" in page
    assert "The search split is saturated." in page
    # 1.96 sqrt(2 p (1 - p) / 300) at p = 0.98: 2.24 points; the twelve within 1.1 points and none of the rest
    assert "12 of the 18 level-2 candidates score within 2.24 points of the best (98.00%)" in page
    # the spaces searched, and each search's best candidates on its own supernet's scale
    assert re.search(r"<tr><td>Level 1</td><td>num_global_heads per block \(details at their level-1 values\)</td>"
                     r"<td>256</td><td>18</td><td>0\.07</td></tr>", page)  # 4 distributions per block, 4 blocks
    assert "<h3>Level 2: top 5 <span class='muted'>(search-split top-1 with weights inherited from the level-2 " \
           "supernet)</span></h3>" in page
    top = re.search(r"Level 2: top 5.*?</table>", page, re.S).group(0)
    assert [float(x) for x in re.findall(r"<tr><td>\d</td><td>([\d.]+)</td>", top)] == [98.0, 97.9, 97.8, 97.7, 97.6]


def test_report_of_a_run_in_progress(finished_run):
    """No summary, no optional pick, the level-2 search's winner retraining at epoch 1, the baselines not started."""
    for gone in ("summary.json", "3-pick", "8-baseline", "9-random", "7-searched/result.json"):
        path = finished_run / gone
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    metrics = finished_run / "7-searched" / "metrics.jsonl"
    metrics.write_text(metrics.read_text().splitlines()[0] + "\n{\"epoch\": 2, \"lo")  # a line cut short
    page = write_report(finished_run).read_text(encoding="utf-8")
    _assert_self_contained(page)
    assert "still in progress" in page
    assert "training, epoch 1" in page
    assert "Level 1: the distribution of global heads" not in page
    assert len(_images(page)) >= 4
    assert all(png.startswith(PNG) for png in _images(page))
    best = json.loads((finished_run / "5-search" / "result.json").read_text())["score"]
    assert f"{best:.2f}" in page  # the searched architecture's search score, from 5-search


def test_report_during_the_level2_search(finished_run):
    """Mid-search: the diagram shows the level-2 search's best so far, and the stages after it are not started."""
    for gone in ("summary.json", "6-random", "7-searched", "8-baseline", "9-random"):
        path = finished_run / gone
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    page = write_report(finished_run).read_text(encoding="utf-8")
    assert "this is its best so far" in page
    best = json.loads((finished_run / "5-search" / "best.json").read_text())
    assert page.count("<span class='head g'>G</span>") == 1 + sum(b["num_global_heads"] for b in best["blocks"])
    # search progress (2 panels), accuracy vs MACs, supernet curves (2 panels); no final model has trained yet
    assert len(_images(page)) == 5
    assert "No final model has finished an epoch yet." in page


def test_report_without_matplotlib(finished_run, monkeypatch):
    """matplotlib missing: the page still has every number and says how to get the plots."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    page = write_report(finished_run).read_text(encoding="utf-8")
    assert _images(page) == []
    assert "matplotlib is not installed" in page
    assert all(f"{value:.2f}" in page for value in TOP1.values())


def test_report_of_a_run_that_just_started(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(CONFIG)
    _write(run / "run.json", {"command": COMMAND, "preset": "demo", "started": "2025-01-01T12:00:00"})
    page = write_report(run).read_text(encoding="utf-8")
    _assert_self_contained(page)
    assert "still in progress" in page and COMMAND in page
    assert _images(page) == []
    assert page.count("not started") >= 9


def test_no_plot_text_is_clipped(finished_run, monkeypatch):
    """Every title, label and legend of every figure lies inside its PNG; a title too wide is wrapped, not cut."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from glit.report import plots

    checked, real = [], plots.to_base64

    def checking(fig):
        png = real(fig)
        checked.append(plots.overflowing_texts(fig))
        return png

    monkeypatch.setattr(plots, "to_base64", checking)
    write_report(finished_run)
    assert len(checked) == 7 and checked == [[]] * 7

    fig, ax = plots._figure(plots.PANEL_SIZE)
    long = "A title far wider than its panel, as a long dataset or supernet name would make it, and then some more"
    ax.set_title(long, loc="left")
    FigureCanvasAgg(fig)
    assert plots.overflowing_texts(fig) == [long]  # the check sees it
    real(fig)
    assert plots.overflowing_texts(fig) == [] and "\n" in ax.get_title(loc="left")


def test_the_level1_note_says_who_decided_even_for_a_pick_json_without_decided_by(finished_run):
    """``pick.json`` gained ``decided_by`` later: an older run's level-1 round (``2-finalists`` with a winner) still
    makes the note name the round, and without a round the note names the search."""
    from glit.report.html import _pick

    pick = json.loads((finished_run / "3-pick" / "pick.json").read_text())
    del pick["decided_by"]
    round_state = {"winner": {"arch": pick["winner"]}, "finalists": []}
    assert _pick(pick, round_state)["note"].startswith("The finalist round's winner")
    assert _pick(pick, None)["note"].startswith("The best-scored distribution")
    assert _pick(pick, {"finalists": []})["note"].startswith("The best-scored distribution")  # an unfinished round
    assert _pick(pick, None, 3, True)["note"].startswith("The 3 best-scored distributions of the level-1 search went")
    assert "the finalist round after level 2 (below) chose" in _pick(pick, None, 3, True)["note"]
    assert _pick(pick, None, 2)["note"].endswith("the best level-2 score won.")
