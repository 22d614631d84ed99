"""The HTML report of ``glit run``: one self-contained file, ``DIR/report.html``, readable in any browser.

``write_report(run_dir)`` reads the run folder (``run.json``, ``config.yaml``, ``summary.json`` and the stage folders
``1-supernet`` ... ``9-random``, see ``glit.recipes.run``) and writes the page atomically. Every piece is optional:
the report of a run still in progress, or one whose optional ``3-pick`` stage never ran, shows what exists and says
what does not. The plots are PNGs embedded as base64 data URLs, the style sheet is inline, and there is no script,
so the file can be mailed or archived on its own. All text from the run folder is HTML-escaped.
"""

from __future__ import annotations

import functools
import math
import shlex
import statistics
from html import escape
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from glit.files import write_text_atomic
from glit.genes import DETAIL_GENES, LOCAL_OPS
from glit.layout import FINAL_DIRS, FINALISTS, PICK_DIR, SEARCH_DIRS, STAGES, SUPERNET_DIRS
from glit.report import plots
from glit.report.read import (
    RunData,
    finite,
    generation_stats,
    read_run,
)
from glit.text import fmt_pct, fmt_seconds, incumbent_text


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.html`` from whatever the run folder holds, atomically; return its path."""
    run_dir = Path(run_dir)
    page = render(read_run(run_dir))
    out = run_dir / "report.html"
    write_text_atomic(out, page)
    return out


def fmt_count(n) -> str:
    if not finite(n):
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:,.2f} {unit}"
    return f"{n:,.0f}"


def fmt_macs(n) -> str:
    return f"{n / 1e6:,.2f}" if finite(n) else "—"


def _points(d: float) -> str:
    return f"{'+' if d >= 0 else '−'}{abs(d):.2f} points"


def _comparison(a: dict, b: dict, b_name: str) -> str | None:
    """An honest clause: the searched model's test top-1 against another finalist's, with the MACs ratio."""
    if not (finite(a.get("top1")) and finite(b.get("top1"))):
        return None
    d = a["top1"] - b["top1"]
    ratio = f" at {a['macs'] / b['macs']:.0%} of its MACs" if finite(a.get("macs")) and b.get("macs") else ""
    if abs(d) < 0.005:
        return f"<b>matches</b> {b_name} ({b['top1']:.2f}%){ratio}"
    if d > 0:
        return f"<b class='better'>beats</b> {b_name} ({b['top1']:.2f}%) by <b class='better'>{_points(d)}</b>{ratio}"
    return f"<b class='worse'>trails</b> {b_name} ({b['top1']:.2f}%) by <b class='worse'>{_points(d)}</b>{ratio}"


def _verdict(c: dict, b: dict, b_name: str) -> str:
    """The paired verdict (``glit.verdict``) on the searched model against another finalist, as a sentence."""
    low, high = c["ci95"]
    cls = {"better": "better", "worse": "worse"}.get(c["verdict"], "tie")
    said = {"better": "the searched model is better", "worse": "the searched model is worse",
            "no difference detected": f"no difference detected at {c['images']:,} test images"}[c["verdict"]]
    return (f"Against {b_name} ({b['top1']:.2f}%): {_points(c['difference'])} (95% interval {low:+.2f} to "
            f"{high:+.2f}, McNemar p = {c['p_value']:.2g}; {c['only_a']} test images only the searched model gets "
            f"right, {c['only_b']} only {b_name}): <b class='{cls}'>{said}</b>.")


def _headline(fin: dict[str, dict], comparisons: dict | None = None) -> str:
    searched = fin["searched"]
    if not finite(searched.get("top1")):
        return ""
    text = f"The searched architecture reaches <b>{searched['top1']:.2f}%</b> test top-1"
    pairs = (("vs_baseline", "baseline", "the DeiT-style baseline"),
             ("vs_random", "random", "the random-search winner"))
    verdicts = [_verdict(comparisons[key], fin[other], name) for key, other, name in pairs
                if (comparisons or {}).get(key, {}).get("verdict") and finite(fin[other].get("top1"))]
    if verdicts:
        return f"<p class='lead'>{text}.</p>" + "".join(f"<p class='lead verdict'>{v}</p>" for v in verdicts)
    clauses = [c for c in (_comparison(searched, fin[other], name) for _, other, name in pairs) if c]
    text += (". It " + ", and ".join(clauses) + ".") if clauses else "."
    return f"<p class='lead'>{text}</p>"


def _noise(run: RunData) -> str:
    """How much a difference of test top-1 can be chance: one image's worth, and the binomial standard error."""
    seeds = (run.summary or {}).get("searched", {}).get("top1_seeds") or []
    if len(seeds) > 1:
        text = (f"Each test top-1 is the mean over {len(seeds)} training seeds (searched: "
                + ", ".join(f"{x:.2f}" for x in seeds) + f"; std {statistics.stdev(seeds):.2f}); the verdicts pool "
                "the paired disagreements of every seed.")
    else:
        text = "Each number comes from one training run with one seed."
    n = next((rows[-1].get("images") for rows in run.final_metrics.values() if rows), None)
    p = run.finalists["searched"].get("top1")
    if not (finite(n) and n > 0 and finite(p)):
        return text
    se = 100 * math.sqrt(max(p / 100 * (1 - p / 100), 0.0) / n)
    return (f"{text} The test split has {n:,} images: one image is {100 / n:.2f} points, and the binomial standard "
            f"error of a top-1 near {p:.0f}% is about {se:.2f} points, so read smaller differences as a tie.")


def _img(b64: str | list[str] | None, alt: str, missing: str) -> str:
    """One embedded image, or a row of panels (one image each) that a narrow screen stacks."""
    if b64 is None:
        return f"<p class='muted'>{escape(missing)}</p>"
    if isinstance(b64, list):
        return "<div class='panels'>" + "".join(_img(b, alt, missing) for b in b64) + "</div>"
    return f"<img alt='{escape(alt)}' src='data:image/png;base64,{b64}'>"


def _heads(arch: dict | None) -> str:
    if not arch:
        return "—"
    return " · ".join(str(b.get("num_global_heads")) for b in arch.get("blocks", []))


def page(title: str, parts: list[str], footer: str) -> str:
    """The page: ``page.html`` (jinja2, autoescaped) with the stylesheet ``style.css`` inlined. ``parts`` are HTML
    fragments whose text this module has escaped (``html.escape``); the title and the footer are plain text."""
    template = _templates().get_template("page.html")
    return template.render(title=title, css=Markup(_STYLE.read_text(encoding="utf-8")),
                           parts=[Markup(p) for p in parts], footer=footer)


_STYLE = resources.files("glit.report") / "style.css"


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("glit.report", "."), autoescape=True,
                              keep_trailing_newline=True)


def render(run: RunData) -> str:
    try:
        import matplotlib  # noqa: F401

        have_plots = True
    except ImportError:
        have_plots = False
    info, cfg, fin = run.info, run.config, run.finalists
    preset = info.get("preset") or cfg.get("preset") or "?"
    parts = [f"<header><h1>GLiT search report <span class='muted'>· preset {escape(str(preset))}</span></h1>"]
    total = sum(run.times.values()) if run.times else None
    meta = [("started", info.get("started")), ("time", fmt_seconds(total) if total is not None else None),
            ("budget", run.budget_text), ("data", _data_text(cfg)), ("seed", cfg.get("seed")),
            ("machine", info.get("machine")), ("torch", info.get("torch")), ("glit", info.get("glit")),
            ("folder", str(run.run_dir))]
    parts.append("<p class='meta'>" + " &nbsp;·&nbsp; ".join(
        f"<span>{escape(k)}: <b>{escape(str(v))}</b></span>" for k, v in meta if v is not None) + "</p></header>")
    if run.summary is None:
        done = [label for folder, label in STAGES if (run.run_dir / folder).exists()]
        parts.append("<div class='banner'><b>This run is still in progress, or stopped early:</b> summary.json is "
                     "missing. The report shows the stages that exist so far"
                     + (f" (last: {escape(done[-1])})" if done else "") + ".</div>")
    if not have_plots:
        parts.append("<div class='banner'>matplotlib is not installed, so the plots are left out "
                     "(<code>pip install matplotlib</code>, then <code>python -c \"from glit.report import "
                     "write_report; write_report('DIR')\"</code>).</div>")

    # -- the headline result
    rows = []
    for name in FINALISTS:
        f = fin[name]
        label = {"searched": "Searched (GLiT)", "baseline": "DeiT-style baseline", "random": "Random search"}[name]
        score = fmt_pct(f.get("search_score")) if name != "baseline" or finite(f.get("search_score")) else \
            "<span class='muted' title='outside the level-2 space'>n/a</span>"
        rows.append([f"<span class='dot' style='background:{plots.FINALIST_COLORS[name]}'></span>{escape(label)}",
                     f"<b>{escape(fmt_pct(f.get('top1')))}</b>" if f["state"] == "done" else escape(f["state"]),
                     escape(fmt_count(f.get("params"))), escape(fmt_macs(f.get("macs"))), score,
                     escape(fmt_seconds(f.get("train_seconds"))), escape(_heads(f.get("arch")))])
    parts.append("<section><h2>Result</h2>")
    parts.append(table(["", "Test top-1 (%)", "Params", "MACs (M)", "Search score (%)", "Train time",
                        "Global heads per block"], rows, cls="headline"))
    parts.append(_headline(fin, (run.summary or {}).get("comparisons")))
    if all(isinstance(fin[name].get("latency_ms"), dict) for name in FINALISTS):
        parts.append("<p class='note'>Latency per call (latency budget): " + ", ".join(
            f"{escape(name)} {fin[name]['latency_ms'].get('predicted', 0):.3g} ms predicted, "
            f"{fin[name]['latency_ms'].get('measured', 0):.3g} ms measured" for name in FINALISTS)
            + " (the latency table's device, batch and threads).</p>")
    parts.append("<p class='note'>All three are trained from scratch with the same recipe and seed and evaluated "
                 "on the held-out test split, which the search never sees. The search score is the top-1 on the "
                 "search split (carved from the training set) with weights inherited from a supernet: the "
                 "level-2 one for the searched architecture, the whole-space one for the random-search winner "
                 "(so the two are not on one scale). The DeiT-style baseline lies outside both spaces, so it has "
                 "none. "
                 + escape(_noise(run)) + "</p></section>")

    # -- the winning architecture
    parts.append("<section><h2>The searched architecture</h2>")
    winner = fin["searched"].get("arch")
    if winner and run.summary is None and not (run.run_dir / FINAL_DIRS["searched"]).exists():
        parts.append("<p class='banner'>The level-2 search is still running: this is its best so far.</p>")
    macs = fin["searched"].get("block_macs")
    parts.append(block_diagram(winner, macs) if winner else "<p class='muted'>The level-2 search has not started.</p>")
    incumbent = (run.results.get("level2") or {}).get("incumbent")
    if isinstance(incumbent, dict):
        parts.append(f"<p class='note'>{escape(incumbent_text(incumbent))}</p>")
    if run.pick:
        parts.append("<h3>Level 1: the distribution of global heads</h3>")
        parts.append(pick_table(run.pick))
    parts.append("</section>")

    # -- the search
    stats = {key: generation_stats(rows) for key, rows in run.candidates.items()}
    counts = ", ".join(f"{len(run.candidates[k])} {label}" for k, label in
                       (("level1", "level-1"), ("level2", "level-2"), ("random", "random-search")) if run.candidates[k])
    parts.append("<section><h2>Search</h2>")
    parts.append(f"<p>Scored candidates: {escape(counts) or 'none yet'}. Every candidate is checked against the "
                 f"budget ({escape(run.budget_text or 'unknown')}) before it is scored.</p>")
    parts.append(_space_table(run))
    if have_plots:
        parts.append(_img(plots.search_progress(stats["level1"], stats["level2"], stats["random"]),
                          "best and mean score per generation", "No search has scored a candidate yet."))
        # Under a latency budget the candidates are plotted against their predicted latency, else their MACs.
        x = "latency_ms" if run.budget_latency_ms is not None else "macs"
        finalists = {name: {"macs": fin[name].get("macs"), "search_score": fin[name].get("search_score"),
                            "top1": fin[name].get("top1"),
                            "latency_ms": (fin[name].get("latency_ms") or {}).get("predicted")} for name in FINALISTS}
        parts.append(_img(plots.accuracy_vs_cost(run.candidates["level1"], run.candidates["level2"],
                                                 run.candidates["random"], run.pareto,
                                                 run.budget_latency_ms if x == "latency_ms" else run.budget_macs,
                                                 finalists, x),
                          f"search score against {plots.AXES[x][0]}", "No candidates to plot yet."))
        whole = (run.config.get("search") or {}).get("level1_supernet") == "whole"
        level1 = "trained over the whole space" if whole else "trained on the level-1 paths"
        parts.append("<p class='note'>Each search scores with its own supernet: level 1 with the level-1 "
                     f"supernet ({level1}; the search varies only the global-head distribution, the details fixed "
                     "at their level-1 values), level 2 with the level-2 "
                     "supernet around the winning distribution, and random search with a supernet over the whole "
                     "space (every gene free). Compare scores across searches with care. The Pareto front holds the "
                     "level-2 candidates that no other beats on both score and cost (MACs, or the predicted latency "
                     "under a latency budget).</p>")
    parts.append(generation_table(stats))
    parts.append(_saturation(run))
    parts.append(_top_candidates(run))
    if run.summary and isinstance(run.summary.get("health"), dict):
        parts.append(health_table(run.summary["health"]))
    parts.append("</section>")

    # -- training
    parts.append("<section><h2>Training</h2>")
    if have_plots:
        parts.append("<h3>The three final models</h3>")
        parts.append(_img(plots.training_curves(run.final_metrics), "training curves of the final models",
                          "No final model has finished an epoch yet."))
        parts.append("<h3>The supernets</h3>")
        parts.append(_img(plots.supernet_curves(run.supernets["level1"], run.supernets["level2"],
                                                run.supernets["random"]),
                          "supernet training curves", "No supernet has finished an epoch yet."))
    parts.append(_stage_table(run))
    parts.append("</section>")

    # -- reproduce
    parts.append("<section><h2>Reproduce</h2>")
    parts.append(_commands(run))
    if run.config_text is not None:
        parts.append(f"<h3>Config <span class='muted'>(config.yaml, resolved)</span></h3>"
                     f"<pre class='config'>{escape(run.config_text)}</pre>")
    else:
        parts.append("<p class='muted'>config.yaml is missing.</p>")
    parts.append("</section>")

    return page(f"GLiT report · {preset}", parts,
                "Written by glit.report. One self-contained file: no scripts, no external resources.")


SEARCH_LABELS = (("level1", "Level 1", "the level-1 supernet"), ("level2", "Level 2", "the level-2 supernet"),
                 ("random", "Random search", "the whole-space supernet"))


def _space_table(run: RunData) -> str:
    """Each search's space: the genes it varies, how many architectures it holds, how many were scored."""
    spaces = run.spaces
    if spaces.get("random") is None:
        return ""
    varied = [g for g in DETAIL_GENES if spaces["random"] and any(len(getattr(c, g)) > 1
                                                                 for c in spaces["random"].blocks)]
    genes = {"level1": "num_global_heads per block (details at their level-1 values)",
             "level2": f"{', '.join(varied)} per block (distribution fixed)",
             "random": "every gene of every block"}
    rows = []
    for key, label, _ in SEARCH_LABELS:
        space, scored = spaces[key], len(run.candidates.get(key) or [])
        size = f"{space.size():.3g}" if space is not None else "—"
        share = f"{scored / space.size():.2g}" if space is not None and scored else "—"
        rows.append([escape(label), escape(genes[key]), escape(size), f"{scored:,}", escape(share)])
    return "<h3>Search spaces</h3>" + table(["Search", "Varies", "Architectures", "Scored", "Share scored"], rows,
                                            cls="spaces")


def _top_candidates(run: RunData, k: int = 5) -> str:
    """The best k candidates of each search, with the supernet that scored them."""
    parts = []
    for key, label, scorer in SEARCH_LABELS:
        rows = sorted(run.candidates.get(key) or [], key=lambda r: (-r["score"], r["macs"]))[:k]
        if not rows:
            continue
        body = [[str(i + 1), f"{r['score']:.2f}", escape(fmt_macs(r["macs"])), escape(fmt_count(r.get("params"))),
                 escape(_heads(r.get("arch")))] for i, r in enumerate(rows)]
        parts.append(f"<h3>{escape(label)}: top {len(rows)} <span class='muted'>(search-split top-1 with weights "
                     f"inherited from {escape(scorer)})</span></h3>"
                     + table(["Rank", "Score (%)", "MACs (M)", "Params", "Global heads per block"], body, cls="top"))
    return "".join(parts)


def _saturation(run: RunData) -> str:
    """Says when a search split is saturated: many candidates within the noise of the best score, so the search
    cannot tell them apart and its pick among them is close to chance."""
    n = _dig(run.config, "data", "search_size")
    if not n:
        return ""
    notes = []
    for key, label in (("level1", "level-1"), ("level2", "level-2"), ("random", "random")):
        scores = [r["score"] for r in run.candidates.get(key) or []]
        if len(scores) < 5:
            continue
        best = max(scores)
        p = min(max(best / 100, 0.5 / n), 1 - 0.5 / n)  # a perfect score still has the noise of one image
        noise = 100 * 1.96 * math.sqrt(2 * p * (1 - p) / n)  # 95% of the difference of two scores on n images
        close = sum(1 for x in scores if best - x <= noise)
        if close >= max(5, len(scores) // 10):
            notes.append(f"{close} of the {len(scores)} {label} candidates score within {noise:.2f} points of the "
                         f"best ({best:.2f}%)")
    if not notes:
        return ""
    return ("<p class='banner'><b>The search split is saturated.</b> " + escape("; ".join(notes))
            + f". On a search split of {n:,} images, two scores closer than that cannot be told apart (95%), so the "
            "search's pick among those candidates is close to chance; a larger search split "
            "(<code>data.search_size</code>) or a harder one would separate them.</p>")


def _data_text(cfg: dict) -> str | None:
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    source = data.get("source")
    if source is None:
        return None
    return f"{source} ({data['root']})" if data.get("root") else str(source)


def _stage_table(run: RunData) -> str:
    """Where each stage of the pipeline stands. A stage is done once a later one has started (or the summary is
    written), except the stages that write a final file: the pick and the three trainings."""
    level1_epochs = _dig(run.config, "supernet", "optim", "epochs")
    level2_epochs = _dig(run.config, "search", "level2_epochs") or level1_epochs
    supernet_epochs = {"level1": level1_epochs, "level2": level2_epochs, "random": level2_epochs}
    train_epochs = _dig(run.config, "train", "epochs")
    role = {folder: (kind, key) for kind, dirs in (("supernet", SUPERNET_DIRS), ("search", SEARCH_DIRS),
                                                   ("final", FINAL_DIRS)) for key, folder in dirs.items()}
    started = [(run.run_dir / folder).exists() for folder, _ in STAGES]
    rows = []
    for i, (folder, label) in enumerate(STAGES):
        if not started[i]:
            skipped = folder == PICK_DIR and any(started[i + 1:])  # optional: a run may go straight to level 2
            rows.append([escape(folder), escape(label), f"<span class='muted'>{'skipped' if skipped else 'not started'}"
                         "</span>", ""])
            continue
        done, detail = run.summary is not None or any(started[i + 1:]), ""
        kind, key = role.get(folder, ("pick", None))
        if kind == "supernet":
            last, total = (run.supernets[key] or [{}])[-1], supernet_epochs[key]
            detail = f"{last.get('epoch', 0)}{'/' + str(total) if total else ''} epochs" + (
                f", fixed-path top-1 {last['top1']:.2f}%" if finite(last.get("top1")) else "")
        elif kind == "search":
            result = run.results.get(key) or {}
            detail = f"{len(run.candidates[key])} scored" + (
                f", best {result['score']:.2f}%" if finite(result.get("score")) else "")
        elif kind == "pick":
            done = run.pick is not None
        else:
            f = run.finalists[key]
            done = f["state"] == "done"
            detail = f"{len(run.final_metrics[key])}{'/' + str(train_epochs) if train_epochs else ''} epochs" + (
                f", test top-1 {f['top1']:.2f}%" if finite(f.get("top1")) else "")
        state = "<span class='state done'>done</span>" if done else "<span class='state running'>in progress</span>"
        spent = run.times.get(folder.split("/")[0]) if folder != "6-random/search" else None
        rows.append([f"<a href='{escape(folder)}/'>{escape(folder)}</a>", escape(label), state, escape(detail),
                     escape(fmt_seconds(spent)) if spent is not None else ""])
    files = " · ".join(f"<a href='{name}'>{name}</a>" for name in ("summary.json", "config.yaml", "run.json",
                                                                   "times.json") if (run.run_dir / name).exists())
    total = f" In all: {fmt_seconds(sum(run.times.values()))} of wall time." if run.times else ""
    return ("<h3>Pipeline</h3>" + table(["Folder", "Stage", "State", "", "Time"], rows, cls="stages")
            + f"<p class='note'>The folders and files are relative to this page.{total} Files: {files}. "
              "(The random-search baseline's time covers its supernet and its search.)</p>")


def _get(d: dict, *keys):
    """``d[k1][k2]...``, or None where a level is missing or not a dict."""
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def _dig(d: dict, *keys):
    """A finite number at ``d[k1][k2]...``, or None."""
    d = _get(d, *keys)
    return d if finite(d) else None


def _commands(run: RunData) -> str:
    command = run.info.get("command") or f"glit run {run.info.get('preset') or run.config.get('preset') or 'demo'}" \
                                          f" --out {run.run_dir}"
    try:
        words = shlex.split(command)
        out = words[words.index("--out") + 1]
    except (ValueError, IndexError):
        out = str(run.run_dir)
    lines = [
        "<p>To reproduce this run, run the command that made it (run it again on the same folder to continue an "
        "unfinished run; a finished stage is never recomputed):</p>",
        f"<pre class='cmd'><code>{escape(command)}</code></pre>",
        "<p>or start a fresh run from the resolved config saved with it, which pins every setting even if the "
        "preset's defaults change:</p>",
        f"<pre class='cmd'><code>{escape(f'glit run --config {out}/config.yaml --out {out}-repro')}</code></pre>",
        "<p class='note'>The same seed, config and data give the same result on CPU. The searched architecture is "
        f"in <code>{escape(out)}/{FINAL_DIRS['searched']}/arch.json</code>; "
        f"<code>glit profile --arch {escape(out)}/{FINAL_DIRS['searched']}/arch.json</code> prints its cost.</p>",
    ]
    extra = run.info.get("commands")
    if isinstance(extra, list) and extra:
        lines.append("<pre class='cmd'><code>" + escape("\n".join(map(str, extra))) + "</code></pre>")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- page pieces

def table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    """An HTML table; ``header`` is plain text (escaped here), the cells are HTML already escaped by the caller."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<div class='scroll'><table class='{escape(cls)}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody>" \
           "</table></div>"


def _ratio(x) -> str:
    return "—" if x is None else f"×{x:g}"


def block_diagram(arch: dict, block_macs: list | None = None) -> str:
    """A row per block: a bar of head slots (global, then local, as the channels are split), the genes, and each
    block's MACs where the run recorded them."""
    fam = arch.get("family", {})
    heads = int(fam.get("num_heads") or 0)
    blocks = arch.get("blocks", [])
    if not isinstance(block_macs, list) or len(block_macs) != len(blocks):
        block_macs = [None] * len(blocks)
    top = max((m for m in block_macs if m), default=1)
    rows = []
    for i, (b, macs) in enumerate(zip(blocks, block_macs)):
        g = int(b.get("num_global_heads") or 0)
        cells = "".join(f"<span class='head {'g' if h < g else 'l'}'>{'G' if h < g else 'L'}</span>"
                        for h in range(heads))
        glob = f"{g} head{'s' * (g != 1)}, qkv {_ratio(b.get('qkv_ratio'))}" if g else "<span class='muted'>—</span>"
        local = (f"{heads - g} head{'s' * (heads - g != 1)}, {b.get('local_op') or 'conv1d'} E "
                 f"{_ratio(b.get('conv_ratio'))}, kernel {b.get('kernel_size')}") if g < heads \
            else "<span class='muted'>—</span>"
        bar = "" if macs is None else \
            f"<span class='macsbar' style='width:{60 * macs / top:.0f}px'></span>{macs / 1e6:,.3f}"
        rows.append([f"{i + 1}", f"<span class='heads'>{cells}</span>", escape(glob) if g else glob,
                     escape(local) if g < heads else local, escape(_ratio(b.get("mlp_ratio"))), bar])
    n_global = sum(int(b.get("num_global_heads") or 0) for b in blocks)
    n_all = heads * len(blocks)
    lead = (f"<p>{len(blocks)} blocks of {heads} head slots (D = {fam.get('embed_dim')}, "
            f"{fam.get('img_size')} px images in {fam.get('patch_size')} px patches): "
            f"<b>{n_global}</b> global and <b>{n_all - n_global}</b> local heads in all. "
            "<span class='legend'><span class='head g'>G</span> global self-attention head "
            "<span class='head l'>L</span> local head (its module: "
            + escape("; ".join(f"{op.name}, {op.legend}" for op in LOCAL_OPS.values())) + ")</span></p>")
    return lead + table(["Block", "Heads", "Global part", "Local part", "MLP", "MACs (M)"], rows, cls="blocks")


def generation_table(stats: dict[str, list[dict]]) -> str:
    """Best, mean and count per generation, a column group per search."""
    names = [(k, label) for k, label in (("level1", "Level 1"), ("level2", "Level 2"), ("random", "Random"))
             if stats.get(k)]
    if not names:
        return ""
    by_gen = {k: {r["generation"]: r for r in stats[k]} for k, _ in names}
    gens = sorted({g for k, _ in names for g in by_gen[k]})
    head = "<tr><th rowspan='2'>Generation</th>" + "".join(
        f"<th colspan='3' class='group'>{escape(label)}</th>" for _, label in names) + "</tr><tr>" + \
        "<th>best</th><th>mean</th><th>n</th>" * len(names) + "</tr>"
    body = []
    for g in gens:
        cells = [f"<td>{g}</td>"]
        for k, _ in names:
            r = by_gen[k].get(g)
            cells += [f"<td class='first'>{fmt_pct(r['best'])}</td><td>{fmt_pct(r['mean'])}</td><td>{r['count']}</td>"
                      if r else "<td class='first'></td><td></td><td></td>"]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return ("<h3>Per generation <span class='muted'>(search-split top-1, %)</span></h3><div class='scroll'>"
            f"<table class='gens'><thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>")


def health_table(health: dict) -> str:
    """How well each supernet ranks a ground truth (``glit truth``), next to the search it drove."""
    names = {"level1": ("Level-1 supernet", "level-1 search (its level-1 members)"),
             "level2": ("Level-2 supernet", "level-2 search"),
             "random": ("Whole-space supernet", "random search")}
    rows = []
    ceiling = None
    for name, r in (health.get("supernets") or {}).items():
        label, drove = names.get(name, (name, "?"))
        if not isinstance(r, dict):
            continue
        ceiling = r.get("noise_ceiling_tau") if finite(r.get("noise_ceiling_tau")) else ceiling
        if not r.get("n"):
            rows.append([escape(label), escape(drove), "0", f"<span class='muted'>{escape(r.get('error', ''))}</span>",
                         "", "", "", "", ""])
            continue
        rows.append([escape(label), escape(drove), str(r["n"]),
                     *(escape(f"{r[k]:.2f}") if finite(r.get(k)) else "—"
                       for k in ("kendall_tau", "spearman_rho", "macs_kendall_tau")),
                     escape(f"{r['precision_at_5']:.1f}") if finite(r.get("precision_at_5")) else "—",
                     escape(f"{r['regret']:+.2f}") if finite(r.get("regret")) else "—",
                     str(r.get("skipped", "—"))])
    note = (f"Noise ceiling: Kendall τ {ceiling:.2f} between two training seeds of the same architectures, what a "
            "perfect supernet could reach given retraining noise. " if finite(ceiling) else "")
    return ("<h3>Supernet health</h3>" + table(["Supernet", "Drove", "Ranked", "Kendall τ", "Spearman ρ",
                                                "τ of MACs alone", "Precision at 5", "Regret (points)", "Skipped"],
                                               rows)
            + f"<p class='note'>Each supernet scores the architectures of {escape(str(health.get('truth')))} "
              "(trained from scratch by glit truth) that its search could pick, as the search scores a candidate, "
              "against their mean test top-1 over seeds. Regret is the true top-1 of its favourite minus the true "
              "best. τ of MACs alone is how well the architectures' MACs rank them: the trivial predictor a "
              f"supernet should beat. {note}</p>")


def pick_table(pick: dict) -> str:
    """The level-1 top-k distributions and which one won."""
    winner = [b.get("num_global_heads") for b in (pick.get("winner") or {}).get("blocks", [])]
    rows = []
    for i, c in enumerate(pick.get("candidates") or []):
        arch = c.get("arch") or {}
        won = [b.get("num_global_heads") for b in arch.get("blocks", [])] == winner
        rows.append([f"{i + 1}", escape(_heads(arch)), escape(fmt_pct(c.get("score"))),
                     escape(fmt_pct(c.get("retrain_top1"))), "<b class='better'>winner</b>" if won else ""])
    retrained = any(finite(c.get("retrain_top1")) for c in pick.get("candidates") or [])
    note = ("The top distributions of the level-1 search were each retrained briefly (without the search split) "
            "and scored on the search split; the best went on to level 2." if retrained else
            "The best-scored distribution of the level-1 search went on to level 2.")
    return f"<p>{note}</p>" + table(["Rank", "Global heads per block", "Search score (%)", "Short retrain top-1 (%)",
                                     ""], rows, cls="pick")

