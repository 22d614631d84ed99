"""The HTML report of ``glit run``: one self-contained file, ``DIR/report.html``, readable in any browser.

``write_report(run_dir)`` reads the run folder (``run.json``, ``config.yaml``, ``summary.json`` and the stage folders
``glit.layout``) and writes the page atomically from the template ``run.html``. Every piece is optional:
the report of a run still in progress, or one whose optional ``3-pick`` stage never ran, shows what exists and says
what does not. The plots are PNGs embedded as base64 data URLs, the style sheet is inline, and there is no script,
so the file can be mailed or archived on its own. All text from the run folder is HTML-escaped.
"""

from __future__ import annotations

import functools
import math
import shlex
import statistics
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

from glit.files import write_text_atomic
from glit.genes import DETAIL_GENES, LOCAL_OPS
from glit.layout import FINAL_DIRS, FINALISTS, OPTIONAL_DIRS, PICK_DIR, ROUND_DIRS, SEARCH_DIRS, STAGES, SUPERNET_DIRS
from glit.report import plots
from glit.report.read import (
    RunData,
    finite,
    generation_stats,
    read_run,
)
from glit.text import fmt_pct, fmt_seconds, incumbent_text
from glit.units import format_count


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.html`` from whatever the run folder holds, atomically; return its path."""
    run_dir = Path(run_dir)
    page = render(read_run(run_dir))
    out = run_dir / "report.html"
    write_text_atomic(out, page)
    return out


def fmt_count(n) -> str:
    return format_count(n) if finite(n) else "—"


def fmt_macs(n) -> str:
    return f"{n / 1e6:,.2f}" if finite(n) else "—"


def _points(d: float) -> str:
    return f"{'+' if d >= 0 else '−'}{abs(d):.2f} points"


def _clause(a: dict, b: dict, b_name: str) -> dict | None:
    """An honest clause: the searched model's test top-1 against another finalist's, with the MACs ratio."""
    if not (finite(a.get("top1")) and finite(b.get("top1"))):
        return None
    d = a["top1"] - b["top1"]
    ratio = f" at {a['macs'] / b['macs']:.0%} of its MACs" if finite(a.get("macs")) and b.get("macs") else ""
    kind, cls = ("matches", "tie") if abs(d) < 0.005 else ("beats", "better") if d > 0 else ("trails", "worse")
    return {"kind": kind, "cls": cls, "name": b_name, "top1": f"{b['top1']:.2f}", "points": _points(d),
            "ratio": ratio}


def _verdict(c: dict, b: dict, b_name: str) -> dict:
    """The paired verdict (``glit.verdict``) on the searched model against another finalist."""
    low, high = c["ci95"]
    said = {"better": "the searched model is better", "worse": "the searched model is worse",
            "no difference detected": f"no difference detected at {c['images']:,} test images"}[c["verdict"]]
    return {"name": b_name, "top1": f"{b['top1']:.2f}", "points": _points(c["difference"]), "low": f"{low:+.2f}",
            "high": f"{high:+.2f}", "p": f"{c['p_value']:.2g}", "only_a": c["only_a"], "only_b": c["only_b"],
            "cls": {"better": "better", "worse": "worse"}.get(c["verdict"], "tie"), "said": said}


def _headline(fin: dict[str, dict], comparisons: dict | None = None) -> dict | None:
    searched = fin["searched"]
    if not finite(searched.get("top1")):
        return None
    pairs = (("vs_baseline", "baseline", "the DeiT-style baseline"),
             ("vs_random", "random", "the random-search winner"))
    verdicts = [_verdict(comparisons[key], fin[other], name) for key, other, name in pairs
                if (comparisons or {}).get(key, {}).get("verdict") and finite(fin[other].get("top1"))]
    clauses = [c for c in (_clause(searched, fin[other], name) for _, other, name in pairs) if c]
    return {"top1": f"{searched['top1']:.2f}", "verdicts": verdicts, "clauses": clauses}


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


def _heads(arch: dict | None) -> str:
    if not arch:
        return "—"
    return " · ".join(str(b.get("num_global_heads")) for b in arch.get("blocks", []))


# ------------------------------------------------------------------------------------------------- the templates

_STYLE = resources.files("glit.report") / "style.css"


@functools.cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("glit.report", "."), autoescape=True,
                              keep_trailing_newline=True, trim_blocks=True)


def render_page(template: str, **values) -> str:
    """A page from one of this package's jinja2 templates (``run.html``, ``ablation.html``, ``compare.html``, each
    extending ``page.html``), autoescaped, with the stylesheet ``style.css`` inlined: the values are plain data and
    the templates hold all the markup."""
    css = Markup(_STYLE.read_text(encoding="utf-8"))
    return _templates().get_template(template).render(css=css, **values)


def render(run: RunData) -> str:
    try:
        import matplotlib  # noqa: F401

        have_plots = True
    except ImportError:
        have_plots = False
    info, cfg, fin = run.info, run.config, run.finalists
    preset = info.get("preset") or cfg.get("preset") or "?"
    total = sum(run.times.values()) if run.times else None
    meta = [("started", info.get("started")), ("time", fmt_seconds(total) if total is not None else None),
            ("budget", run.budget_text), ("data", _data_text(cfg)), ("seed", cfg.get("seed")),
            ("machine", info.get("machine")), ("torch", info.get("torch")), ("glit", info.get("glit")),
            ("folder", str(run.run_dir))]
    done = [label for folder, label in STAGES if (run.run_dir / folder).exists()]
    labels = {"searched": "Searched (GLiT)", "baseline": "DeiT-style baseline", "random": "Random search"}
    result = [{"color": plots.FINALIST_COLORS[name], "label": labels[name], "done": fin[name]["state"] == "done",
               "top1": fmt_pct(fin[name].get("top1")), "state": fin[name]["state"],
               "params": fmt_count(fin[name].get("params")), "macs": fmt_macs(fin[name].get("macs")),
               "score": None if name == "baseline" and not finite(fin[name].get("search_score"))
               else fmt_pct(fin[name].get("search_score")),
               "train_time": fmt_seconds(fin[name].get("train_seconds")), "heads": _heads(fin[name].get("arch"))}
              for name in FINALISTS]
    latency = None
    if all(isinstance(fin[name].get("latency_ms"), dict) for name in FINALISTS):
        latency = [(name, f"{fin[name]['latency_ms'].get('predicted', 0):.3g}",
                    f"{fin[name]['latency_ms'].get('measured', 0):.3g}") for name in FINALISTS]
    winner = fin["searched"].get("arch")
    incumbent = (run.results.get("level2") or {}).get("incumbent")
    stats = {key: generation_stats(rows) for key, rows in run.candidates.items()}
    counts = ", ".join(f"{len(run.candidates[k])} {label}" for k, label in
                       (("level1", "level-1"), ("level2", "level-2"), ("random", "random-search")) if run.candidates[k])
    command = run.info.get("command") or f"glit run {info.get('preset') or cfg.get('preset') or 'demo'} " \
                                          f"--out {run.run_dir}"
    extra = run.info.get("commands")
    whole = (cfg.get("search") or {}).get("level1_supernet") == "whole"
    return render_page(
        "run.html", title=f"GLiT report · {preset}", preset=preset, meta=[(k, v) for k, v in meta if v is not None],
        in_progress=run.summary is None, last_stage=done[-1] if done else None, have_plots=have_plots,
        result=result, headline=_headline(fin, (run.summary or {}).get("comparisons")), latency=latency,
        noise=_noise(run),
        still_searching=bool(winner) and run.summary is None and not (run.run_dir / FINAL_DIRS["searched"]).exists(),
        diagram=_block_diagram(winner, fin["searched"].get("block_macs")) if winner else None,
        incumbent=incumbent_text(incumbent) if isinstance(incumbent, dict) else None,
        pick=_pick(run.pick, run.rounds.get("searched"), _dig(cfg, "search", "level2_topk") or 1,
                   bool(run.rounds.get("level2"))) if run.pick else None,
        counts=counts, budget=run.budget_text, spaces=_spaces(run),
        plots=_plots(run, stats) if have_plots else {},
        level1_supernet="trained over the whole space" if whole else "trained on the level-1 paths",
        generations=_generations(stats), saturation=_saturation(run), tops=_top_candidates(run),
        health=_health(run.summary["health"]) if run.summary and isinstance(run.summary.get("health"), dict) else None,
        rounds=_rounds(run),
        stages=_stages(run), total_time=fmt_seconds(total) if total is not None else None,
        files=[name for name in ("summary.json", "config.yaml", "run.json", "times.json")
               if (run.run_dir / name).exists()],
        command=command, out=_out_of(command, run.run_dir), searched_dir=FINAL_DIRS["searched"],
        extra_commands=[str(c) for c in extra] if isinstance(extra, list) else [], config_text=run.config_text)


def _plots(run: RunData, stats: dict) -> dict:
    """The page's figures (base64 PNGs, None where there is nothing to plot yet)."""
    fin = run.finalists
    # Under a latency budget the candidates are plotted against their predicted latency, else their MACs.
    x = "latency_ms" if run.budget_latency_ms is not None else "macs"
    finalists = {name: {"macs": fin[name].get("macs"), "search_score": fin[name].get("search_score"),
                        "top1": fin[name].get("top1"),
                        "latency_ms": (fin[name].get("latency_ms") or {}).get("predicted")} for name in FINALISTS}
    return {"progress": plots.search_progress(stats["level1"], stats["level2"], stats["random"]),
            "cost": plots.accuracy_vs_cost(run.candidates["level1"], run.candidates["level2"],
                                           run.candidates["random"], run.pareto,
                                           run.budget_latency_ms if x == "latency_ms" else run.budget_macs,
                                           finalists, x),
            "cost_axis": plots.AXES[x][0],
            "training": plots.training_curves(run.final_metrics),
            "supernets": plots.supernet_curves(run.supernets["level1"], run.supernets["level2"],
                                               run.supernets["random"])}


SEARCH_LABELS = (("level1", "Level 1", "the level-1 supernet"), ("level2", "Level 2", "the level-2 supernet"),
                 ("random", "Random search", "the whole-space supernet"))


def _spaces(run: RunData) -> list[list]:
    """Each search's space: the genes it varies, how many architectures it holds, how many were scored."""
    spaces = run.spaces
    if spaces.get("random") is None:
        return []
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
        rows.append([label, genes[key], size, f"{scored:,}", share])
    return rows


def _top_candidates(run: RunData, k: int = 5) -> list[dict]:
    """The best k candidates of each search, with the supernet that scored them."""
    tops = []
    for key, label, scorer in SEARCH_LABELS:
        rows = sorted(run.candidates.get(key) or [], key=lambda r: (-r["score"], r["macs"]))[:k]
        if rows:
            tops.append({"label": label, "scorer": scorer,
                         "rows": [[i + 1, f"{r['score']:.2f}", fmt_macs(r["macs"]), fmt_count(r.get("params")),
                                   _heads(r.get("arch"))] for i, r in enumerate(rows)]})
    return tops


def _saturation(run: RunData) -> dict | None:
    """Says when a search split is saturated: many candidates within the noise of the best score, so the search
    cannot tell them apart and its pick among them is close to chance."""
    n = _dig(run.config, "data", "search_size")
    if not n:
        return None
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
    return {"notes": notes, "n": f"{n:,}"} if notes else None


def _rounds(run: RunData) -> list[dict]:
    """The finalist rounds (``search.finalists``): each finalist's search score and its re-score, and the winner."""
    rounds = []
    for name, label in (("searched", "The hierarchy's round (level 1: the distribution)"),
                        ("level2", "The hierarchy's round (after level 2: complete architectures)"),
                        ("random", "Random search's round")):
        state = run.rounds.get(name)
        if not state:
            continue
        won = (state.get("winner") or {}).get("arch")
        rows = [{"rank": i + 1, "search_score": fmt_pct(f.get("search_score")),
                 "score": None if not finite(f.get("score")) else f"{f['score']:.4g}",
                 "heads": _heads(f.get("arch")),
                 "won": won is not None and f.get("arch") == won} for i, f in enumerate(state.get("finalists") or [])]
        rounds.append({"label": label, "folder": ROUND_DIRS[name], "k": state.get("k"),
                       "evaluator": state.get("evaluator"), "finished": won is not None, "rows": rows})
    return rounds


def _data_text(cfg: dict) -> str | None:
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    source = data.get("source")
    if source is None:
        return None
    return f"{source} ({data['root']})" if data.get("root") else str(source)


def _stages(run: RunData) -> list[dict]:
    """Where each stage of the pipeline stands. A stage is done once a later one has started (or the summary is
    written), except the stages that write a final file: the pick and the three trainings."""
    level1_epochs = _dig(run.config, "supernet", "optim", "epochs")
    level2_epochs = _dig(run.config, "search", "level2_epochs") or level1_epochs
    supernet_epochs = {"level1": level1_epochs, "level2": level2_epochs, "random": level2_epochs}
    train_epochs = _dig(run.config, "train", "epochs")
    role = {folder: (kind, key) for kind, dirs in (("supernet", SUPERNET_DIRS), ("search", SEARCH_DIRS),
                                                   ("final", FINAL_DIRS), ("round", ROUND_DIRS))
            for key, folder in dirs.items()}
    started = [(run.run_dir / folder).exists() for folder, _ in STAGES]
    rows = []
    for i, (folder, label) in enumerate(STAGES):
        if not started[i]:
            rows.append({"folder": folder, "label": label, "started": False,
                         "skipped": folder in OPTIONAL_DIRS and any(started[i + 1:])})
            continue
        done, detail = run.summary is not None or any(started[i + 1:]), ""
        kind, key = role.get(folder, (None, None))
        if kind == "supernet":
            last, total = (run.supernets[key] or [{}])[-1], supernet_epochs[key]
            detail = f"{last.get('epoch', 0)}{'/' + str(total) if total else ''} epochs" + (
                f", fixed-path top-1 {last['top1']:.2f}%" if finite(last.get("top1")) else "")
        elif kind == "search":
            result = run.results.get(key) or {}
            detail = f"{len(run.candidates[key])} scored" + (
                f", best {result['score']:.2f}%" if finite(result.get("score")) else "")
        elif kind == "round":
            state = run.rounds.get(key) or {}
            scored = sum(1 for f in state.get("finalists") or [] if finite(f.get("score")))
            detail = f"{scored}/{len(state.get('finalists') or [])} finalists scored"
        elif folder == PICK_DIR:
            done = run.pick is not None
        else:
            f = run.finalists[key]
            done = f["state"] == "done"
            detail = f"{len(run.final_metrics[key])}{'/' + str(train_epochs) if train_epochs else ''} epochs" + (
                f", test top-1 {f['top1']:.2f}%" if finite(f.get("top1")) else "")
        top = folder.split("/")[0]  # 6-random's time covers its supernet and search: shown on its first row
        first = folder == next(f for f, _ in STAGES if f.startswith(top))
        spent = run.times.get(folder, run.times.get(top) if first else None)
        rows.append({"folder": folder, "label": label, "started": True, "done": done, "detail": detail,
                     "time": fmt_seconds(spent) if spent is not None else ""})
    return rows


def _get(d: dict, *keys):
    """``d[k1][k2]...``, or None where a level is missing or not a dict."""
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return d


def _dig(d: dict, *keys):
    """A finite number at ``d[k1][k2]...``, or None."""
    d = _get(d, *keys)
    return d if finite(d) else None


def _out_of(command: str, run_dir: Path) -> str:
    """The ``--out`` of the command that made the run, else the folder the report reads."""
    try:
        words = shlex.split(command)
        return words[words.index("--out") + 1]
    except (ValueError, IndexError):
        return str(run_dir)


def _ratio(x) -> str:
    return "—" if x is None else f"×{x:g}"


def _block_diagram(arch: dict, block_macs: list | None = None) -> dict:
    """A row per block: its head slots (global, then local, as the channels are split), the genes, and each
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
        rows.append({
            "index": i + 1, "slots": [h < g for h in range(heads)],
            "glob": f"{g} head{'s' * (g != 1)}, qkv {_ratio(b.get('qkv_ratio'))}" if g else None,
            "local": (f"{heads - g} head{'s' * (heads - g != 1)}, {b.get('local_op') or 'conv1d'} E "
                      f"{_ratio(b.get('conv_ratio'))}, kernel {b.get('kernel_size')}") if g < heads else None,
            "mlp": _ratio(b.get("mlp_ratio")),
            "macs": None if macs is None else f"{macs / 1e6:,.3f}", "bar": f"{60 * (macs or 0) / top:.0f}"})
    n_global = sum(int(b.get("num_global_heads") or 0) for b in blocks)
    return {"blocks": len(blocks), "heads": heads, "embed_dim": fam.get("embed_dim"), "img_size": fam.get("img_size"),
            "patch_size": fam.get("patch_size"), "n_global": n_global, "n_local": heads * len(blocks) - n_global,
            "legend": "; ".join(f"{op.name}, {op.legend}" for op in LOCAL_OPS.values()), "rows": rows}


def _generations(stats: dict[str, list[dict]]) -> dict | None:
    """Best, mean and count per generation, a column group per search."""
    names = [(k, label) for k, label in (("level1", "Level 1"), ("level2", "Level 2"), ("random", "Random"))
             if stats.get(k)]
    if not names:
        return None
    by_gen = {k: {r["generation"]: r for r in stats[k]} for k, _ in names}
    gens = sorted({g for k, _ in names for g in by_gen[k]})
    return {"labels": [label for _, label in names],
            "rows": [(g, [_generation_cell(by_gen[k].get(g)) for k, _ in names]) for g in gens]}


def _generation_cell(r: dict | None) -> dict | None:
    return {"best": fmt_pct(r["best"]), "mean": fmt_pct(r["mean"]), "count": r["count"]} if r else None


def _health(health: dict) -> dict:
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
            rows.append({"label": label, "drove": drove, "error": r.get("error", "")})
            continue
        rows.append({"label": label, "drove": drove, "error": None, "n": r["n"],
                     "tau": _num(r, "kendall_tau", "{:.2f}"), "rho": _num(r, "spearman_rho", "{:.2f}"),
                     "macs_tau": _num(r, "macs_kendall_tau", "{:.2f}"), "p5": _num(r, "precision_at_5", "{:.1f}"),
                     "regret": _num(r, "regret", "{:+.2f}"), "skipped": r.get("skipped", "—")})
    return {"rows": rows, "truth": str(health.get("truth")),
            "ceiling": f"{ceiling:.2f}" if finite(ceiling) else None}


def _num(d: dict, key: str, form: str) -> str:
    return form.format(d[key]) if finite(d.get(key)) else "—"


def _pick(pick: dict, round_: dict | None = None, level2_topk: int = 1, level2_round: bool = False) -> dict:
    """The level-1 top-k distributions and which one won (``round_``: the level-1 finalist round's state, for runs
    whose ``pick.json`` predates its ``decided_by``); ``level2_topk`` of them went to level 2, and with
    ``level2_round`` a finalist round after level 2 chose among their searches' answers."""
    winner = [b.get("num_global_heads") for b in (pick.get("winner") or {}).get("blocks", [])]
    rows = []
    for i, c in enumerate(pick.get("candidates") or []):
        arch = c.get("arch") or {}
        rows.append({"rank": i + 1, "heads": _heads(arch), "score": fmt_pct(c.get("score")),
                     "retrain": fmt_pct(c.get("retrain_top1")),
                     "won": [b.get("num_global_heads") for b in arch.get("blocks", [])] == winner})
    # retrain_top1: runs of glit before search.topk_retrain_epochs was retired, which retrained the top-k briefly
    retrained = any(finite(c.get("retrain_top1")) for c in pick.get("candidates") or [])
    decided_by = pick.get("decided_by") or ("round" if (round_ or {}).get("winner") else "search")
    if decided_by == "round":
        note = "The finalist round's winner (see the finalist round below) went on to level 2."
    elif retrained:
        note = ("The top distributions of the level-1 search were each retrained briefly (without the search "
                "split) and scored on the search split; the best went on to level 2.")
    elif level2_topk > 1:
        then = "the finalist round after level 2 (below) chose among their answers and best candidates" if \
            level2_round else "the best level-2 score won"
        note = (f"The {level2_topk} best-scored distributions of the level-1 search went on to level 2, each "
                f"searched for its details; {then}.")
    else:
        note = "The best-scored distribution of the level-1 search went on to level 2."
    return {"note": note, "rows": rows, "retrained": retrained}
