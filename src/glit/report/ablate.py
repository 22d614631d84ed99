"""The page of ``glit ablate``: ``ablation-<study>.html`` from the study's ``ablation-<study>.json``, in the run
report's style."""

from __future__ import annotations

from html import escape
from pathlib import Path

from glit.files import write_text_atomic
from glit.report.html import page, table
from glit.verdict import describe


def write_ablation_page(out: Path, result: dict) -> Path:
    """Write ``out/ablation-<study>.html`` for ``result`` (what ``glit.recipes.ablate.ablate`` returns)."""
    page = Path(out) / f"ablation-{result['study']}.html"
    write_text_atomic(page, render(result))
    return page


def render(result: dict) -> str:
    """``ablation-<study>.html``: the table and the verdicts, self-contained, in the run report's style."""
    rows = result["rows"]
    cells = []
    for r in rows:
        spread = f" ± {r['top1_std']:.2f}" if r["top1_std"] is not None else ""
        links = " ".join(f"<a href='{escape(Path(f).name)}/'>{escape(Path(f).name)}</a>" for f in r["folders"])
        cells.append([escape(r["name"]), f"{r['params']:,}", f"{r['macs'] / 1e6:,.2f}",
                      "–" if r["candidates"] is None else f"{r['candidates']:,}",
                      f"<b>{r['top1']:.2f}%</b>{spread}", ", ".join(f"{t:.2f}" for t in r["top1_seeds"]), links])
    verdicts = "".join(f"<li>{escape(describe(r['vs_first'], rows[0]['name'], r['name']))}</li>"
                       for r in rows[1:] if r["vs_first"].get("verdict"))
    what = {"search": "The hierarchy against one-level search and random search over the same space, each winner "
                      "retrained from scratch; the DeiT-style architecture for reference.",
            "locality": "One architecture with each local operator in its local heads, and the all-global "
                        "baseline, each retrained from scratch."}[result["study"]]
    body = (f"<header><h1>GLiT ablation <span class='muted'>· {escape(result['study'])} · preset "
            f"{escape(result['preset'])}</span></h1><p class='meta'>seeds {escape(str(result['seeds']))}</p></header>"
            f"<section><p>{escape(what)}</p>"
            + table(["Model", "Params", "MACs (M)", "Candidates scored", "Test top-1 (mean ± std)", "Per seed",
                     "Folders"], cells)
            + (f"<h3>Paired tests against {escape(rows[0]['name'])} (same test images, pooled over seeds)</h3>"
               f"<ul>{verdicts}</ul>" if verdicts else "")
            + f"<h3>Command</h3><pre class='cmd'><code>{escape(result['command'])}</code></pre></section>")
    return page(f"GLiT ablation · {result['study']}", [body], "Written by glit ablate. One self-contained file.")
