"""``glit rank``: how well a supernet ranks the architectures of a ground-truth file (``glit truth``).

Every architecture of the file that the supernet's space holds (or, with ``level1``, its level-1 part: the detail
genes at the preset's level-1 values, as the level-1 search scores them) is scored exactly as the search scores a
candidate (``glit.recipes.search.supernet_fitness``: inherited weights, BatchNorm recalibrated on
``search.bn_batches`` training batches, top-1 on the supernet's search split). The scores are compared with the
mean ground-truth top-1 over seeds; see ``glit.health.metrics`` for the figures. Architectures outside the space
are counted as skipped, never scored.
"""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from glit.data.build import fingerprint, load_data
from glit.errors import GlitError
from glit.health.metrics import group, noise_ceiling, rank_metrics, read_truth
from glit.presets import level1_part
from glit.recipes.search import search_config, supernet_checkpoint, supernet_fitness
from glit.space import SearchSpace
from glit.train.dist import init_distributed

CHUNK = 8  # architectures per progress-bar step (and per spread over ranks under torchrun)


def rank(supernet: str | Path, truth_file: str | Path, data_dir: str | None = None, overrides: list[str] = (),
         level1: bool = False, progress: bool = True) -> dict:
    """The rank figures of the supernet in ``supernet`` (a folder or checkpoint) against ``truth_file``, with the
    pairs it scored: ``{"arch", "score", "truth_top1", "seeds"}``, in the file's order."""
    ckpt, file = supernet_checkpoint(supernet)
    cfg = search_config(ckpt, file, overrides)
    if data_dir:
        cfg.data.source, cfg.data.root = "folder", data_dir
    rows = read_truth(truth_file)
    if not rows:
        raise GlitError(f"{truth_file}: no ground truth (the file is missing or empty)")
    truths = group(rows, str(truth_file))
    trained = SearchSpace.from_dict(ckpt["space"], f"{file}: space")
    space = level1_part(cfg.preset, trained) if level1 else trained
    held = [t for t in truths if space.contains(t.arch)]
    if not held:
        raise GlitError(f"{truth_file}: none of its {len(truths)} architectures lies in the space of {file}"
                        f"{' (level-1 part)' if level1 else ''}; was it measured for another preset or data?")

    dist = init_distributed(cfg.device)
    data = load_data(cfg)
    measured_on = {r["data"] for r in rows if "data" in r}
    if measured_on and measured_on != {fingerprint(data.record)}:
        raise GlitError(f"{truth_file}: measured on other data than the supernet's (data fingerprint "
                        f"{sorted(measured_on)[0]}, the supernet's {fingerprint(data.record)})")
    fitness = supernet_fitness(cfg, ckpt, file, data, dist)
    scores = []
    bar = tqdm(total=len(held), desc="rank", unit="arch", disable=None if progress and dist.main else True,
               dynamic_ncols=True)
    for i in range(0, len(held), CHUNK):
        scores += fitness([t.arch for t in held[i:i + CHUNK]])
        bar.update(len(held[i:i + CHUNK]))
    bar.close()
    result = rank_metrics(scores, [t.mean for t in held])
    return {**result, **noise_ceiling(truths), "skipped": len(truths) - len(held), "supernet": str(file),
            "truth": str(truth_file), "level1": level1,
            "pairs": [{"arch": t.arch.to_dict(), "score": s, "truth_top1": t.mean, "seeds": sorted(t.top1)}
                      for t, s in zip(held, scores)]}


def format_rank(result: dict) -> str:
    """The table and figures that ``glit rank`` prints."""
    lines = [f"{result['supernet']}{' (level-1 part)' if result['level1'] else ''} against {result['truth']}: "
             f"{result['n']} architectures scored, {result['skipped']} outside the space skipped",
             f"  {'global heads':<24} {'score':>7} {'truth':>7} {'seeds':>6}"]
    for p in sorted(result["pairs"], key=lambda p: -p["score"]):
        g = [b["num_global_heads"] for b in p["arch"]["blocks"]]
        lines.append(f"  {str(g):<24} {p['score']:>6.2f}% {p['truth_top1']:>6.2f}% {len(p['seeds']):>6}")

    def num(x, fmt="{:.3f}"):
        return "-" if x is None else fmt.format(x)

    lines += [f"  Kendall tau {num(result['kendall_tau'])} (p {num(result['kendall_p'], '{:.2g}')}), "
              f"Spearman rho {num(result['spearman_rho'])}, n = {result['n']}",
              f"  precision at 5 {num(result['precision_at_5'], '{:.2f}')}; regret "
              f"{num(result['regret'], '{:+.2f}')} points (true top-1 of the supernet's favourite minus the true best)",
              f"  noise ceiling: Kendall tau {num(result['noise_ceiling_tau'])} between seeds "
              f"{result['noise_ceiling_seeds'][0]} and {result['noise_ceiling_seeds'][1]} over the "
              f"{result['noise_ceiling_n']} architectures of the file trained with both"]
    return "\n".join(lines)
