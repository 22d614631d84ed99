"""Reading a ``glit run`` folder for the report: every file is optional, and a half-written one reads as missing."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from glit.layout import (
    FINAL_DIRS,
    FINALISTS,
    PICK_DIR,
    ROUND_DIRS,
    ROUND_FILE,
    RUN_JSON,
    SEARCH_DIRS,
    STAGE,
    SUMMARY,
    SUPERNET_DIRS,
    TIMES,
)
from glit.space import SearchSpace


@dataclass
class RunData:
    """Everything the report reads from a run folder; a missing or half-written file reads as None or empty."""

    run_dir: Path
    info: dict = field(default_factory=dict)
    config_text: str | None = None
    config: dict = field(default_factory=dict)
    summary: dict | None = None
    supernets: dict[str, list[dict]] = field(default_factory=dict)
    candidates: dict[str, list[dict]] = field(default_factory=dict)
    results: dict[str, dict | None] = field(default_factory=dict)
    pareto: list[dict] = field(default_factory=list)
    pick: dict | None = None
    rounds: dict[str, dict | None] = field(default_factory=dict)  # each finalist round's finalists.json
    final_metrics: dict[str, list[dict]] = field(default_factory=dict)
    finalists: dict[str, dict] = field(default_factory=dict)
    budget_macs: float | None = None
    budget_latency_ms: float | None = None  # a latency budget's limit (ms); the search plot then uses latency
    budget_text: str | None = None
    times: dict[str, float] = field(default_factory=dict)  # seconds per stage folder (times.json)
    spaces: dict[str, SearchSpace | None] = field(default_factory=dict)  # each search's space (its stage.json)


# ---------------------------------------------------------------------------------------------------------- reading

def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _jsonl(path: Path) -> list[dict]:
    """The rows of a JSONL file; a line cut short by a writer still at work is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _space(stage_file: Path) -> SearchSpace | None:
    """The space a search recorded in its stage.json; None before it started, or in a folder from before stage.json."""
    try:
        return SearchSpace.from_dict(json.loads(stage_file.read_text(encoding="utf-8"))["space"])
    except (OSError, ValueError, KeyError, TypeError):  # GlitError is a ValueError
        return None


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def read_run(run_dir: Path) -> RunData:
    run = RunData(run_dir)
    run.info = _json(run_dir / RUN_JSON) or {}
    try:
        run.config_text = (run_dir / "config.yaml").read_text(encoding="utf-8")
    except OSError:
        pass
    if run.config_text:
        import yaml

        try:
            config = yaml.safe_load(run.config_text)
        except yaml.YAMLError:  # a malformed file: show its text, read nothing from it
            config = None
        run.config = config if isinstance(config, dict) else {}
    summary = _json(run_dir / SUMMARY)
    run.summary = summary if isinstance(summary, dict) else None
    for key, folder in SUPERNET_DIRS.items():
        run.supernets[key] = _jsonl(run_dir / folder / "metrics.jsonl")
    for key, folder in SEARCH_DIRS.items():
        run.candidates[key] = [r for r in _jsonl(run_dir / folder / "candidates.jsonl")
                               if finite(r.get("macs")) and finite(r.get("score"))]
        result = _json(run_dir / folder / "result.json")
        run.results[key] = result if isinstance(result, dict) else None
        run.spaces[key] = _space(run_dir / folder / STAGE)
    pareto = _json(run_dir / SEARCH_DIRS["level2"] / "pareto.json")
    run.pareto = [r for r in pareto if isinstance(r, dict)] if isinstance(pareto, list) else []
    pick = _json(run_dir / PICK_DIR / "pick.json")
    run.pick = pick if isinstance(pick, dict) else None
    for key, folder in ROUND_DIRS.items():
        state = _json(run_dir / folder / ROUND_FILE)
        run.rounds[key] = state if isinstance(state, dict) else None
    for name in FINALISTS:
        run.final_metrics[name] = _jsonl(run_dir / FINAL_DIRS[name] / "metrics.jsonl")
    run.finalists = {name: _finalist(run, name) for name in FINALISTS}
    run.budget_macs, run.budget_latency_ms, run.budget_text = _budget(run)
    times = _json(run_dir / TIMES)
    run.times = {k: v for k, v in times.items() if finite(v)} if isinstance(times, dict) else {}
    return run


def _finalist(run: RunData, name: str) -> dict:
    """One finalist from summary.json, or, while the run is in progress, from its stage folders (the DeiT-style
    baseline once its stage has written its arch.json: the report builds no architecture itself)."""
    folder = run.run_dir / FINAL_DIRS[name]
    searched_by = {"searched": "level2", "random": "random"}.get(name)  # the search it comes from (baseline: none)
    search = run.results.get(searched_by) or {}
    f = dict((run.summary or {}).get(name) or {})
    result = _json(folder / "result.json") or {}
    arch = f.get("arch") or _json(folder / "arch.json")
    if arch is None and searched_by:
        arch = _json(run.run_dir / SEARCH_DIRS[searched_by] / "best.json")
    f["arch"] = arch
    for key in ("top1", "params", "macs", "train_seconds"):
        if f.get(key) is None:
            f[key] = result.get(key)
    # the costs the run recorded (the report computes none): the stage's result, else its search's answer's
    recorded = result if result.get("block_macs") else search if search.get("arch") == arch else {}
    for key in ("params", "macs", "block_macs"):
        if f.get(key) is None:
            f[key] = recorded.get(key)
    if "search_score" not in f:
        f["search_score"] = search.get("score")
    metrics = run.final_metrics.get(name) or []
    if finite(f.get("top1")):
        f["state"] = "done"
    elif metrics:
        f["state"] = f"training, epoch {metrics[-1].get('epoch', len(metrics))}"
    else:
        f["state"] = "not started"
    return f


def _budget(run: RunData) -> tuple[float | None, float | None, str | None]:
    """The MACs limit, the latency limit (ms) and the budget's text, from the summary or any search's result."""
    s = run.summary or {}
    macs, latency, text = s.get("budget_macs"), None, s.get("budget_text")
    for key in ("level2", "random", "level1"):
        result = run.results.get(key) or {}
        if macs is None:
            macs = (result.get("budget") or {}).get("max_macs")
        if latency is None:
            latency = (result.get("budget") or {}).get("max_latency_ms")
        if text is None:
            text = result.get("budget_text")
    return (macs if finite(macs) else None), (latency if finite(latency) else None), text


def generation_stats(rows: list[dict]) -> list[dict]:
    """Per generation: the best and mean score and how many candidates were scored."""
    by_gen: dict[int, list[float]] = {}
    for r in rows:
        by_gen.setdefault(int(r.get("generation", 0)), []).append(float(r["score"]))
    return [{"generation": g, "best": max(s), "mean": sum(s) / len(s), "count": len(s)}
            for g, s in sorted(by_gen.items())]


# ---------------------------------------------------------------------------------------------------------- writing
