"""Train a weight-sharing supernet by uniform single-path sampling (SPEC 1.3).

Each step draws one architecture uniformly from the space, with an RNG seeded by the run's seed and the global
step (the same path on every rank, and the same after a resume), and trains only that path on the batch:
``SupernetStep`` is that step, top to bottom.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from glit.config import Config, OptimConfig
from glit.cost import extremes
from glit.data.build import SharedData, eval_loader, load_data, same_split, train_loader
from glit.data.mixup import soft_target_cross_entropy
from glit.errors import GlitError
from glit.files import write_json
from glit.folder import prepare_out, write_config
from glit.genes import GENE_NAMES, GENES
from glit.nn import Supernet
from glit.presets import space_preset
from glit.recipes.common import init_generator, space_for_data
from glit.recipes.search import make_budget, supernet_checkpoint
from glit.search.budget import Budget
from glit.space import Arch, BlockGenes, SearchSpace
from glit.train.bn import recalibrate_bn
from glit.train.checkpoint import expect_kind, load_checkpoint, load_weights
from glit.train.dist import init_distributed
from glit.train.fit import fit
from glit.train.landmarks import Landmarks, WithLandmarks, read_landmarks
from glit.train.loop import Step, autocast, evaluate
from glit.train.optim import describe_length, element_masked_step, element_step, masked_step, path_step, sized

MAX_DRAWS = 10_000  # draws per step under a budget (budget.check_feasible has shown that members exist)


@dataclass(kw_only=True)
class SupernetStep(Step):
    """One supernet training step: sample the step's path, forward and backward it, sync the gradients, and update
    only the weights on the path.

    ``sample(global_step)`` gives the path (with the sandwich rule, a list of paths, the largest first; under
    ``distill`` the others learn its soft predictions). ``masked``: AdamW touches only the path's elements, so the
    weights, moments and decay of everything off the path stay as they were (``supernet.masked_update``);
    ``element_counts``: and each element's bias correction counts its own updates (``supernet.adam_step``).
    ``landmarks``: on the steps it names, a pair of landmarks is ranked on the same batch as well
    (``glit.train.landmarks``), and the update covers their paths too.
    """

    sample: Callable[[int], Arch | list[Arch]]
    masked: bool = True
    element_counts: bool = False
    distill: bool = False
    landmarks: Landmarks | None = None
    landmark_weight: float = 1.0
    landmark_margin: float = 0.1

    def path(self, global_step: int) -> Arch | list[Arch] | WithLandmarks:
        path = self.sample(global_step)
        pair = self.landmarks.pair(global_step) if self.landmarks else None
        return WithLandmarks(path, *pair) if pair else path

    def __call__(self, model: Supernet, optimizer: torch.optim.Optimizer, x: Tensor, targets: Tensor,
                 path: Arch | list[Arch] | WithLandmarks) -> Tensor:
        # 1. the step's paths
        pair = None
        if isinstance(path, WithLandmarks):
            path, pair = path.path, (path.better, path.worse)
        paths = path if isinstance(path, list) else [path]
        labels = targets
        single = len(paths) == 1 and pair is None
        # the path's slices of each weight, for the sliced gradient sync and the per-tensor masked update only
        needs_views = single and (self.sync is not None or (self.masked and not self.element_counts))
        views = model.path_views(paths[0]) if needs_views else None
        # 2. forward and backward, path by path, the gradients accumulating
        optimizer.zero_grad(set_to_none=True)
        for k, arch in enumerate(paths):
            with autocast(x.device, self.optim.amp):
                logits = model(x, arch)
            loss = soft_target_cross_entropy(logits.float(), targets)
            if k == 0:
                first = loss.detach()
                if self.distill and len(paths) > 1:  # in-place distillation: the others learn the largest's output
                    targets = F.softmax(logits.detach().float(), dim=-1)
            # 3. sync: one path's gradients are all-reduced on its elements only, bucketed, during backward
            with self.sync.backward(views) if self.sync and single else nullcontext():
                (self.scaler.scale(loss) if self.scaler else loss).backward()
        if pair:  # the landmarks' hinge: the better one's loss below the worse one's by the margin
            with autocast(x.device, self.optim.amp):
                better, worse = (soft_target_cross_entropy(model(x, a).float(), labels) for a in pair)
            hinge = self.landmark_weight * F.relu(self.landmark_margin + better - worse)
            (self.scaler.scale(hinge) if self.scaler else hinge).backward()
            paths = [*paths, *pair]
        if self.sync and not single:
            self.sync.all(model)
        self.clip(model, optimizer)
        # 4. the update: AdamW on the path's elements, everything off the path left as it was
        apply = partial(self.apply, optimizer)
        if not self.masked:
            apply()
        elif self.element_counts:
            if single:
                element_step(optimizer, model.path_views(paths[0], every=True), apply)
            else:  # a union of paths: the sandwich rule's, or with a landmark pair
                element_masked_step(optimizer, union_masks([model.path_masks(p) for p in paths]), apply)
        elif single and self.scaler is None and not optimizer.param_groups[0]["fused"]:
            path_step(optimizer, views, apply)  # in place, the fast way
        else:  # the union of paths, a grad scaler, fused AdamW: restore what is off the paths afterwards
            masked_step(optimizer, union_masks([model.path_masks(p) for p in paths]), apply)
        self.after(model)
        return first


def union_masks(masks: list[dict]) -> dict:
    """The elements that any of several paths uses, per parameter."""
    union = dict(masks[0])
    for more in masks[1:]:
        for p, m in more.items():
            union[p] = union[p] | m if p in union else m
    return union


def path_sampler(space: SearchSpace, seed: int, sandwich: int = 0, budget: Budget | None = None,
                 sampling: str = "uniform"):
    """The architecture of a global step: a function of (seed, step) only. With the sandwich rule, the list of the
    step's paths: the largest and the smallest member by MACs, then ``sandwich`` draws. A draw is uniform, or with
    ``sampling`` "heads" balanced over the total number of global heads (``SearchSpace.sample_by_global_heads``);
    with ``budget``, it is redrawn from the same RNG until it meets the budget (``supernet.under_budget``)."""
    sample = space.sample_by_global_heads if sampling == "heads" else space.sample

    def draw(rng):
        for _ in range(MAX_DRAWS):
            arch = sample(rng)
            if budget is None or budget(arch):
                return arch
        raise GlitError(f"supernet.under_budget: no member under the budget ({budget.describe()}) in {MAX_DRAWS} "
                        "draws; raise the budget or set supernet.under_budget=false")

    if sandwich == 0:
        return lambda step: draw(random.Random(f"path:{seed}:{step}"))
    smallest, largest = extremes(space, "macs")

    def paths(step):
        rng = random.Random(f"path:{seed}:{step}")
        return [largest, smallest, *(draw(rng) for _ in range(sandwich))]

    return paths


def train_supernet(cfg: Config, out: str | Path, resume: bool = False, shared: SharedData | None = None,
                   space: SearchSpace | None = None, optim: OptimConfig | None = None,
                   warm_start: str | Path | None = None) -> dict:
    """Train a supernet on ``space`` (default: the space that ``cfg``'s level, distribution and
    ``search.level2_space`` name) for the length of ``optim`` (default ``supernet.optim``), its weights first seeded
    from the supernet in ``warm_start`` (default ``supernet.warm_start``). ``glit run`` passes each stage's own;
    ``stage.json`` records them (``glit.folder``). The space's number of classes is the data's."""
    out = Path(out)
    if space is None:
        space = space_preset(cfg.preset, cfg.level, cfg.distribution, cfg.search.level2_space,
                             cfg.search.local_ops)
    s = cfg.supernet
    o = s.optim if optim is None else optim
    warm_start = s.warm_start if warm_start is None else warm_start
    stage = {"space": space.to_dict(), "epochs": o.epochs, "images": o.images}
    dist = init_distributed(cfg.device)
    resume_from = prepare_out(out, cfg, resume, dist, command="glit train-supernet", stage=stage)
    checkpoint = load_checkpoint(resume_from) if resume_from else None
    if checkpoint is not None:
        expect_kind(checkpoint, "supernet", resume_from, "use another --out")
        done = SearchSpace.from_dict(checkpoint.get("space"), f"{resume_from}: space")
        if (done.blocks, done.pins) != (space.blocks, space.pins):
            raise GlitError(f"{resume_from}: holds a supernet of another space; use another --out")
        images = checkpoint.get("split", {}).get("fit_size", 0)
        if checkpoint["epoch"] >= sized(o, images).epochs:
            return {"out": str(out), "space": done, "metrics": checkpoint["metrics"][-1]}  # finished

    data = load_data(cfg, shared)
    if checkpoint is not None and not same_split(checkpoint.get("split"), data.record):
        raise GlitError(f"{out}: holds a run on other data (its split.json differs from this data's); use another "
                        "--out, or the run's data")
    space = space_for_data(space, data.num_classes)
    landmarks = read_landmarks(s.landmarks, space, cfg.seed, s.landmark_every) if s.landmarks else None
    img = space.family.img_size
    o = sized(o, len(data.fit))
    loader = train_loader(cfg, data.fit, img, o.batch_size // dist.world, dist.rank, dist.world)
    if dist.main:
        print(describe_length(o, len(data.fit), len(loader), "supernet"), flush=True)
    search = eval_loader(cfg, data.search, img, o.batch_size, dist.rank, dist.world)
    calib = eval_loader(cfg, data.fit, img, o.batch_size)  # the same batches on every rank

    supernet = Supernet(space, drop_path=o.drop_path, generator=init_generator(cfg.seed),
                        local_weights=s.local_weights).to(dist.device)
    eval_rng = random.Random(f"eval-archs:{cfg.seed}")
    eval_archs = [space.sample(eval_rng) for _ in range(s.eval_archs)]

    def score(model):
        """Top-1 on the search split of a few fixed paths, each after BatchNorm recalibration."""
        top1 = []
        for arch in eval_archs:
            batches = (x.to(dist.device) for x, _ in _take(calib, s.bn_batches))
            recalibrate_bn(model, arch, batches)
            top1.append(evaluate(model, search, dist, arch, o.amp, desc="score")["top1"])
        return {"top1": sum(top1) / max(len(top1), 1), "top1_paths": top1}

    if warm_start and checkpoint is None:
        inherit_supernet(supernet, warm_start)
    write_config(out, cfg, dist, stage)
    if dist.main:
        write_json(out / "space.json", space.to_dict())
        write_json(out / "split.json", data.record)
    sandwich = s.sandwich
    budget = None
    if s.under_budget:
        budget = make_budget(cfg, space)
        budget.check_feasible(space)
    step = partial(SupernetStep, sample=path_sampler(space, cfg.seed, sandwich, budget, s.sampling),
                   masked=s.masked_update, element_counts=s.adam_step == "element",
                   distill=s.distill and sandwich > 0, landmarks=landmarks, landmark_weight=s.landmark_weight,
                   landmark_margin=s.landmark_margin)
    history = fit(supernet, cfg, o, loader, out, dist, step=step, evaluate_fn=score, num_classes=data.num_classes,
                  checkpoint=checkpoint, desc="supernet",
                  payload={"kind": "supernet", "space": space.to_dict(), "split": data.record,
                           "local_weights": s.local_weights})
    return {"out": str(out), "space": space, "metrics": history[-1] if history else {}}


def inherit_supernet(supernet: Supernet, source: str | Path) -> None:
    """Seed ``supernet`` with the weights of the supernet in ``source``; see ``inherit_paths``."""
    ckpt, file = supernet_checkpoint(source)
    other = Supernet(SearchSpace.from_dict(ckpt["space"], f"{file}: space"),
                     local_weights=ckpt.get("local_weights", "shared"))
    load_weights(other, ckpt, file)
    inherit_paths(supernet, other, str(file))


def inherit_paths(supernet: Supernet, source: Supernet, where: str) -> None:
    """Write ``source``'s weights into ``supernet`` along paths that both spaces hold.

    The paths: each combination of the values both spaces allow of the genes whose values own separate weights
    (``num_global_heads``, ``local_op``: ``Gene.nested`` false), in every block alike where the blocks' lists
    differ in length, the k-th value or the last, and each other gene at the largest value both allow (its weights
    hold every smaller value's). From a level-1 supernet, these are its paths with the detail genes at their level-1
    values: around a distribution, the one path of that distribution; over the whole space, one path per candidate
    number of global heads, which together hold every weight of the level-1 supernet. From a supernet whose space
    includes this one's, these paths hold every weight of ``supernet``, so it becomes an exact copy on its own
    space: every path gives the source's output. A weight that two paths share gets the same value from both.
    """
    mine, theirs = supernet.space, source.space
    if mine.family != theirs.family:
        raise GlitError(f"{where}: its family differs from this supernet's")
    shared = []  # per block, gene -> the candidates both spaces allow, in this space's order
    for i, (a, b) in enumerate(zip(mine.blocks, theirs.blocks)):
        common = {gene: [v for v in getattr(a, gene) if v in getattr(b, gene)] for gene in GENE_NAMES}
        empty = [gene for gene, values in common.items() if not values]
        if empty:
            raise GlitError(f"{where}: shares no path with this supernet (block {i}: no common {empty[0]})")
        shared.append(common)
    device = supernet.cls_token.device
    apart = [g.name for g in GENES if not g.nested]
    for ks in itertools.product(*(range(max(len(c[name]) for c in shared)) for name in apart)):
        blocks = []
        for c in shared:
            values = {name: c[name][min(k, len(c[name]) - 1)] for name, k in zip(apart, ks)}
            values.update({g.name: max(c[g.name]) for g in GENES if g.nested})
            genes = BlockGenes(**values).canonical(mine.family.num_heads)
            blocks.append(theirs.pinned(mine.pinned(genes)))  # pinned genes (the paper's space) take their value
        arch = Arch(mine.family, tuple(blocks))
        if not (mine.contains(arch) and theirs.contains(arch)):
            raise GlitError(f"{where}: shares no path with this supernet (their pins differ)")
        supernet.inherit(arch, source.extract(arch).to(device))


def _take(loader, n):
    for i, batch in enumerate(loader):
        if i >= n:
            return
        yield batch
