"""``glit compare RUN_DIR...``: the claim over pipeline seeds, read from finished ``glit run`` folders.

For each run: its seed, each finalist's test top-1, and the searched architecture's paired differences against the
DeiT-style baseline and the random-search winner (``summary.json``'s ``comparisons``: McNemar verdicts on the same
test images). Over the runs: for each difference, its values per seed, ``n``, ``mean``, ``std`` and ``p_value``, a
one-sample t-test over seeds (scipy's ``ttest_1samp``, one-sided: is the mean difference above 0?). A run without
``summary.json`` is listed as not finished and never counted. A run folder that also holds ``glit ablate --study
search``'s table (one retraining seed) adds ``one_level`` and ``vs_one_level`` (hierarchy minus one-level search),
over the runs that have it. Reads files only; trains nothing. The terminal
table is ``glit.text.compare_table``, the page ``glit.report.compare``.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from scipy import stats

from glit.errors import GlitError
from glit.folder import read_config
from glit.layout import COMPARISONS, FINALISTS, SUMMARY, ablation_file


def compare_runs(dirs: list[str | Path]) -> dict:
    """The per-run rows and the statistics over the finished runs (module doc)."""
    if not dirs:
        raise GlitError("glit compare: give at least one glit run folder")
    runs = []
    for d in map(Path, dirs):
        if not (d / "config.yaml").is_file():
            raise GlitError(f"{d}: not a glit run folder (no config.yaml)")
        seed = read_config(d / "config.yaml").seed
        summary_file = d / SUMMARY
        if not summary_file.is_file():
            runs.append({"dir": str(d), "seed": seed, "finished": False})
            continue
        s = json.loads(summary_file.read_text())
        row = {"dir": str(d), "seed": seed, "finished": True, **{f: s[f]["top1"] for f in FINALISTS}}
        for key, _, _ in COMPARISONS:
            c = s["comparisons"][key]
            row[key] = {"difference": c["difference"], "verdict": c.get("verdict"), "p_value": c.get("p_value")}
        one = _one_level(d)
        if one is not None:
            row["one_level"] = one["top1"]
            c = one["vs_first"]
            row["vs_one_level"] = {"difference": c["difference"], "verdict": c.get("verdict"),
                                   "p_value": c.get("p_value")}
        runs.append(row)
    done = [r for r in runs if r["finished"]]
    seeds = [r["seed"] for r in done]
    if len(set(seeds)) < len(seeds):
        raise GlitError(f"glit compare: two runs have the same seed ({seeds}); a claim over seeds needs one run each")
    result = {"runs": runs, "finished": len(done), "not_finished": len(runs) - len(done)}
    for f in FINALISTS:
        result[f] = summarise([r[f] for r in done], seeds, test=False)
    for key, _, _ in COMPARISONS:
        result[key] = summarise([r[key]["difference"] for r in done], seeds, test=True)
    ablated = [r for r in done if "vs_one_level" in r]
    if ablated:  # the runs with glit ablate --study search: the hierarchy against one-level search
        result["one_level"] = summarise([r["one_level"] for r in ablated], [r["seed"] for r in ablated], test=False)
        result["vs_one_level"] = summarise([r["vs_one_level"]["difference"] for r in ablated],
                                           [r["seed"] for r in ablated], test=True)
    return result


def _one_level(run_dir: Path) -> dict | None:
    """The one-level row of the run's ``glit ablate --study search`` table, if it has one for the run's own seed."""
    try:
        table = json.loads((run_dir / ablation_file("search")).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise GlitError(f"{run_dir / ablation_file('search')}: unreadable ablation table ({err})") from None
    row = next((r for r in table.get("rows", []) if r.get("name") == "one-level"), None)
    if row is None or len(row.get("top1_seeds", [])) != 1 or not row.get("vs_first", {}).get("verdict"):
        return None  # over several retraining seeds it is not one pipeline seed's figure
    return row


def summarise(values: list[float], seeds: list, test: bool) -> dict:
    """``per_seed``, ``n``, ``mean``, ``std`` (null under 2) and, for a difference, the one-sided ``p_value``."""
    out = {"per_seed": dict(zip(map(str, seeds), values)), "n": len(values),
           "mean": statistics.fmean(values) if values else None,
           "std": statistics.stdev(values) if len(values) > 1 else None}
    if test:
        p = stats.ttest_1samp(values, 0.0, alternative="greater").pvalue if len(values) > 1 else math.nan
        out["p_value"] = None if math.isnan(p) else float(p)
    return out
