"""Train one architecture from scratch (retraining, or a baseline) and evaluate it on the test split."""

from __future__ import annotations

import json
from pathlib import Path

from glit.config import Config
from glit.cost import cost
from glit.data.build import SharedData, eval_loader, load_data, same_split, train_loader
from glit.errors import GlitError
from glit.files import write_json
from glit.folder import prepare_out, write_config
from glit.nn import build_model
from glit.recipes.common import arch_for_data, init_generator
from glit.space import Arch
from glit.train.checkpoint import expect_kind, load_checkpoint
from glit.train.dist import Dist, init_distributed
from glit.train.fit import fit
from glit.train.loop import evaluate
from glit.train.optim import describe_length, sized

PREDICTIONS = "predictions.json"  # per-image correctness on the test split, "0"/"1" in loader order


def train(cfg: Config, arch: Arch, out: str | Path, resume: bool = False, dist: Dist | None = None,
          shared: SharedData | None = None) -> dict:
    """Train ``arch`` from scratch on the whole training set and report top-1 on the test split. (Choices made
    during a search train without the search split and score on it: ``glit.scoring.short``.) ``dist`` (default: the
    process group that torchrun describes, or one process) lets ``glit truth`` train one model per process under
    torchrun; ``shared`` the data already decoded by an earlier stage (``glit.data.build.SharedData``)."""
    out = Path(out)
    dist = dist or init_distributed(cfg.device)
    resume_from = prepare_out(out, cfg, resume, dist, command="glit train")
    checkpoint = load_checkpoint(resume_from) if resume_from else None
    if checkpoint is not None:
        expect_kind(checkpoint, "model", resume_from, "use another --out")
        done = Arch.from_dict(checkpoint.get("arch"), f"{resume_from}: arch")
        if done.blocks != arch.blocks:
            raise GlitError(f"{out}: holds a run of another arch; use another --out, or the same --arch")
        split = checkpoint.get("split", {})
        images = split.get("fit_size", 0) + split.get("search_size", 0)
        if checkpoint["epoch"] >= sized(cfg.train, images).epochs:
            return _result(done, checkpoint["metrics"])  # a finished run: nothing to load or train

    data = load_data(cfg, shared)
    if checkpoint is not None and not same_split(checkpoint.get("split"), data.record):
        raise GlitError(f"{out}: holds a run on other data (its split.json differs from this data's); use another "
                        "--out, or the run's data")
    arch = arch_for_data(arch, data.num_classes)
    img = arch.family.img_size
    train_set, test_set = data.full, data.test
    o = sized(cfg.train, len(train_set))
    loader = train_loader(cfg, train_set, img, o.batch_size // dist.world, dist.rank, dist.world)
    if dist.main:
        print(describe_length(o, len(train_set), len(loader), "train"), flush=True)
    test = eval_loader(cfg, test_set, img, o.batch_size, dist.rank, dist.world)

    model = build_model(arch, drop_path=o.drop_path, generator=init_generator(cfg.seed)).to(dist.device)
    if o.compile:
        model.compile()  # in place: state_dict keys and checkpoints stay those of the plain model
    write_config(out, cfg, dist)
    if dist.main:
        write_json(out / "arch.json", arch.to_dict())
        write_json(out / "split.json", data.record)
    last = {}

    def evaluate_fn(m):  # keeps the latest per-image results for predictions.json
        r = evaluate(m, test, dist, None, o.amp, desc="test", per_image=True)
        last["correct"] = r.pop("correct")
        return r

    history = fit(model, cfg, o, loader, out, dist, evaluate_fn=evaluate_fn,
                  num_classes=data.num_classes, checkpoint=checkpoint, desc="train",
                  payload={"kind": "model", "arch": arch.to_dict(), "split": data.record})
    result = _result(arch, history)
    if dist.main:
        if "correct" in last:  # the final epoch's, for paired comparisons of models (glit.verdict)
            write_json(out / PREDICTIONS, {"split": result["split"], "images": len(last["correct"]),
                                           "correct": "".join("1" if c else "0" for c in last["correct"])})
        write_json(out / "result.json", result)
    return result


def read_correct(out: str | Path) -> list[bool] | None:
    """The per-image correctness that ``train`` wrote for its final epoch, or None (an older or unfinished run)."""
    path = Path(out) / PREDICTIONS
    if not path.is_file():
        return None
    return [c == "1" for c in json.loads(path.read_text())["correct"]]


def _result(arch: Arch, history: list[dict]) -> dict:
    c = cost(arch)
    return {"top1": history[-1].get("top1") if history else None, "split": "test",
            "params": c.params, "macs": c.macs, "block_macs": [b.total.macs for b in c.blocks], "epochs": len(history),
            "train_seconds": sum(h["seconds"] for h in history if "seconds" in h)}
