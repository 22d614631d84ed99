"""The page of ``glit compare --html``: the table over pipeline seeds (``glit.recipes.compare.compare_runs``'s
result), in the run report's style."""

from __future__ import annotations

from glit.layout import COMPARISONS, FINALISTS
from glit.report.html import render_page
from glit.text import CLAIMS, fmt_mean_std, fmt_p


def render(result: dict) -> str:
    rows = []
    for r in result["runs"]:
        cells = [] if not r["finished"] else [f"{r[f]:.2f}%" for f in FINALISTS] + [
            f"{r[k]['difference']:+.2f} ({r[k]['verdict'] or 'no test'})" for k, _, _ in COMPARISONS]
        rows.append({"seed": str(r["seed"]), "finished": r["finished"], "dir": r["dir"], "cells": cells})
    means = [fmt_mean_std(result[f]).lstrip("+") for f in FINALISTS] + [fmt_mean_std(result[k])
                                                                         for k, _, _ in COMPARISONS]
    claims = [{"name": name, "mean_std": fmt_mean_std(result[k]), "n": result[k]["n"], "p": fmt_p(result[k])}
              for k, name in CLAIMS if k in result]
    return render_page("compare.html", title="glit compare", finished=result["finished"], rows=rows, means=means,
                       claims=claims)
