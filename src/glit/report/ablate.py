"""The page of ``glit ablate``: ``ablation-<study>.html`` from the study's ``ablation-<study>.json``, in the run
report's style (the template ``ablation.html``)."""

from __future__ import annotations

from pathlib import Path

from glit.files import write_text_atomic
from glit.report.html import render_page
from glit.verdict import describe

WHAT = {"search": "The hierarchy against one-level search and random search over the same space, each winner "
                  "retrained from scratch; the DeiT-style architecture for reference.",
        "locality": "One architecture with each local operator in its local heads, and the all-global baseline, each "
                    "retrained from scratch."}


def write_ablation_page(out: Path, result: dict) -> Path:
    """Write ``out/ablation-<study>.html`` for ``result`` (what ``glit.recipes.ablate.ablate`` returns)."""
    page = Path(out) / f"ablation-{result['study']}.html"
    write_text_atomic(page, render(result))
    return page


def render(result: dict) -> str:
    """``ablation-<study>.html``: the table and the verdicts, self-contained."""
    rows = result["rows"]
    cells = [{"name": r["name"], "params": f"{r['params']:,}", "macs": f"{r['macs'] / 1e6:,.2f}",
              "candidates": "–" if r["candidates"] is None else f"{r['candidates']:,}", "top1": f"{r['top1']:.2f}",
              "spread": f" ± {r['top1_std']:.2f}" if r["top1_std"] is not None else "",
              "seeds": ", ".join(f"{t:.2f}" for t in r["top1_seeds"]), "folders": [Path(f).name for f in r["folders"]]}
             for r in rows]
    verdicts = [describe(r["vs_first"], rows[0]["name"], r["name"]) for r in rows[1:] if r["vs_first"].get("verdict")]
    return render_page("ablation.html", title=f"GLiT ablation · {result['study']}", study=result["study"],
                       preset=result["preset"], seeds=str(result["seeds"]), what=WHAT[result["study"]], rows=cells,
                       verdicts=verdicts, first=rows[0]["name"], command=result["command"])
