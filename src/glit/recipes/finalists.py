"""The finalist round: the top K distinct candidates of one or more searches, re-scored by a costlier evaluator
(``search.finalist_evaluator``, ``glit.scoring``), the best of them winning.

Why: a search ends on one supernet score, whose noise (about 1.5 points on a 1,000-image search split) and bias
(bench/RESULTS.md, issue 26) are larger than the differences between the candidates at the top; converting a little
compute into a second, better opinion on a few of them picks more reliably (issue 27's selection test).

The finalists are each search's answer first (the incumbent, when the search kept it), then its best-scored distinct
candidates, until K; with several searches (``search.level2_topk``), their candidates are pooled and each is scored
with the supernet that searched it. Ties in the round keep the earlier finalist (so the search's own answer).

``OUT`` gets ``config.yaml``, ``stage.json`` (the searches and the round's K and evaluator) and ``finalists.json``:
``evaluator``, ``k``, ``finalists`` (``arch``, ``search``, ``search_score``, ``score``: null until scored) and, once
all are scored, ``winner``. It is written after every finalist, so a killed round continues with the next one, and
a finished round is never redone.
"""

from __future__ import annotations

import json
from pathlib import Path

from glit.config import Config
from glit.data.build import SharedData, load_data
from glit.errors import GlitError
from glit.files import write_json
from glit.folder import prepare_out, write_config
from glit.layout import ROUND_FILE
from glit.recipes.search import supernet_checkpoint
from glit.scoring import EVALUATORS
from glit.scoring.make import make_fitness
from glit.space import Arch, SearchSpace
from glit.train.dist import init_distributed

STATE = ROUND_FILE


def finalist_candidates(search_dirs: list[Path], k: int) -> list[dict]:
    """The round's finalists (module doc): ``arch``, ``search`` (the folder) and ``search_score``."""
    pools = []
    for d in search_dirs:
        if not (d / "result.json").is_file():
            raise GlitError(f"{d}: not a finished glit search (no result.json)")
        answer = Arch.from_json(d / "best.json")
        rows = [json.loads(line) for line in (d / "candidates.jsonl").read_text().splitlines() if line.strip()]
        rows.sort(key=lambda r: -r["score"])  # stable: equal scores keep the search's order
        score = json.loads((d / "result.json").read_text())["score"]
        pools.append([(answer, score)] + [(Arch.from_dict(r["arch"]), r["score"]) for r in rows])
    chosen: list[dict] = []
    seen: set[Arch] = set()
    for rank in range(max(len(p) for p in pools)):  # interleave the searches' lists, each in its own order
        for d, pool in zip(search_dirs, pools):
            if rank < len(pool) and pool[rank][0] not in seen and len(chosen) < k:
                seen.add(pool[rank][0])
                chosen.append({"arch": pool[rank][0].to_dict(), "search": str(d), "search_score": pool[rank][1],
                               "score": None})
    return chosen


def finalist_round(cfg: Config, searches: list[tuple[Path, Path]], out: str | Path, k: int | None = None,
                   evaluator: str | None = None, shared: SharedData | None = None) -> dict:
    """Re-score the finalists of ``searches`` (pairs of a supernet folder and the folder of a search on it) into
    ``out``; returns what ``finalists.json`` holds, ``winner`` included. ``k`` and ``evaluator`` default to
    ``search.finalists`` and ``search.finalist_evaluator``."""
    out = Path(out)
    k = cfg.search.finalists if k is None else k
    evaluator = evaluator or cfg.search.finalist_evaluator
    if k < 1 or evaluator not in EVALUATORS:
        raise GlitError(f"a finalist round needs k >= 1 and an evaluator of {', '.join(EVALUATORS)}; got {k}, "
                        f"{evaluator!r}")
    stage = {"k": k, "evaluator": evaluator, "searches": [[str(sn), str(s)] for sn, s in searches]}
    dist = init_distributed(cfg.device)
    resume_from = prepare_out(out, cfg, True, dist, state=STATE, command="glit finalists", stage=stage)
    state = json.loads(resume_from.read_text()) if resume_from else None
    if state is None:
        by_search = {str(s): sn for sn, s in searches}
        state = {"evaluator": evaluator, "k": k,
                 "finalists": [{**f, "supernet": str(by_search[f["search"]])}
                               for f in finalist_candidates([s for _, s in searches], k)]}
    if "winner" in state:
        return state
    write_config(out, cfg, dist, stage)
    data = None
    fitness_of: dict[str, object] = {}
    for i, f in enumerate(state["finalists"]):
        if f["score"] is not None:
            continue
        if f["supernet"] not in fitness_of:
            ckpt, file = supernet_checkpoint(f["supernet"])
            data = data or load_data(cfg, shared)
            family = SearchSpace.from_dict(ckpt["space"], f"{file}: space").family
            fitness_of[f["supernet"]] = make_fitness(evaluator, cfg, data, dist, family, ckpt, file)
        f["score"] = fitness_of[f["supernet"]]([Arch.from_dict(f["arch"])])[0]
        if dist.main:
            print(f"finalist {i + 1}/{len(state['finalists'])}: search score {f['search_score']:.2f}, {evaluator} "
                  f"{f['score']:.4g}", flush=True)
            write_json(out / STATE, state)
    best = max(range(len(state["finalists"])), key=lambda i: (state["finalists"][i]["score"], -i))
    state["winner"] = state["finalists"][best]
    if dist.main:
        write_json(out / STATE, state)
    return state
