"""``glit compare RUN_DIR...``: the claim over pipeline seeds, read from finished ``glit run`` folders.

For each run: its seed, each finalist's test top-1, and the searched architecture's paired differences against the
DeiT-style baseline and the random-search winner (``summary.json``'s ``comparisons``: McNemar verdicts on the same
test images). Over the runs: for each difference, its values per seed, ``n``, ``mean``, ``std`` and ``p_value``, a
one-sample t-test over seeds (scipy's ``ttest_1samp``, one-sided: is the mean difference above 0?). A run without
``summary.json`` is listed as not finished and never counted. Reads files only; trains nothing.
"""

from __future__ import annotations

import html
import json
import math
import statistics
from pathlib import Path

import yaml
from scipy import stats

from glit.errors import GlitError
from glit.layout import FINALISTS, SUMMARY

DIFFERENCES = (("vs_baseline", "baseline", "DeiT-style"), ("vs_random", "random", "random search"))


def compare_runs(dirs: list[str | Path]) -> dict:
    """The per-run rows and the statistics over the finished runs (module doc)."""
    if not dirs:
        raise GlitError("glit compare: give at least one glit run folder")
    runs = []
    for d in map(Path, dirs):
        if not (d / "config.yaml").is_file():
            raise GlitError(f"{d}: not a glit run folder (no config.yaml)")
        seed = (yaml.safe_load((d / "config.yaml").read_text()) or {}).get("seed")
        summary_file = d / SUMMARY
        if not summary_file.is_file():
            runs.append({"dir": str(d), "seed": seed, "finished": False})
            continue
        s = json.loads(summary_file.read_text())
        row = {"dir": str(d), "seed": seed, "finished": True, **{f: s[f]["top1"] for f in FINALISTS}}
        for key, _, _ in DIFFERENCES:
            c = s["comparisons"][key]
            row[key] = {"difference": c["difference"], "verdict": c.get("verdict"), "p_value": c.get("p_value")}
        runs.append(row)
    done = [r for r in runs if r["finished"]]
    seeds = [r["seed"] for r in done]
    if len(set(seeds)) < len(seeds):
        raise GlitError(f"glit compare: two runs have the same seed ({seeds}); a claim over seeds needs one run each")
    result = {"runs": runs, "finished": len(done), "not_finished": len(runs) - len(done)}
    for f in FINALISTS:
        result[f] = summarise([r[f] for r in done], seeds, test=False)
    for key, _, _ in DIFFERENCES:
        result[key] = summarise([r[key]["difference"] for r in done], seeds, test=True)
    return result


def summarise(values: list[float], seeds: list, test: bool) -> dict:
    """``per_seed``, ``n``, ``mean``, ``std`` (null under 2) and, for a difference, the one-sided ``p_value``."""
    out = {"per_seed": dict(zip(map(str, seeds), values)), "n": len(values),
           "mean": statistics.fmean(values) if values else None,
           "std": statistics.stdev(values) if len(values) > 1 else None}
    if test:
        p = stats.ttest_1samp(values, 0.0, alternative="greater").pvalue if len(values) > 1 else math.nan
        out["p_value"] = None if math.isnan(p) else float(p)
    return out


def _pm(s: dict) -> str:
    if s["mean"] is None:
        return "-"
    return f"{s['mean']:+.2f}" + (f" ± {s['std']:.2f}" if s["std"] is not None else "")


def _p(s: dict) -> str:
    return "-" if s.get("p_value") is None else f"{s['p_value']:.3g}"


def format_compare(result: dict) -> str:
    """The table ``glit compare`` prints."""
    lines = [f"{'seed':>6} {'searched':>9} {'baseline':>9} {'random':>9} {'vs DeiT-style':>22} {'vs random':>22}"]
    for r in result["runs"]:
        if not r["finished"]:
            lines.append(f"{str(r['seed']):>6}  not finished ({r['dir']}): not counted")
            continue
        diffs = [f"{r[k]['difference']:+.2f} {r[k]['verdict'] or '':<12.12}" for k, _, _ in DIFFERENCES]
        lines.append(f"{str(r['seed']):>6} {r['searched']:>8.2f}% {r['baseline']:>8.2f}% {r['random']:>8.2f}% "
                     f"{diffs[0]:>22} {diffs[1]:>22}")
    tops = " ".join(f"{_pm(result[f]).lstrip('+'):>9}" for f in FINALISTS)
    lines.append(f"{'mean':>6} {tops}")
    for key, _, name in DIFFERENCES:
        s = result[key]
        lines.append(f"searched - {name}: {_pm(s)} points over {s['n']} seeds; one-sided t-test over seeds p = "
                     f"{_p(s)}")
    if result["not_finished"]:
        lines.append(f"{result['not_finished']} run(s) not finished: not counted")
    return "\n".join(lines)


def compare_html(result: dict) -> str:
    """A self-contained page of the same table."""
    e = html.escape
    rows = []
    for r in result["runs"]:
        if not r["finished"]:
            rows.append(f"<tr><td>{e(str(r['seed']))}</td><td colspan='5'>not finished ({e(r['dir'])}): not "
                        "counted</td></tr>")
            continue
        cells = [f"{r[f]:.2f}%" for f in FINALISTS]
        cells += [f"{r[k]['difference']:+.2f} ({r[k]['verdict'] or 'no test'})" for k, _, _ in DIFFERENCES]
        rows.append(f"<tr><td>{e(str(r['seed']))}</td>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    means = "".join(f"<td>{e(_pm(result[f]).lstrip('+'))}</td>" for f in FINALISTS)
    means += "".join(f"<td>{e(_pm(result[k]))}</td>" for k, _, _ in DIFFERENCES)
    claims = "".join(f"<li>searched − {e(name)}: {e(_pm(result[k]))} points over {result[k]['n']} seeds; one-sided "
                     f"t-test over seeds p = {e(_p(result[k]))}</li>" for k, _, name in DIFFERENCES)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>glit compare</title>
<style>body{{font:15px/1.45 system-ui,sans-serif;margin:1rem auto;max-width:60rem;padding:0 1rem}}
.wrap{{overflow-x:auto}}table{{border-collapse:collapse}}td,th{{padding:.25rem .6rem;border-bottom:1px solid #ddd;
text-align:right;white-space:nowrap}}th{{background:#f4f4f4}}</style></head><body>
<h1>glit compare: {result['finished']} finished runs</h1><ul>{claims}</ul><div class="wrap"><table>
<tr><th>seed</th><th>searched</th><th>DeiT-style</th><th>random</th><th>searched − DeiT-style</th>
<th>searched − random</th></tr>{''.join(rows)}<tr><th>mean ± std</th>{means}</tr></table></div></body></html>
"""
