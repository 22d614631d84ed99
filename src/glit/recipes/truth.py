"""``glit truth``: train a stratified sample of a preset's space from scratch, as ground truth for ``glit rank``.

Each (architecture, seed) is one ``glit train`` run with the preset's retraining recipe, the same training that
``glit run`` gives a finalist, in ``DIR/runs/a{index:03d}-s{seed}/``. ``DIR`` gets:

- ``config.yaml``: the recipe (a later call with another config is refused);
- ``sample.json``: the budget, how the sample was drawn (``sampling``: stratified, or uniform with ``--sample
  uniform``; ``sample_seed``) and the sample (index, stratum, architecture, params, MACs); see ``glit.health.sample``;
- ``truth.jsonl``: one line per finished training, ordered by seed, then index, with the keys ``arch``,
  ``params``, ``macs``, ``seed``, ``top1`` (test split, percent), ``train_seconds``, ``glit`` (the version that
  trained it), and ``index``, ``stratum``, ``preset`` and ``data`` (a fingerprint of the data the model saw).

**Resuming and extending.** Run the same command again after a crash or a SIGKILL: a finished training is never
redone, and a killed one continues from its last epoch checkpoint (bit-identical on CPU to an uninterrupted run).
``--archs`` and ``--seeds`` can be raised later: the sample of n architectures is the first n of any larger one, so
the same file grows. The rows of ``truth.jsonl`` are kept even when their run folders are gone.

**Spreading the work.** Trainings are claimed through lock files (``runs/<job>.lock``, held while training), so any
number of workers share one folder and none trains a job twice; a killed worker's lock is released by the kernel.
``--jobs K`` starts K worker processes of ``--threads`` intra-op threads each (default: the cores divided by K),
one per GPU round-robin on a GPU machine; under ``torchrun`` every rank is one worker (one GPU each). Each training's
output goes to ``runs/<job>/log.txt``; the command prints one line per finished training.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import json
import multiprocessing
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as td
from tqdm import tqdm

from glit.config import Config, updated
from glit.cost import cost
from glit.data.build import SharedData, fingerprint, load_data
from glit.errors import GlitError
from glit.files import write_json, write_jsonl
from glit.folder import prepare_out, write_config
from glit.health.metrics import read_truth
from glit.health.sample import Member, stratified_sample, uniform_sample
from glit.presets import deit, level1_part, space_preset
from glit.recipes.common import arch_for_data
from glit.recipes.search import make_budget
from glit.recipes.train import train
from glit.space import Arch, SearchSpace
from glit.train.dist import Dist
from glit.version import version_string

TRUTH = "truth.jsonl"
SAMPLE_SEED = 0  # the stratified sample is a function of the preset, the data's classes and the budget alone
SAMPLINGS = ("stratified", "uniform")


@dataclasses.dataclass(frozen=True)
class Job:
    index: int
    seed: int
    member: Member

    @property
    def name(self) -> str:
        return f"a{self.index:03d}-s{self.seed}"


def truth(cfg: Config, out: str | Path, archs: int, seeds: Sequence[int], jobs: int | None = None,
          threads: int | None = None, sampling: str = "stratified", sample_seed: int = SAMPLE_SEED) -> dict:
    """Train the first ``archs`` members of the sample with each of ``seeds``; return what ``truth.jsonl`` holds.
    ``sampling``: ``stratified`` (``glit.health.sample.stratified_sample``) or ``uniform`` (``uniform_sample``),
    drawn with ``sample_seed``."""
    out = Path(out)
    if sampling not in SAMPLINGS:
        raise GlitError(f"--sample must be one of {', '.join(SAMPLINGS)}, got {sampling!r}")
    if archs < 1:
        raise GlitError(f"--archs must be at least 1, got {archs}")
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise GlitError(f"--seeds must be distinct non-negative integers, got {list(seeds)}")
    if jobs is not None and jobs < 1 or threads is not None and threads < 1:
        raise GlitError("--jobs and --threads must be at least 1")
    data = load_data(updated(cfg, {"data.cache": "no"}))  # lists the tree (classes, splits); no decoding
    old = json.loads((out / "sample.json").read_text()) if (out / "sample.json").exists() else {}
    recorded = old.get("members", [])
    how = {"sampling": sampling, "sample_seed": sample_seed}
    before = {"sampling": old.get("sampling", "stratified"), "sample_seed": old.get("sample_seed", SAMPLE_SEED)}
    if old and before != how:
        raise GlitError(f"{out / 'sample.json'}: holds a {before['sampling']} sample of seed {before['sample_seed']}, "
                        f"not a {sampling} one of seed {sample_seed}; use another --out")
    members = sample(cfg, data.num_classes, max(archs, len(recorded)), sampling, sample_seed)
    if any(row["arch"] != m.arch.to_dict() for row, m in zip(recorded, members)):
        raise GlitError(f"{out / 'sample.json'}: holds another sample (drawn by another glit, or for other data); "
                        "use another --out")
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        _join_ranks()
    dist = Dist(rank=rank, world=world)
    prepare_out(out, cfg, resume=True, dist=dist, state=TRUTH, command="glit truth")
    write_config(out, cfg, dist)
    (out / "runs").mkdir(exist_ok=True)
    data_id = fingerprint(data.record)
    if rank == 0:
        budget = make_budget(cfg, _whole(cfg, data.num_classes)).describe()
        write_json(out / "sample.json", {"preset": cfg.preset, "budget": budget, "data": data_id, **how,
                                         "members": [_member_row(i, m) for i, m in enumerate(members)]})
    todo = [Job(i, s, m) for s in seeds for i, m in enumerate(members[:archs])]
    context = {"preset": cfg.preset, "data": data_id}
    if world > 1:  # torchrun: this rank is one worker on its own device
        local = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        work(cfg, out, todo, context, _device(cfg.device, local), threads or _default_threads(local_world))
        td.barrier()  # rank 0 reports once every rank has no job left
    else:
        _pool(cfg, out, todo, context, jobs or default_jobs(cfg.device), threads)
    rows = collect(out)
    failed = [j.name for j in todo if (out / "runs" / j.name / "failed.txt").exists() and _key(j) not in
              {_row_key(r) for r in rows}]
    if failed:
        first = (out / "runs" / failed[0] / "failed.txt").read_text().strip()
        raise GlitError(f"{out}: {len(failed)} training(s) failed ({', '.join(failed[:5])}); {failed[0]}: {first}")
    return {"rows": rows, "jobs": len(todo), "out": str(out)}


def sample(cfg: Config, num_classes: int, archs: int, sampling: str = "stratified",
           sample_seed: int = SAMPLE_SEED) -> list[Member]:
    """The first ``archs`` members of the preset's sample (stratified or uniform), under the run's budget."""
    whole = _whole(cfg, num_classes)
    level1 = level1_part(cfg.preset, whole)
    budget = make_budget(cfg, whole)
    budget.check_feasible(whole)
    if sampling == "uniform":
        return uniform_sample(whole, budget, archs, sample_seed)
    all_local = level1.fix(num_global_heads=0).sample(random.Random(0))  # its only member
    anchors = [Member(deit(whole.family), "deit"), Member(all_local, "all-local")]
    return stratified_sample(whole, level1, anchors, budget, lambda a: cost(a, budget.convention).macs, archs,
                             sample_seed)


def work(cfg: Config, out: Path, todo: list[Job], context: dict, device: torch.device, threads: int) -> None:
    """One worker: train every job that is neither finished nor claimed by another worker, in order."""
    torch.set_num_threads(threads)
    version = version_string()  # the code this worker loaded, not whatever the checkout holds when a job ends
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist = Dist(device=device)
    shared = SharedData()  # the data is decoded once per worker, not once per training
    for job in todo:
        folder = out / "runs" / job.name
        if _done(out, job):
            continue
        with _claim(out / "runs" / f"{job.name}.lock") as mine:
            if not mine or _done(out, job):
                continue
            folder.mkdir(exist_ok=True)
            (folder / "failed.txt").unlink(missing_ok=True)
            try:
                with open(folder / "log.txt", "a") as log, contextlib.redirect_stdout(log), \
                        contextlib.redirect_stderr(log):
                    result = train(updated(cfg, {"seed": job.seed}), job.member.arch, folder, resume=True, dist=dist,
                                   shared=shared)
            except GlitError as err:
                (folder / "failed.txt").write_text(str(err).strip().splitlines()[-1] + "\n")
                continue
            arch = Arch.from_json(folder / "arch.json")
            write_json(folder / "row.json", {
                "arch": arch.to_dict(), "params": result["params"], "macs": result["macs"], "seed": job.seed,
                "top1": result["top1"], "train_seconds": result["train_seconds"], "glit": version,
                "index": job.index, "stratum": job.member.stratum, **context})
        collect(out)


def collect(out: Path) -> list[dict]:
    """Merge the rows of ``truth.jsonl`` and of every finished run folder, write the file, and return its rows.
    Under a lock, so that workers finishing together do not drop each other's rows."""
    with open(out / ".truth.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = {_row_key(r): r for r in read_truth(out / TRUTH)}
        for file in sorted((out / "runs").glob("*/row.json")):
            row = json.loads(file.read_text())
            rows.setdefault(_row_key(row), row)
        ordered = sorted(rows.values(), key=lambda r: (r["seed"], r.get("index", 0), json.dumps(r["arch"])))
        write_jsonl(out / TRUTH, ordered)
    return ordered


def default_jobs(device: str) -> int:
    """One worker per GPU; on CPU, one single-threaded worker per core, up to two (bench/RESULTS.md, glit truth:
    on 2 cores, 2 processes of 1 thread train ``cifar`` models faster than 1 process of 2 threads)."""
    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.device_count()
    return max(1, min(2, os.cpu_count() or 1))


def _pool(cfg: Config, out: Path, todo: list[Job], context: dict, jobs: int, threads: int | None) -> None:
    """``jobs`` worker processes; this one prints a line per finished training and a progress bar."""
    threads = threads or _default_threads(jobs)
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_child, args=(cfg, out, todo, context, str(_device(cfg.device, k)), threads),
                           daemon=False) for k in range(jobs)]
    for p in procs:
        p.start()
    reported = {j.name for j in todo if _done(out, j)}
    bar = tqdm(total=len(todo), initial=len(reported), desc="truth", unit="training", dynamic_ncols=True,
               disable=None)  # no bar when the output is not a terminal: the lines per training remain
    try:
        while True:
            alive = any(p.is_alive() for p in procs)
            for job in todo:
                if job.name not in reported and _done(out, job):
                    reported.add(job.name)
                    bar.update(1)
                    bar.write(_finished_line(out, job, len(reported), len(todo)))
            if not alive:
                break
            time.sleep(1.0)
    finally:
        bar.close()
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join()
    crashed = [p.exitcode for p in procs if p.exitcode]
    if crashed:
        raise RuntimeError(f"truth: {len(crashed)} worker process(es) died (exit codes {crashed}); see "
                           f"{out}/runs/*/log.txt, and run the same command again to continue")


def _child(cfg: Config, out: Path, todo: list[Job], context: dict, device: str, threads: int) -> None:
    _die_with_parent()
    work(cfg, out, todo, context, torch.device(device), threads)


def _die_with_parent() -> None:
    """On Linux, end this worker when the parent dies (a SIGKILLed ``glit truth`` leaves no orphan training)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _finished_line(out: Path, job: Job, done: int, total: int) -> str:
    row = json.loads((out / "runs" / job.name / "row.json").read_text()) if \
        (out / "runs" / job.name / "row.json").exists() else None
    if row is None:  # finished earlier, its folder gone: the row is in truth.jsonl
        return f"[{done}/{total}] {job.name} already in {TRUTH}"
    return (f"[{done}/{total}] {job.name}  {job.member.stratum:<20} test top-1 {row['top1']:.2f}%  "
            f"{row['macs'] / 1e6:.2f} M MACs  {row['train_seconds']:.0f} s")


@contextlib.contextmanager
def _claim(path: Path):
    """Yield True while this process holds the job's lock, False when another worker does."""
    with open(path, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _done(out: Path, job: Job) -> bool:
    if (out / "runs" / job.name / "row.json").exists():
        return True
    return _key(job) in {_row_key(r) for r in read_truth(out / TRUTH)}


def _key(job: Job) -> tuple:
    return json.dumps(job.member.arch.to_dict()["blocks"]), job.seed


def _row_key(row: dict) -> tuple:
    return json.dumps(row["arch"]["blocks"]), row["seed"]


def _member_row(index: int, m: Member) -> dict:
    c = cost(m.arch)
    return {"index": index, "stratum": m.stratum, "arch": m.arch.to_dict(), "params": c.params, "macs": c.macs}


def _whole(cfg: Config, num_classes: int) -> SearchSpace:
    space = space_preset(cfg.preset, 2, local_ops=cfg.search.local_ops)
    return dataclasses.replace(space, family=arch_for_data(deit(space.family), num_classes).family)


def _device(device: str, slot: int) -> torch.device:
    if device != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", slot % torch.cuda.device_count())
    if device == "cuda":
        raise GlitError("device=cuda, but no GPU is available")
    return torch.device("cpu")


def _default_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


def _join_ranks() -> None:
    """Under torchrun, a gloo group (on CPU and GPU alike) for the two barriers: after ``config.yaml`` is written,
    and at the end. Trainings take hours, so the group waits up to 30 days for the slowest rank."""
    if not td.is_initialized():
        td.init_process_group("gloo", timeout=datetime.timedelta(days=30))
