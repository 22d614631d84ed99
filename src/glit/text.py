"""Numbers, sentences and tables as a person reads them: what the terminal prints, and the phrases the report
shares with it. Plain Python."""

from __future__ import annotations

import math

from glit.layout import COMPARISONS, FINALISTS
from glit.verdict import describe


def fmt_seconds(s) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``; ``—`` for a missing or non-finite value."""
    if not isinstance(s, int | float) or not math.isfinite(s):
        return "—"
    s = round(s)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def fmt_pct(x) -> str:
    """``54.64``; ``—`` for a missing or non-finite value."""
    return f"{x:.2f}" if isinstance(x, int | float) and math.isfinite(x) else "—"


def incumbent_text(inc: dict) -> str:
    """What the level-2 search did with the level-1 winner (its incumbent)."""
    m = inc.get("margin_points")
    margin = f"{m:.2f}" if isinstance(m, int | float) and math.isfinite(m) else "—"
    if inc.get("kept"):
        return (f"Level 2 kept the level-1 winner's details: it scored {fmt_pct(inc.get('score'))}% on the search "
                f"split, and no level-2 candidate beat that by more than the {margin}-point margin (the best scored "
                f"{fmt_pct(inc.get('best_score'))}%).")
    return (f"Level 2 replaced the level-1 winner's details: the best candidate scored "
            f"{fmt_pct(inc.get('best_score'))}%, more than {margin} points above the level-1 winner's "
            f"{fmt_pct(inc.get('score'))}%.")


def round_text(round_: dict, searches: int, retrained: dict | None) -> str:
    """What the hierarchy's finalist round after level 2 (``summary.json``'s ``finalists.searched``) did; its winner
    is the finalist that was retrained (``retrained``, the searched architecture)."""
    finalists = round_.get("finalists") or []
    won = next((i for i, f in enumerate(finalists) if f.get("arch") == retrained), None)
    which = "" if won is None else \
        f": finalist {won + 1} (search score {fmt_pct(finalists[won].get('search_score'))}%) won and was retrained"
    of = f" of {searches} level-2 searches" if searches > 1 else " of the level-2 search"
    return (f"The finalist round after level 2 re-scored {len(finalists)} architectures{of} with "
            f"{round_.get('evaluator')}{which}.")


# -- what glit run, glit ablate and the supernet health print ------------------------------------------------------

def run_table(summary: dict) -> str:
    """The comparison table that ``glit run`` prints at the end."""
    lines = [f"\n{'':<10} {'params':>10} {'MACs':>10} {'test top-1':>11} {'search score':>13} {'train time':>11}"]
    for name in FINALISTS:
        r = summary[name]
        score = "-" if r["search_score"] is None else f"{r['search_score']:.2f}%"
        spread = f"  (mean of {len(r['top1_seeds'])} seeds, std {r['top1_std']:.2f})" if r.get("top1_std") else ""
        lines.append(f"{name:<10} {r['params']:>10,} {r['macs'] / 1e6:>9.2f}M {r['top1']:>10.2f}% {score:>13} "
                     f"{r['train_seconds']:>10.0f}s{spread}")
    if all(summary[name].get("latency_ms") for name in FINALISTS):
        lines.append("latency (ms, predicted / measured here): " + ", ".join(
            f"{name} {summary[name]['latency_ms']['predicted']:.3g} / {summary[name]['latency_ms']['measured']:.3g}"
            for name in FINALISTS))
    ratio = summary["searched"]["macs"] / summary["baseline"]["macs"]
    lines.append(f"\nBudget: {summary['budget_text']}; the searched architecture has {ratio:.0%} of the DeiT-style "
                 "MACs.")
    incumbent = summary["search"].get("level2_incumbent")
    level2_round = (summary.get("finalists") or {}).get("searched") or {}
    if level2_round.get("level") == 2:
        lines.append(round_text(level2_round, max(1, len(summary["search"].get("level2_runs") or [])),
                                summary["searched"]["arch"]))
    elif incumbent:
        lines.append(incumbent_text(incumbent))
    if summary.get("health"):
        lines.append("\n".join(health_lines(summary["health"])))
    times = summary.get("stage_seconds") or {}
    if times:
        lines.append(f"time: {fmt_seconds(sum(times.values()))} in all ("
                     + ", ".join(f"{k} {fmt_seconds(v)}" for k, v in times.items()) + ")")
    lines.append("\nThe answer (test top-1 of the searched architecture against each baseline, paired on the same "
                 "test images):")
    for key, other in (("vs_baseline", "DeiT-style"), ("vs_random", "random search")):
        c = summary["comparisons"][key]
        if c["verdict"] is None:
            lines.append(f"  searched vs {other}: {c['difference']:+.2f} points of test top-1 (no per-image "
                         "results to test)")
        else:
            lines.append("  " + describe(c, "searched", other))
    return "\n".join(lines)


def health_lines(health: dict) -> list[str]:
    """One line per supernet, for the table that ``glit run`` prints."""
    lines = [f"supernet health against {health['truth']}:"]
    names = {"level1": "level-1 supernet (level-1 part)", "level2": "level-2 supernet", "random": "whole-space "
             "supernet (random search)"}
    for name, r in health["supernets"].items():
        if not r.get("n"):
            lines.append(f"  {names[name]:<36} not ranked: {r.get('error', 'no architecture of the file')}")
            continue
        tau = "-" if r["kendall_tau"] is None else f"{r['kendall_tau']:.2f}"
        ceiling = "-" if r.get("noise_ceiling_tau") is None else f"{r['noise_ceiling_tau']:.2f}"
        lines.append(f"  {names[name]:<36} Kendall tau {tau:>5} over {r['n']} architectures, regret "
                     f"{r['regret']:+.2f} points (noise ceiling {ceiling})")
    return lines


def ablation_table(result: dict) -> str:
    """The table ``glit ablate`` prints: one row per model, top-1 as mean ± std over seeds, and the paired verdict
    against the first row."""
    rows, n = result["rows"], len(result["seeds"])
    lines = [f"ablation: {result['study']} ({result['preset']}, {n} seed{'s' * (n > 1)}: test top-1, mean ± std)",
             f"{'':<24} {'params':>10} {'MACs':>9} {'candidates':>10} {'test top-1':>16}  per seed"]
    for r in rows:
        spread = f" ± {r['top1_std']:.2f}" if r["top1_std"] is not None else ""
        scored = "-" if r["candidates"] is None else f"{r['candidates']:,}"
        lines.append(f"{r['name']:<24} {r['params']:>10,} {r['macs'] / 1e6:>8.2f}M {scored:>10} "
                     f"{r['top1']:>9.2f}%{spread:<7}  " + ", ".join(f"{t:.2f}" for t in r["top1_seeds"]))
    for r in rows[1:]:
        c = r["vs_first"]
        if c.get("verdict"):
            lines.append("  " + describe(c, rows[0]["name"], r["name"]))
        else:
            lines.append(f"  {rows[0]['name']} vs {r['name']}: {c['difference']:+.2f} points (no per-image results)")
    return "\n".join(lines)


# the claim's differences in glit compare's result: summary.json's comparisons, then glit ablate's one-level row
CLAIMS = (*((key, name) for key, _, name in COMPARISONS), ("vs_one_level", "one-level search"))


def fmt_mean_std(s: dict) -> str:
    """``+1.23 ± 0.45`` from a summary of values over seeds (``mean``, ``std``), "-" without values."""
    if s["mean"] is None:
        return "-"
    return f"{s['mean']:+.2f}" + (f" ± {s['std']:.2f}" if s["std"] is not None else "")


def fmt_p(s: dict) -> str:
    """A summary's one-sided ``p_value`` to 3 significant digits, "-" without one."""
    return "-" if s.get("p_value") is None else f"{s['p_value']:.3g}"


def compare_table(result: dict) -> str:
    """The table ``glit compare`` prints: a row per seed (each model's test top-1, then each claim's difference and
    its paired verdict on the test images), the means, and each claim's one-sided t-test over seeds. The one-level
    columns appear when some run folder holds ``glit ablate --study search``'s table."""
    one_level = result.get("one_level") is not None
    models = (*FINALISTS, "one_level") if one_level else FINALISTS
    claims = CLAIMS if one_level else CLAIMS[:-1]
    lines = [f"{'seed':>6} " + " ".join(f"{m.replace('_', '-'):>13}" for m in models) + " "
             + " ".join(f"{'vs ' + name:>24}" for _, name in claims)]
    for r in result["runs"]:
        if not r["finished"]:
            lines.append(f"{str(r['seed']):>6}  not finished ({r['dir']}): not counted")
            continue
        tops = " ".join(f"{fmt_pct(r.get(m)):>12}%" if r.get(m) is not None else f"{'-':>13}" for m in models)
        diffs = " ".join(f"{_short_verdict(r.get(k)):>24}" for k, _ in claims)
        lines.append(f"{str(r['seed']):>6} {tops} {diffs}")
    lines.append(f"{'mean':>6} " + " ".join(f"{fmt_mean_std(result[m]).lstrip('+'):>13}" for m in models))
    for key, name in claims:
        s = result[key]
        lines.append(f"searched - {name}: {fmt_mean_std(s)} points over {s['n']} seed{'s' * (s['n'] != 1)}; "
                     f"one-sided t-test over seeds p = {fmt_p(s)}")
    if result["not_finished"]:
        lines.append(f"{result['not_finished']} run(s) not finished: not counted")
    return "\n".join(lines)


def _short_verdict(c: dict | None) -> str:
    """``+7.96 better``, ``-0.71 no difference``: one seed's difference and its paired verdict, in a column."""
    if c is None:
        return "-"
    word = (c["verdict"] or "").removesuffix(" detected")
    return f"{c['difference']:+.2f} {word}".strip()


def rank_table(result: dict) -> str:
    """The table and figures that ``glit rank`` prints."""
    how = {"arch": "", "level1": ", each scored by its distribution with the level-1 details",
           "marginal": ", each scored by its distribution, details marginalised"}[result["scoring"]]
    evaluator = result.get("evaluator", "supernet")
    lines = [f"{result['supernet']}{' (level-1 part)' if result['level1'] else ''}{how} against {result['truth']}: "
             f"{result['n']} architectures scored by the {evaluator} evaluator "
             f"({result.get('cpu_seconds_per_arch', 0):.1f} CPU s each), {result['skipped']} outside the space "
             "skipped",
             f"  {'global heads':<24} {'score':>7} {'truth':>7} {'seeds':>6}"]
    percent = evaluator in ("supernet", "finetune", "short")  # the others are not accuracies
    for p in sorted(result["pairs"], key=lambda p: -p["score"]):
        g = [b["num_global_heads"] for b in p["arch"]["blocks"]]
        score = f"{p['score']:>6.2f}%" if percent else f"{p['score']:>7.4g}"
        lines.append(f"  {str(g):<24} {score} {p['truth_top1']:>6.2f}% {len(p['seeds']):>6}")

    def num(x, fmt="{:.3f}"):
        return "-" if x is None else fmt.format(x)

    lines += [f"  Kendall tau {num(result['kendall_tau'])} (p {num(result['kendall_p'], '{:.2g}')}), "
              f"Spearman rho {num(result['spearman_rho'])}, n = {result['n']}",
              f"  among the {result['n_mixes']} mixes of global and local heads: Kendall tau "
              f"{num(result['kendall_tau_mixes'])}; local bias {num(result['local_bias'], '{:+.3f}')} (tau of the "
              f"score with the local share {num(result['score_local_tau'])}, of the truth "
              f"{num(result['truth_local_tau'])})",
              f"  MACs alone rank them with Kendall tau {num(result['macs_kendall_tau'])} (the trivial predictor to "
              "beat)",
              f"  precision at 5 {num(result['precision_at_5'], '{:.2f}')}; regret "
              f"{num(result['regret'], '{:+.2f}')} points (true top-1 of the supernet's favourite minus the true best)",
              f"  noise ceiling: Kendall tau {num(result['noise_ceiling_tau'])} between seeds "
              f"{result['noise_ceiling_seeds'][0]} and {result['noise_ceiling_seeds'][1]} over the "
              f"{result['noise_ceiling_n']} architectures of the file trained with both"]
    for what, r in (("", result), (" (short-tse)", result.get("tse", {}))):
        sel = r.get("selection")
        if sel:
            lines.append(f"  selection test{what}: picking the favourite of {sel['subset']} of the {sel['pool']} "
                         f"gains {sel['gain']:+.2f} points over a random pick (95% CI {sel['gain_ci95'][0]:+.2f} to "
                         f"{sel['gain_ci95'][1]:+.2f}), regret {sel['regret']:+.2f} to the subset's best (95% CI "
                         f"{sel['regret_ci95'][0]:+.2f} to {sel['regret_ci95'][1]:+.2f})")
    return "\n".join(lines)
