"""Ways to score a candidate architecture (evaluators), each measured against ground truth by ``glit rank
--evaluator NAME`` (bench/RESULTS.md, issue 27):

- ``supernet``: inherited weights, BatchNorm recalibrated, top-1 on the search split (``glit.scoring.supernet``);
- ``finetune``: inherited weights trained alone for ``search.finetune_steps`` steps first (``finetune.py``);
- ``short``, ``short-tse``: trained from scratch for ``search.short_epochs`` epochs (``short.py``);
- ``params``, ``synflow``, ``naswot``, ``dss``: zero-cost proxies of the initialised network (``proxies.py``).

``glit.scoring.make.make_fitness`` builds any of them as ``fitness(archs) -> scores`` (higher is better), the
callable the searches and ``glit rank`` take.
"""

from __future__ import annotations

from glit.config import EVALUATORS, NEEDS_SUPERNET, PROXIES  # the names, declared with the config keys

__all__ = ["EVALUATORS", "NEEDS_SUPERNET", "PROXIES"]
