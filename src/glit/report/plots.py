"""The report's figures, each returned as a base64 PNG string ready for ``<img src="data:image/png;base64,...">``.

matplotlib is imported inside the functions, so ``import glit`` stays light. The figures are built as
``matplotlib.figure.Figure`` objects drawn on the Agg canvas: no pyplot, no global backend switch, no window, and
safe to call from a process that already uses matplotlib interactively.

Every function takes plain data (lists of dicts as read from the run folder) and returns ``None`` when there is
nothing to draw yet, so the report of an unfinished run shows what exists. A figure of several panels comes back as
a list, one image per panel, so that a narrow screen stacks them instead of shrinking them side by side.
"""

from __future__ import annotations

import base64
import io

from glit.report.read import finite

DPI = 110
FIGSIZE = (8, 4.5)
PANEL_SIZE = (5.2, 4.0)  # one panel of a multi-panel figure

# One colour per finalist, used in every figure and in the page's table.
FINALIST_COLORS = {"searched": "#2563eb", "baseline": "#374151", "random": "#d97706"}
FINALIST_LABELS = {"searched": "searched", "baseline": "DeiT-style baseline", "random": "random search"}
LEVEL_COLORS = {"level1": "#64748b", "level2": "#2563eb", "random": "#d97706"}
BUDGET_COLOR = "#dc2626"
STYLE = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.titleweight": "bold",
    "axes.labelsize": 9.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e7eb",
    "grid.linewidth": 0.8,
    "axes.edgecolor": "#9ca3af",
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "xtick.color": "#4b5563",
    "ytick.color": "#4b5563",
}


def _figure(size: tuple[float, float] = FIGSIZE):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=DPI, layout="constrained")
    return fig, fig.subplots()


def to_base64(fig) -> str:
    """The figure as a base64 PNG string (drawn on the Agg canvas), any text too wide for it wrapped first."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    _wrap_wide_texts(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def overflowing_texts(fig) -> list[str]:
    """What of a figure is drawn past its edges, so clipped in the PNG: the title (or "untitled") of each axes whose
    titles, labels, tick labels or legend reach out, and "figure legend" for a figure legend that does."""
    fig.canvas.draw()
    renderer, box = fig.canvas.get_renderer(), fig.bbox

    def out(e) -> bool:
        return e.x0 < box.x0 - 1 or e.x1 > box.x1 + 1 or e.y0 < box.y0 - 1 or e.y1 > box.y1 + 1

    bad = [" ".join(ax.get_title(loc=loc) for loc in ("left", "center", "right")).strip() or "untitled"
           for ax in fig.axes if out(ax.get_tightbbox(renderer))]
    return bad + ["figure legend" for leg in fig.legends if out(leg.get_window_extent(renderer))]


def _wrap_wide_texts(fig) -> None:
    """Break any text wider than the figure onto lines that fit (constrained layout then makes room for them)."""
    import textwrap

    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for t in fig.findobj(Text):
        text = t.get_text()
        width = t.get_window_extent(renderer).width if t.get_visible() and text.strip() else 0
        if width > 0.95 * fig.bbox.width:
            t.set_text(textwrap.fill(text, max(10, int(len(text) * 0.9 * fig.bbox.width / width))))


def _render(draw) -> str | list[str] | None:
    """Run ``draw`` under the report's style; it returns a figure, a list of them (panels), or None."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        fig = draw()
        if isinstance(fig, list):
            return [to_base64(f) for f in fig]
        return None if fig is None else to_base64(fig)


def search_progress(level1: list[dict] | None, level2: list[dict] | None, random: list[dict] | None) -> str | None:
    """Best and mean search score per generation: level 1 on the left; level 2 and random search (over the whole
    space, with its own supernet; a generation is one batch of candidates) on the right.

    Each argument is a list of ``{"generation", "best", "mean", "count"}`` rows, or None when that search is absent.
    """
    if not (level1 or level2 or random):
        return None

    def draw():
        (left_fig, left), (right_fig, right) = _figure(PANEL_SIZE), _figure(PANEL_SIZE)
        panels = [(left, "Level 1: global-head distributions", [("level 1", level1, LEVEL_COLORS["level1"])]),
                  (right, "Level 2 and random search",
                   [("level-2 evolution", level2, LEVEL_COLORS["level2"]),
                    ("random search", random, LEVEL_COLORS["random"])])]
        for ax, title, series in panels:
            ax.set_title(title, loc="left")
            ax.set_xlabel("generation")
            ax.set_ylabel("search-split top-1 (%)")
            drawn = False
            for label, rows, color in series:
                if not rows:
                    continue
                gens = [r["generation"] for r in rows]
                ax.plot(gens, [r["best"] for r in rows], "-o", color=color, ms=3.5, lw=1.8, label=f"{label}: best")
                ax.plot(gens, [r["mean"] for r in rows], "--", color=color, lw=1.3, alpha=0.85,
                        label=f"{label}: mean")
                drawn = True
            if drawn:
                ax.legend(loc="lower right")
                _integer_ticks(ax, [r["generation"] for _, rows, _ in series for r in rows or []])
            else:
                ax.text(0.5, 0.5, "not run yet", ha="center", va="center", transform=ax.transAxes, color="#6b7280")
                ax.set_xticks([])
                ax.set_yticks([])
        return [left_fig, right_fig]

    return _render(draw)


AXES = {"macs": ("MACs", "MACs per image (M)", 1e6, "M MACs"),
        "latency_ms": ("predicted latency", "predicted latency per call (ms, the latency table's)", 1.0, "ms")}


def accuracy_vs_cost(level1: list[dict], level2: list[dict], random: list[dict], pareto: list[dict],
                     budget: float | None, finalists: dict[str, dict], x: str = "macs") -> str | None:
    """Every scored candidate as search score against its cost, with the level-2 Pareto front, the budget line and
    the finalists. The cost ``x`` is ``"macs"``, or ``"latency_ms"`` (the predicted latency that a search under a
    latency budget records for each candidate); ``budget`` is the limit on it.

    ``level1``, ``level2``, ``random`` and ``pareto`` are candidate rows (``x`` and ``score``). ``finalists`` maps
    "searched", "baseline" and "random" to ``{x, "search_score", "top1"}``; a finalist without a search score
    (the DeiT-style baseline lies outside the level-2 space) is marked at its cost along the top edge instead.
    """
    name, axis_label, scale, unit = AXES[x]
    level1, level2, random = ([r for r in rows if finite(r.get(x))] for rows in (level1, level2, random))
    pareto = [r for r in pareto if finite(r.get(x))]
    if not (level1 or level2 or random):
        return None
    title = f"Every scored candidate: search score against {name}"

    def draw():
        from matplotlib.lines import Line2D

        fig, ax = _figure()
        ax.set_title(title, loc="left")
        ax.set_xlabel(axis_label)
        ax.set_ylabel("search-split top-1 (%), inherited weights")
        for rows, label, color, marker, size, alpha in [
            (level1, "level-1 candidates", LEVEL_COLORS["level1"], "o", 14, 0.4),
            (random, "random-search candidates, whole space", LEVEL_COLORS["random"], "^", 16, 0.55),
            (level2, "level-2 candidates", LEVEL_COLORS["level2"], "o", 14, 0.55),
        ]:
            if rows:
                ax.scatter([r[x] / scale for r in rows], [r["score"] for r in rows], s=size, c=color,
                           marker=marker, alpha=alpha, linewidths=0, label=f"{label} ({len(rows)})")
        if pareto:
            front = sorted(pareto, key=lambda r: r[x])
            xs, ys = [r[x] / scale for r in front], [r["score"] for r in front]
            right = max([r[x] / scale for r in level2] + xs)
            ax.step(xs + [right], ys + ys[-1:], where="post", color="#1e3a8a", lw=1.6,
                    label="level-2 Pareto front")  # the best score reachable at each cost, up to the costliest
        if finite(budget):
            ax.axvline(budget / scale, color=BUDGET_COLOR, ls="--", lw=1.4,
                       label=f"budget ({budget / scale:,.2f} {unit})")
        markers = {"searched": ("*", 260), "random": ("D", 80), "baseline": ("s", 80)}
        unscored = []
        for key in ("searched", "random", "baseline"):
            f = finalists.get(key)
            if not f or not finite(f.get(x)):
                continue
            marker, size = markers[key]
            test = f" (test {f['top1']:.2f}%)" if finite(f.get("top1")) else ""
            label = f"{FINALIST_LABELS[key]}{test}"
            if finite(f.get("search_score")):
                ax.scatter([f[x] / scale], [f["search_score"]], marker=marker, s=size,
                           c=FINALIST_COLORS[key], edgecolors="black", linewidths=0.9, zorder=5, label=label)
            else:
                unscored.append((key, f, label))
        for key, f, _ in unscored:
            # Not in the searched space, so no search score: a marker on the top edge at its cost.
            ax.plot([f[x] / scale], [1.0], marker="v", ms=11, color=FINALIST_COLORS[key], mec="black", mew=0.9,
                    transform=ax.get_xaxis_transform(), clip_on=False, zorder=6, ls="none")
        ax.margins(x=0.04, y=0.1)
        scores = sorted(r["score"] for rows in (level1, level2, random) for r in rows or [])
        floor = scores[len(scores) // 4] if len(scores) >= 20 else None  # the top three quarters: where it is decided
        low, high = ax.get_ylim()
        high = min(high, 100.5)  # a top-1 never passes 100
        ax.set_ylim(low, high)
        if floor is not None and floor - low > 0.15 * (high - low):
            hidden = sum(1 for x in scores if x < floor - 0.5)
            ax.set_ylim(floor - 0.5, high)
            ax.set_title(f"{title} ({hidden} lower, off the axis)", loc="left")
        handles, labels = ax.get_legend_handles_labels()
        for key, _, label in unscored:
            handles.append(Line2D([], [], marker="v", ls="none", ms=8, color=FINALIST_COLORS[key], mec="black"))
            labels.append(f"{label}: no search score, marked on the top edge")
        fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8)
        return fig

    return _render(draw)


def training_curves(runs: dict[str, list[dict]]) -> str | None:
    """Loss and test top-1 per epoch of the three final trainings. ``runs`` maps a finalist to its metrics rows."""
    runs = {name: rows for name, rows in runs.items() if rows}

    def plot(loss_ax, top1_ax, name, rows):
        color, label = FINALIST_COLORS.get(name, "#6b7280"), FINALIST_LABELS.get(name, name)
        _line(loss_ax, rows, "loss", "-", color, label)
        _line(loss_ax, rows, "eval_loss", "--", color, None)
        _line(top1_ax, rows, "top1", "-o", color, label)

    return _epoch_curves(runs, ("Loss (solid: train, dashed: test)", "Test top-1 (%)"), plot, (1, "lower right"))


def supernet_curves(level1: list[dict] | None, level2: list[dict] | None,
                    whole: list[dict] | None = None) -> str | None:
    """Training loss and the search-split top-1 of a few fixed paths, per epoch, of the supernets: level 1, level 2
    and the whole-space one of the random-search baseline."""
    names = {"level-1 supernet": "level1", "level-2 supernet": "level2", "whole-space supernet (random)": "random"}
    runs = {name: rows for name, rows in zip(names, (level1, level2, whole)) if rows}
    colors = {name: LEVEL_COLORS[key] for name, key in names.items()}

    def plot(loss_ax, top1_ax, name, rows):
        _line(loss_ax, rows, "loss", "-", colors[name], name)
        _line(top1_ax, rows, "top1", "-o", colors[name], name)

    return _epoch_curves(runs, ("Supernet training loss", "Search-split top-1 of fixed paths (%)"), plot,
                         (0, "upper right"))


def _epoch_curves(runs: dict[str, list[dict]], titles: tuple[str, str], plot, legend: tuple[int, str]) -> str | None:
    """Two panels over epochs (a loss and a top-1); ``plot(loss_ax, top1_ax, name, rows)`` draws one run on both,
    and ``legend`` is the panel index and place of the legend. None when there is nothing to draw."""
    if not runs:
        return None

    def draw():
        figs, axes = zip(*(_figure(PANEL_SIZE) for _ in titles))
        for ax, title in zip(axes, titles):
            ax.set_title(title, loc="left")
            ax.set_xlabel("epoch")
        for name, rows in runs.items():
            plot(*axes, name, rows)
        axes[legend[0]].legend(loc=legend[1])
        for ax in axes:
            _integer_ticks(ax, [r.get("epoch") for rows in runs.values() for r in rows])
        _zoom_top1(axes[1], [r.get("top1") for rows in runs.values() for r in rows[len(rows) // 2:]])
        return list(figs)

    return _render(draw)


def _zoom_top1(ax, late: list) -> None:
    """Zoom a top-1 axis onto the second half of training, where the runs are compared: early epochs (far lower)
    fall off the bottom, which the axis label says."""
    late = [v for v in late if finite(v)]
    low, high = ax.get_ylim()
    if late and min(late) - low > 10:
        spread = max(late) - min(late)
        ax.set_ylim(min(late) - max(1.0, 0.5 * spread), min(high, max(late) + max(0.5, 0.25 * spread)))
        ax.set_ylabel("zoomed on the second half of training", fontsize=8, color="#6b7280")


def _line(ax, rows: list[dict], key: str, style: str, color: str, label: str | None) -> None:
    points = [(r["epoch"], r[key]) for r in rows if finite(r.get(key)) and finite(r.get("epoch"))]
    if points:
        xs, ys = zip(*points)
        if len(points) == 1:
            style += "" if "o" in style else "o"  # a lone point needs a marker to show
        elif len(points) > 25:
            style = style.replace("o", "")  # markers on hundreds of epochs only blur the line
        ax.plot(xs, ys, style, color=color, lw=1.8, ms=3.5, label=label)


def _integer_ticks(ax, values: list) -> None:
    """Epochs and generations are whole numbers: tick each one when there are few, else whole numbers only."""
    values = sorted({v for v in values if finite(v)})
    if 0 < len(values) <= 12:
        ax.set_xticks(values)
    else:
        ax.xaxis.get_major_locator().set_params(integer=True)
