"""Typed run configuration: a preset, optionally a YAML file, then ``--set key=value`` overrides.

Keys are dotted paths into the dataclasses below, e.g. ``train.epochs=10`` or ``data.workers=0``. An unknown key is
an error that lists the valid keys. ``glit ... --out DIR`` writes the resolved config to ``DIR/config.yaml``, and that
file loads back with ``--config``. A key added to glit later must default to the behaviour from before it existed:
a stored config that lacks it reads as that default, so runs written by an older glit still continue.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import re
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml
from pydantic import TypeAdapter, ValidationError

from glit.cost import CONVENTIONS
from glit.errors import GlitError
from glit.genes import LOCAL_OPS
from glit.presets import LEVEL2_SPACES, SPACES, lookup
from glit.units import parse_count, parse_ms

# The names a config may choose from, declared here (the schema) and read by the CLI's choices and by the code that
# implements them: glit.search.strategy, glit.scoring (each evaluator and what it is: glit.scoring's docstring).
STRATEGIES = ("evolution", "random")
PROXIES = ("params", "synflow", "naswot", "dss")
EVALUATORS = ("supernet", "finetune", "short", "short-tse", *PROXIES)
NEEDS_SUPERNET = ("supernet", "finetune")

# -- the schema: each key declared once, on its field: type, default, rule (a check and what it allows), meaning -----

def key(default=None, rule: tuple | None = None, meaning: str = "", *, factory=None):
    """A config key: its default (or ``factory`` for a list), its rule ``(check, allowed)`` that ``validate``
    applies with a one-line error naming the key, and one line of meaning. Plain dataclass fields with metadata (no
    pydantic models): loading, ``--set``, stored configs and validation all read these declarations, and pydantic
    checks each value against the field's declared type (``_typed``)."""
    kw = {"default_factory": factory} if factory is not None else {"default": default}
    return field(metadata={"rule": rule, "meaning": meaning}, **kw)


def _at_least(low):
    return lambda v: v >= low, f"a number >= {low}"


def _between(low, high, open_high=False):
    return (lambda v: low <= v < high) if open_high else (lambda v: low <= v <= high), \
        f"a number in [{low}, {high}{')' if open_high else ']'}"


def _positive():
    return lambda v: v > 0, "a positive number"


def _one_of(*names):
    return lambda v: v in names, "one of " + ", ".join(names)


def _optional(rule):
    check, allowed = rule
    return lambda v: v is None or check(v), f"{allowed}, or null"


def _names_of(names):
    return (lambda v: isinstance(v, list) and len(v) > 0 and len(set(v)) == len(v) and all(n in names for n in v),
            "a list of distinct names of " + ", ".join(names))


def _counts():
    return (lambda v: isinstance(v, list) and all(isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in v),
            "a list of global-head counts (non-negative integers)")


def _count(v) -> bool:
    try:
        parse_count(v)
    except GlitError:
        return False
    return True


def _time(v) -> bool:
    try:
        parse_ms(v)
    except GlitError:
        return False
    return True


@dataclass
class DataConfig:
    """Where images come from and how the splits are made (SPEC 3.2)."""

    source: str = key("digits", _one_of("digits", "folder"), "digits | folder")
    root: str | None = None  # an ImageFolder tree root/{train,val|test}/<class>/*.jpg
    test_fraction: float = key(0.2, (lambda v: 0 < v < 1, "a number in (0, 1)"),
                               "digits only: the held-out test split, carved with data.split_seed")
    search_size: int = key(300, _at_least(1),
                           "images carved from the training set for search fitness (never the test split)")
    train_subset: int = key(0, _at_least(0),
                            "use only this many training images (0: all); taken before the search split")
    split_seed: int = key(0, _at_least(0), "fixed seed for the test (digits), subset and search splits")
    workers: int = key(2, _at_least(0), "DataLoader worker processes (0: load in the main process)")
    cache: str = key("auto", _one_of("auto", "yes", "no"),
                     "decode images once into memory: auto (when small) | yes | no")


@dataclass
class AugConfig:
    """Training-time augmentation. Evaluation resizes by 1/eval_crop_ratio and centre-crops."""

    crop: str = key("rrc", _one_of("rrc", "pad", "none"),
                    "rrc (RandomResizedCrop) | pad (pad 1/8 of the size, random crop) | none")
    crop_scale_min: float = key(0.08, (lambda v: 0 < v <= 1, "a number in (0, 1]"))
    flip: bool = True
    randaugment: str | None = "rand-m9-mstd0.5"  # "" or null to disable; rand-m{magnitude}-n{ops}-mstd{std}
    mixup: float = key(0.8, _at_least(0), "Beta(a, a) for Mixup; 0 disables")
    cutmix: float = key(1.0, _at_least(0), "Beta(a, a) for CutMix; 0 disables")
    mix_prob: float = key(1.0, _between(0, 1), "probability that a batch is mixed at all")
    switch_prob: float = key(0.5, _between(0, 1), "when both are on: probability of CutMix rather than Mixup")
    label_smoothing: float = key(0.1, _between(0, 1, open_high=True))
    erasing: float = key(0.25, _between(0, 1), "random-erasing probability")
    repeated_aug: int = key(3, _at_least(1),
                            "repeated augmentation: each image appears this many times per epoch (1: off)")
    eval_crop_ratio: float = key(0.875, (lambda v: 0 < v <= 1, "a number in (0, 1]"), "224 / 256")


@dataclass
class OptimConfig:
    """AdamW with cosine schedule (DeiT's recipe). ``lr`` is per 512 images: the run uses lr * batch_size / 512."""

    epochs: int = key(300, _at_least(1))
    batch_size: int = key(1024, _at_least(1), "global batch, over all ranks")
    lr: float = key(5e-4, _positive())
    weight_decay: float = key(0.05, _at_least(0))
    warmup_epochs: float = key(5, _at_least(0))
    warmup_lr: float = key(1e-6, _at_least(0))
    min_lr: float = key(1e-5, _at_least(0))
    clip_grad: float = key(1.0, _at_least(0), "max grad norm; 0 disables")
    drop_path: float = key(0.1, _between(0, 1, open_high=True))
    amp: str = key("none", _one_of("none", "bf16", "fp16"),
                   "none | bf16 (CPU and GPU) | fp16 (GPU, with gradient scaling)")
    ema: float = key(0.0, _between(0, 1, open_high=True),
                     "EMA decay of the weights (0: off); evaluation then uses the EMA weights")
    eval_every: int = key(1, _at_least(1), "evaluate every this many epochs (and always after the last)")
    # Training length sized by the data (glit.train.optim.sized). With `images` set, a run sees about that many
    # images in all, whatever the size of its training set: epochs = images / training images, rounded and kept within
    # [min_epochs, max_epochs], and warmup_epochs scales with them (so warm-up covers the same number of images).
    # `epochs` is then the length at the preset's reference size. None: `epochs` as given, whatever the data.
    # Setting `epochs` (--epochs, --set, a config file) without `images` means exactly that many epochs: images -> None.
    images: int | None = key(None, _optional(_at_least(1)))
    min_epochs: int = key(1, _at_least(1))
    max_epochs: int | None = key(None, _optional(_at_least(1)))
    # Speed options (off: the results are then bit-for-bit those of earlier versions). `fused`: torch's fused AdamW
    # kernel (CPU and CUDA; the masked supernet update works on its state alike). `compile`: torch.compile of the
    # standalone model (retraining only: a supernet's path changes every step, and each new path would recompile).
    # `tf32`: TF32 tensor cores for fp32 matmuls and convolutions on CUDA (about 10 mantissa bits; no effect on CPU).
    fused: bool = False
    compile: bool = False
    tf32: bool = False


@dataclass
class SupernetConfig:
    """Supernet training: the ``optim`` recipe plus single-path sampling options."""

    optim: OptimConfig = field(default_factory=OptimConfig)
    masked_update: bool = True  # AdamW moves only the sampled path's weights and moment estimates
    eval_archs: int = key(2, _at_least(0),
                          "architectures (fixed, seeded) scored on the search split after each evaluation")
    bn_batches: int = key(4, _at_least(1), "batches for BatchNorm recalibration before each such score")
    warm_start: str | None = None  # a supernet checkpoint whose shared paths seed the weights
    # BigNAS's sandwich rule, an option (SPEC 1.3 trains one uniform path per step): each step trains the largest and
    # the smallest member by MACs and `sandwich` uniform paths on the same batch, and updates once with their summed
    # gradients; with `distill`, every path but the largest learns the largest's soft predictions (in-place
    # distillation) instead of the labels. A step then costs about sandwich + 2 single-path steps. 0: off.
    sandwich: int = key(0, _at_least(0))
    distill: bool = True
    # AdamW's step count in the masked update, for its bias correction: "element", each element corrected for the
    # updates it has had (an element used k times gets exactly the update of an AdamW that saw those k gradients;
    # glit.train.optim.element_step); "tensor", torch's per-tensor count (rarely used slices step too far; the
    # behaviour before this key existed)
    adam_step: str = key("tensor", _one_of("tensor", "element"))
    # how a step draws its path: "uniform", every member of the space alike (SPEC 1.3); "heads", the total number of
    # global heads uniformly first, then the blocks' split of it, then the other genes (SearchSpace.sample_by_global_
    # heads: mostly-local and mostly-global paths get trained as often as the mixes in the middle)
    sampling: str = key("uniform", _one_of("uniform", "heads"))
    # draw only members under the run's budget (search.max_macs/max_params/max_latency), by rejection from the step's
    # own RNG: no step goes to a path that no search will score
    under_budget: bool = False
    # the local modules' weights: "shared", one module per block at the largest width, sliced for every path
    # (weight sharing, SPEC 1.3); "per_heads", one module per number of local heads in each block (few-shot: paths
    # with different numbers of local heads share no local weights; same MACs, more parameters)
    local_weights: str = key("shared", _one_of("shared", "per_heads"))
    # landmark regularisation (glit.train.landmarks; Yu et al., CVPR 2021): a truth.jsonl whose architectures are
    # ranked against each other every `landmark_every` steps by a hinge on their losses on the step's batch,
    # weighted `landmark_weight`, with margin `landmark_margin` (cross-entropy units). None: off
    landmarks: str | None = None
    landmark_every: int = key(4, _at_least(1))
    landmark_weight: float = key(1.0, _positive())
    landmark_margin: float = key(0.1, _at_least(0))


@dataclass
class SearchConfig:
    """Evolutionary (or random) search on a trained supernet (SPEC 1.4), and the hierarchy's choices (SPEC 1.3)."""

    strategy: str = key("evolution", _one_of(*STRATEGIES), "evolution | random")
    random_candidates: int | None = key(None, _optional(_at_least(1)),
                                        "random: candidates scored; None: population x generations, as evolution")
    population: int = key(50, _at_least(1))
    generations: int = key(20, _at_least(1))
    parents: int = key(10, _at_least(1), "top candidates kept as parents")
    mutations: int = key(25, _at_least(0))
    crossovers: int = key(25, _at_least(0))
    mutate_prob: float = key(0.1, _between(0, 1))
    max_tries: int = key(1000, _at_least(1), "attempts per way of making candidates, per generation")
    max_macs: str | int | float | None = key(
        None,
        (lambda v: v is None or _count(v), "a positive count such as 1.3G, 500M, 2e6 or inf, or null"),
        "e.g. 1.3G; None: the DeiT-style (all-global) architecture's MACs; inf: no limit")
    max_params: str | int | float | None = key(
        None,
        (lambda v: v is None or _count(v), "a positive count such as 6M or 2e6, or null"),
        "e.g. 6M; None: no limit")
    convention: str = key("exact", _one_of(*CONVENTIONS), "MAC convention of the budget: exact | glit")
    bn_batches: int = key(10, _at_least(1), "training batches for BatchNorm recalibration of each candidate")
    batch_size: int = key(256, _at_least(1), "scoring batch")
    topk: int = key(5, _at_least(1), "level 1: distributions kept")
    # glit run, level 1: "fixed" trains the level-1 supernet on the level-1 paths only (detail genes at their level-1
    # values, SPEC 1.3); "whole" trains it on paths of the whole space (every gene sampled), and the level-1 search
    # still scores each distribution with the level-1 detail genes
    level1_supernet: str = key("fixed", _one_of("fixed", "whole"))
    # level 1: "fixed" scores a distribution with its detail genes at their level-1 values (SPEC 1.3); "marginal"
    # scores it as the mean over search.marginal_samples detail settings drawn under the budget (glit.search.marginal;
    # needs a supernet trained over the whole space)
    level1_scoring: str = key("fixed", _one_of("fixed", "marginal"))
    marginal_samples: int = key(4, _at_least(1))
    # a latency budget: "4ms", "0.5s" or milliseconds, predicted by the table in latency_lut (glit latency build)
    max_latency: str | int | float | None = key(
        None, (lambda v: v is None or _time(v), "a time such as 4ms, 0.5s or 250us, or null"))
    latency_lut: str | None = None
    # glit run: how many of the level-1 top-k distributions get a level-2 supernet and search of their own (the best
    # level-2 score wins; few-shot NAS by distribution); the random-search baseline's supernet trains as long as all
    # of them together
    level2_topk: int = key(1, _at_least(1))
    # the level-2 space (and the whole space of the random baseline and of a whole-space level-1 supernet): "full",
    # every detail gene free in every block; "paper", the authors' nine options per block (presets.paper_pins)
    level2_space: str = key("full", _one_of(*LEVEL2_SPACES))
    # the local operators the spaces offer (glit.genes.LOCAL_OPS), at both levels: the paper's conv1d alone by
    # default; [conv1d, window_attn] searches which operator each block's local heads form as well
    local_ops: list[str] = key(rule=_names_of(LOCAL_OPS), factory=lambda: ["conv1d"])
    warm_start: bool = True  # glit run: warm-start the level-2 supernets from the level-1 supernet
    # glit run: epochs of the two level-2 supernets (around the winner, and over the whole space for the
    # random-search baseline); None: supernet.optim.epochs; 0: no level-2 supernet is trained: the level-2 searches
    # and random search all score on the level-1 supernet (needs search.level1_supernet=whole)
    level2_epochs: int | None = key(None, _optional(_at_least(0)))
    # evaluators (glit.scoring): the finetune evaluator's steps on the supernet's training images and its learning
    # rate (times the supernet recipe's), and the short evaluator's epochs of the retraining recipe compressed to them
    finetune_steps: int = key(200, _at_least(1))
    finetune_lr: float = key(0.1, _positive())
    short_epochs: int = key(1, _at_least(1))
    # glit run and glit search: a finalist round (glit.recipes.finalists): the top `finalists` distinct candidates of
    # a search re-scored by `finalist_evaluator`, the best winning (0: off, the search's own answer wins). glit run
    # gives it to the level-1 search (the distribution), to random search and, in glit ablate, to one-level search
    finalists: int = key(0, _at_least(0))
    finalist_evaluator: str = key("short-tse", _one_of(*EVALUATORS))
    # glit run: where the hierarchy's round is: 1, on the level-1 search's top distributions (at their level-1
    # details); 2, after level 2, on complete architectures: each level-2 search's answer and best candidates
    # (pooled over the search.level2_topk distributions), and level 1's best-scored distribution goes on unrounded
    finalists_level: int = key(1, (lambda v: v in (1, 2), "1 or 2"))
    # glit run, level 2: keep the level-1 winner unless a candidate beats its score by this many binomial standard
    # errors of the search split (0: the best score wins)
    incumbent_margin: float = key(2.0, _at_least(0))


@dataclass
class LogConfig:
    """What a run writes besides its own records."""

    # TensorBoard event files in every stage folder (OUT/tensorboard): the scalars of metrics.jsonl per epoch, and a
    # search's best and mean score per generation; needs the tensorboard package (pip install 'glit[tensorboard]')
    tensorboard: bool = False


@dataclass
class RunConfig:
    """``glit run`` only: what the pipeline reports besides its own results."""

    # a glit truth file (truth.jsonl) for the same preset and data: the summary and the report give each supernet's
    # Kendall tau and regret against it; None: DIR/truth.jsonl when the run folder holds one
    truth: str | None = None
    # retrain each finalist with this many seeds (seed, seed + 1, ...): summary.json gives the mean top-1 and its
    # std over seeds, and pools the paired comparisons over them. Each seed costs one more retraining per finalist:
    # the presets keep 1 (the demo's 3-minute budget has room for one)
    seeds: int = key(1, _at_least(1))


@dataclass
class Config:
    preset: str = "demo"  # the space preset: model family and candidate sets
    seed: int = key(0, _at_least(0))
    device: str = key("auto", (lambda v: v in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", v) is not None,
                               "auto, cpu, cuda or cuda:N"), "auto (CUDA when available) | cpu | cuda")
    level: int = key(1, (lambda v: v in (1, 2), "1 or 2"), "supernet level: 1 (distribution) or 2 (details)")
    distribution: list[int] | None = key(None, _optional(_counts()),
                                         "level 2: global heads per block (from the level-1 winner)")
    data: DataConfig = field(default_factory=DataConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    train: OptimConfig = field(default_factory=OptimConfig)  # retraining / baselines
    supernet: SupernetConfig = field(default_factory=SupernetConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    run: RunConfig = field(default_factory=RunConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# -- validation: each key's rule is on its field (key); the rules between keys are here ---------------------------


# Rules between keys: (the key named in the message, the check, what is allowed).
CROSS_RULES = (
    ("train.max_epochs", lambda c: c.train.max_epochs is None or c.train.max_epochs >= c.train.min_epochs,
     "at least train.min_epochs, or null"),
    ("supernet.optim.max_epochs", lambda c: c.supernet.optim.max_epochs is None
     or c.supernet.optim.max_epochs >= c.supernet.optim.min_epochs, "at least supernet.optim.min_epochs, or null"),
    ("search.level2_topk", lambda c: c.search.level2_topk <= c.search.topk, "at most search.topk"),
    ("supernet.optim.compile", lambda c: not c.supernet.optim.compile,
     "false (a supernet's path changes every step: compiling would recompile per path; train.compile compiles "
     "retraining)"),
    ("supernet.adam_step", lambda c: c.supernet.adam_step == "tensor" or c.supernet.optim.amp != "fp16",
     "tensor with supernet.optim.amp=fp16 (the grad scaler unscales only what AdamW's own step sees; use bf16)"),
    ("search.level1_scoring", lambda c: c.search.level1_scoring == "fixed" or c.search.level1_supernet == "whole",
     "fixed unless search.level1_supernet=whole (marginal scoring draws details from a whole-space supernet)"),
    ("search.level2_epochs", lambda c: c.search.level2_epochs != 0 or c.search.level1_supernet == "whole",
     "at least 1 unless search.level1_supernet=whole (0 searches level 2 on the level-1 supernet, which must then "
     "have trained the details)"),
)


def validate(cfg: Config, where: str = "config") -> Config:
    """Check every key's rule (declared on its field, ``key``) and the rules between keys (``CROSS_RULES``): a
    one-line error that names the key, the value and what is allowed."""
    for dotted, f, value in _keys(cfg):
        if f.metadata.get("rule") is None:
            continue
        check, allowed = f.metadata["rule"]
        ok = False
        try:
            finite = not isinstance(value, float) or math.isfinite(value) or dotted.startswith("search.max_")
            ok = finite and bool(check(value))
        except TypeError:
            pass
        if not ok:
            raise GlitError(f"{where}: {dotted}={value!r}: must be {allowed}")
    for key, check, allowed in CROSS_RULES:
        if not check(cfg):
            raise GlitError(f"{where}: {key}={_get(cfg, key)!r}: must be {allowed}")
    return cfg


def _keys(cfg, prefix: str = ""):
    """Every leaf key of a config: (dotted name, its field, its value)."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from _keys(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, f, value


def _get(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def valid_keys(obj, prefix: str = "") -> list[str]:
    return [name for name, _, _ in _keys(obj, prefix)]


# Keys glit no longer has: each with the value that meant "off" and what replaced it. A run's config.yaml written
# before the key was retired holds it at that value, and still reads (the key dropped); any other value is an error
# that names the replacement, never a silent change of behaviour.
RETIRED = {
    "search.topk_retrain_epochs": (0, "search.finalists, the finalist round, picks the level-1 distribution by "
                                      "training now"),
}


def apply(cfg, data: dict, where: str, prefix: str = ""):
    """Apply a nested dict of overrides to a config dataclass, in place. Unknown keys are errors; a retired key
    (``RETIRED``) at its "off" value is dropped."""
    if not isinstance(data, dict):
        raise GlitError(f"{where}: expected a mapping at {prefix.rstrip('.') or 'top level'}")
    names = {f.name: f for f in dataclasses.fields(cfg)}
    for key, value in data.items():
        dotted = prefix + str(key)
        if dotted in RETIRED:
            off, instead = RETIRED[dotted]
            if value == off:
                continue
            raise GlitError(f"{where}: {dotted} was retired ({instead}); remove it or set it to {off}")
        if key not in names:
            valid = ", ".join(valid_keys(cfg, prefix))
            raise GlitError(f"{where}: unknown key {dotted!r} (valid keys: {valid})")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            apply(current, value, where, f"{prefix}{key}.")
        else:
            setattr(cfg, key, _typed(value, _hints(type(cfg))[key], where, prefix + key))
    return cfg


def set_value(cfg: Config, assignment: str) -> None:
    """Apply one ``key=value`` override; the value is parsed as YAML (``3``, ``0.1``, ``true``, ``[1, 2]``)."""
    if "=" not in assignment:
        raise GlitError(f"--set {assignment!r}: expected key=value")
    key, text = assignment.split("=", 1)
    try:
        value = read_yaml(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    apply(cfg, _nested(key.strip(), value), f"--set {key}")


def updated(cfg: Config, changes: dict) -> Config:
    """A copy of ``cfg`` with dotted keys changed (``{"search.strategy": "random", "level": 2}``), checked as
    ``--set`` values are."""
    new = copy.deepcopy(cfg)
    for key, value in changes.items():
        apply(new, _nested(key, value), "config")
    _epochs_given(new, changes)
    return validate(new)


def _epochs_given(cfg: Config, keys) -> None:
    """A recipe whose ``epochs`` is set (by ``--set``, a YAML file or ``updated``) without its ``images`` trains
    exactly that many epochs: the data-sized length (``images``) of the preset no longer applies."""
    for name in ("train", "supernet.optim"):
        if f"{name}.epochs" in keys and f"{name}.images" not in keys:
            parent, _, leaf = name.rpartition(".")
            getattr(getattr(cfg, parent) if parent else cfg, leaf).images = None


def _dotted(data: dict, prefix: str = "") -> set[str]:
    """The dotted keys of a nested mapping: ``{"a": {"b": 1}}`` -> ``{"a.b"}``."""
    keys = set()
    for key, value in data.items():
        keys |= _dotted(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}"}
    return keys


def _nested(dotted: str, value) -> dict:
    """``"a.b", 1`` -> ``{"a": {"b": 1}}``."""
    *parents, leaf = dotted.split(".")
    nested = node = {}
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return nested


def load_config(preset: str | None = None, file: str | None = None, overrides: list[str] = ()) -> Config:
    """Preset first, then the YAML file, then each ``--set``. A YAML file may name its own ``preset``."""
    data = {}
    if file:
        try:
            data = read_yaml(Path(file).read_text(encoding="utf-8")) or {}
        except OSError as err:
            raise GlitError(f"{file}: cannot read config ({err.strerror})") from None
        except UnicodeDecodeError:
            raise GlitError(f"{file}: not a config file (not UTF-8 YAML text)") from None
        except yaml.YAMLError as err:
            raise GlitError(f"{file}: malformed YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise GlitError(f"{file}: expected a mapping of config keys")
    name = preset or data.get("preset") or "demo"
    cfg = run_preset(name)
    if file:
        apply(cfg, data, file)
        if preset:
            cfg.preset = preset
        _epochs_given(cfg, _dotted(data))
        validate(cfg, str(file))
    for assignment in overrides:
        set_value(cfg, assignment)
    _epochs_given(cfg, _dotted(data) | {a.split("=", 1)[0].strip() for a in overrides})
    return validate(cfg, "--set")


class _Yaml12(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's core-schema scalars (PyYAML reads YAML 1.1): only true/false are
    booleans, so ``data.cache=no`` stays the word "no", and ``6e-2`` is a number, not the string it is in 1.1."""


_Yaml12.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                              list("tTfF"))
_Yaml12.add_implicit_resolver("tag:yaml.org,2002:float",  # an exponent without a dot: 6e-2, 1E3
                              re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"), list("-+0123456789."))


def read_yaml(text: str):
    """YAML text as Python values, the one way glit reads YAML (``_Yaml12``)."""
    return yaml.load(text, Loader=_Yaml12)


@functools.cache
def _hints(cls) -> dict:
    """A config dataclass's declared field types, resolved (this module uses postponed annotations)."""
    return typing.get_type_hints(cls)


@functools.cache
def _adapter(hint) -> TypeAdapter:
    return TypeAdapter(hint)


def _typed(value, hint, where: str, key: str):
    """``value`` as its field's declared type, checked by pydantic in strict mode: an int is a float, but ``true``
    is not an int, ``3`` is not a string and nothing is parsed from text (YAML's reading, ``read_yaml``, has done
    that). Strict, because lax mode would accept ``"3"`` or ``true`` for an integer key."""
    try:
        return _adapter(hint).validate_python(value, strict=True)
    except ValidationError:
        raise GlitError(f"{where}: {key} must be {_type_name(hint)}, got {value!r}") from None


_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}


def _type_name(hint) -> str:
    """``int | None`` -> "an integer or null"; ``list[str]`` -> "a list"."""
    if typing.get_origin(hint) is list:
        return "a list"
    return " or ".join(map(_type_name, typing.get_args(hint))) if typing.get_args(hint) else _TYPE_NAMES[hint]


# -- the presets' run configurations -------------------------------------------------------------------------------

RECIPES = {"tiny": "imagenet", "small": "imagenet", "base": "imagenet"}  # preset -> its recipe file, if not its name


def run_preset(name: str) -> Config:
    """The full run configuration of a space preset: the defaults above with the preset's recipe file applied
    (``glit/configs/<name>.yaml``, shipped in the package: ``demo``, ``cifar``, and ``imagenet`` for tiny, small
    and base). Each file says why it holds what it holds; the figures behind the choices are in bench/RESULTS.md.

    **Length sized by the data.** Every recipe is stated in images seen (``images``; ``glit.train.optim.sized``):
    the epochs are those of the reference data (ImageNet-1k's 1,281,167 training images less the 50,000 of the
    search split for supernets; CIFAR's 20,000-image subset, 19,000 for supernets; the digits' 1,438 and 1,138),
    and another tree gets ``images / its training images`` epochs, at least 1 and at most ``max_epochs`` (1000,
    100, 200): a 2,000-image tree trains the ``cifar`` recipe for 80 epochs, as many steps as CIFAR's 20k do, and a
    10x larger one for 1. The warm-up scales alike. ``--epochs`` or ``--set train.epochs=N`` without ``images``
    means exactly N epochs.
    """
    lookup(SPACES, name, "preset")
    recipe = resources.files("glit") / "configs" / f"{RECIPES.get(name, name)}.yaml"
    cfg = apply(Config(), read_yaml(recipe.read_text(encoding="utf-8")), f"glit/configs/{recipe.name}")
    cfg.preset = name
    return cfg
