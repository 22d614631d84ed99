"""Every bad input is one line on stderr, exit 2, naming the culprit, and changes nothing on disk.

One table of cases over a shared world of real runs (a trained model, a supernet, a finished search, an ImageFolder
tree, checkpoints and architecture files). Each case runs the real CLI entry point (``glit.cli.main``, in this
process: no torch import per case) and asserts: exit code 2; exactly one stderr line, no traceback; every needle
in that line; and every file under the world byte-identical before and after (no file added or removed either).
Malicious pickles write a marker file if they ever run: the same snapshot proves they never did.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glit.cli import build_parser, main
from helpers import SMALL_SUPERNET, demo_arch_file, write_image_folder

FAST = ("--set", "train.batch_size=64", "--set", "data.workers=0")


class World:
    """Paths of the shared world (see ``world``)."""

    def __init__(self, root: Path):
        self.root = root
        self.good = root / "good.json"
        self.tree, self.tr, self.sn, self.search = root / "tree", root / "tr", root / "sn", root / "S"
        self.marker = root / "PWNED"


class Evil:
    """Unpickling this runs a shell command that creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def run(*argv) -> tuple[int, str]:
    """The CLI in this process: (exit code, stderr)."""
    from io import StringIO

    err, old = StringIO(), sys.stderr
    sys.stderr = err
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.stderr = old
    return code, err.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    w = World(tmp_path_factory.mktemp("world"))
    demo_arch_file(w.good)
    demo_arch_file(w.root / "other.json", seed=7)
    write_image_folder(w.tree)
    assert run(*[str(w.good) if a == GOOD else a for a in TRAIN], "--out", w.tr)[0] == 0
    assert run(*SUPERNET, "--out", w.sn)[0] == 0
    assert run("search", "--supernet", w.sn, "--out", w.search, "--population", "4", "--generations", "1")[0] == 0
    good = json.loads(w.good.read_text())

    def arch(name: str, change) -> None:
        data = json.loads(json.dumps(good))
        change(data)
        (w.root / name).write_text(json.dumps(data, allow_nan=True))

    arch("outside.json", lambda a: a["blocks"][0].update(num_global_heads=0, qkv_ratio=None, conv_ratio=1,
                                                          kernel_size=4095))
    arch("nan.json", lambda a: a["blocks"][0].update(mlp_ratio=float("nan")))
    arch("inf.json", lambda a: a["blocks"][0].update(mlp_ratio=float("inf")))
    arch("huge.json", lambda a: a["blocks"][0].update(mlp_ratio=1e308))
    arch("negative.json", lambda a: a["blocks"][0].update(mlp_ratio=-1))
    arch("heads.json", lambda a: a["blocks"][0].update(num_global_heads=99))
    arch("kernel.json", lambda a: a["blocks"][0].update(num_global_heads=0, kernel_size=4, conv_ratio=1))
    arch("missing.json", lambda a: a["blocks"][0].pop("mlp_ratio"))
    arch("unknown.json", lambda a: a["blocks"][0].update(colour="red"))
    arch("depth.json", lambda a: a["blocks"].pop())
    arch("embed.json", lambda a: a["family"].update(embed_dim=0))
    arch("patch.json", lambda a: a["family"].update(patch_size=3))
    arch("giant.json", lambda a: a["family"].update(embed_dim=10 ** 9))
    arch("chans.json", lambda a: a["family"].update(in_chans=1))
    (w.root / "binary.json").write_bytes(bytes(range(256)))
    (w.root / "latin1.json").write_bytes(w.good.read_text().replace("family", "famílý").encode("latin-1"))
    (w.root / "utf16.json").write_bytes(w.good.read_text().encode("utf-16"))
    (w.root / "empty.json").write_text("")
    (w.root / "list.json").write_text("[1, 2]")

    (w.root / "binary.yaml").write_bytes(bytes(range(256)))
    (w.root / "utf16.yaml").write_bytes("train:\n  epochs: 2\n".encode("utf-16"))
    (w.root / "malformed.yaml").write_text("train: [epochs: 2\n")
    (w.root / "list.yaml").write_text("- 1\n- 2\n")
    (w.root / "unknown.yaml").write_text("train:\n  epoch: 2\n")
    (w.root / "range.yaml").write_text("train:\n  epochs: -3\n")

    (w.root / "notempty").mkdir()
    (w.root / "notempty" / "notes.txt").write_text("mine\n")
    (w.root / "afile").write_text("not a folder\n")
    shutil.copytree(w.tr, w.root / "badcfg")
    (w.root / "badcfg" / "config.yaml").write_bytes(b"\x00\x01 not yaml: [")
    shutil.copytree(w.search, w.root / "badstate")
    (w.root / "badstate" / "search_state.json").write_text("{ truncated")

    evil = pickle.dumps(Evil(w.marker), protocol=2)
    (w.root / "evil.pt").write_bytes(evil)
    for folder in ("tr", "sn"):
        shutil.copytree(w.root / folder, w.root / f"{folder}-evil")
        (w.root / f"{folder}-evil" / "checkpoint.pt").write_bytes(evil)
    (w.root / "text.pt").write_text("hello\n")
    (w.root / "truncated.pt").write_bytes(w.tr.joinpath("checkpoint.pt").read_bytes()[:5000])
    ckpt = torch.load(w.tr / "checkpoint.pt", weights_only=True)
    torch.save({k: v for k, v in ckpt.items() if k != "config"}, w.root / "noconfig.pt")
    torch.save({**ckpt, "model": {k: v for i, (k, v) in enumerate(ckpt["model"].items()) if i}},
               w.root / "notensor.pt")
    sn_ckpt = torch.load(w.sn / "checkpoint.pt", weights_only=True)
    torch.save({**sn_ckpt, "space": {"family": sn_ckpt["space"]["family"], "blocks": 7}}, w.root / "badspace.pt")
    torch.save({**sn_ckpt, "space": {**sn_ckpt["space"], "blocks": [{"num_global_heads": 3}] * 4}},
               w.root / "badspace2.pt")

    def tree(name, classes=(0, 1, 2), **kw):
        return write_image_folder(w.root / name, classes, **kw)

    tree("single", classes=(0,))
    tree("noval")
    shutil.rmtree(w.root / "noval" / "val")
    tree("notrain")
    shutil.rmtree(w.root / "notrain" / "train")
    tree("emptyclass")
    for f in (w.root / "emptyclass" / "train" / "digit_0").iterdir():
        f.unlink()
    tree("differ")
    shutil.rmtree(w.root / "differ" / "val" / "digit_2")
    tree("otherclasses", classes=(3, 4, 5))
    tree("badfirst")
    first = sorted((w.root / "badfirst" / "train" / "digit_0").iterdir())[0]
    first.write_bytes(b"not an image at all")
    tree("bomb")
    Image.fromarray(np.zeros((3000, 3000), np.uint8)).save(w.root / "bomb" / "train" / "digit_0" / "000-big.png")

    (w.root / "truth-bad.jsonl").write_text('{"arch": 1, "seed": 0, "top1": 50}\n{oops\n')
    return w


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def W(name):  # noqa: N802 - a short marker for "a path in the world" inside the table
    return ("world", name)


S, SN, TR, TREE, GOOD = W("S"), W("sn"), W("tr"), W("tree"), W("good.json")
TRAIN = ("train", "--preset", "demo", "--arch", GOOD, "--epochs", "1", *FAST)
SUPERNET = ("train-supernet", "--preset", "demo", "--epochs", "1", *FAST, *SMALL_SUPERNET)
SEARCH = ("search", "--supernet", SN, "--population", "4", "--generations", "1")

# (case id, argv, needles the one line must contain). W(name) is a path in the world; "NEW" a fresh --out.
CASES = [
    # -- run folders: one command, one config, nothing overwritten
    ("train-into-search-folder", (*TRAIN, "--out", S), ("S", "glit search")),
    ("train-search-config-into-search", ("train", "--config", W("S/config.yaml"), "--arch", W("S/best.json"),
                                         "--out", S), ("glit search run",)),
    ("supernet-into-train-folder", (*SUPERNET, "--out", TR), ("tr", "glit train run")),
    ("search-into-train-folder", (*SEARCH, "--out", TR), ("tr", "glit train run")),
    ("search-into-supernet-folder", (*SEARCH, "--out", SN), ("sn", "glit train-supernet")),
    ("run-into-train-folder", ("run", "demo", "--out", TR), ("tr", "glit train run")),
    ("truth-into-train-folder", ("truth", "demo", "--archs", "1", "--out", TR), ("tr", "glit train run")),
    ("train-again-without-resume", (*TRAIN, "--out", TR), ("tr", "--resume")),
    ("resume-another-arch", ("train", "--preset", "demo", "--arch", W("other.json"), "--epochs", "1", *FAST,
                             "--out", TR, "--resume"), ("tr", "another arch")),
    ("resume-another-config", (*TRAIN, "--set", "train.lr=0.1", "--out", TR, "--resume"), ("train.lr",)),
    ("resume-supernet-another-space", (*SUPERNET, "--level", "2", "--out", SN, "--resume"),
     ("sn", "another space", "stage.json")),
    ("resume-search-another-strategy", (*SEARCH, "--strategy", "random", "--out", S, "--resume"),
     ("S", "another strategy", "stage.json")),
    ("out-is-a-file", (*TRAIN, "--out", W("afile")), ("afile", "not a folder")),
    ("out-unwritable", (*TRAIN, "--out", "/dev/null/run"), ("/dev/null/run", "cannot write")),
    ("out-not-empty", (*TRAIN, "--out", W("notempty")), ("notempty", "not empty")),
    ("corrupt-config-yaml", (*TRAIN, "--out", W("badcfg"), "--resume"), ("badcfg/config.yaml", "unreadable")),
    ("corrupt-search-state", (*SEARCH, "--out", W("badstate"), "--resume"), ("search_state.json", "unreadable")),
    # -- config values
    *[(f"set-{kv}", (*TRAIN, "--set", kv, "--out", "NEW"), (kv.split("=")[0],)) for kv in (
        "train.epochs=-1", "train.epochs=0", "train.batch_size=0", "train.batch_size=-4", "train.lr=-1",
        "train.lr=nan", "train.lr=inf", "data.workers=-1", "aug.repeated_aug=0", "train.amp=fp8",
        "train.eval_every=0", "device=tpu", "device=cuda:x", "train.drop_path=1.5", "aug.erasing=2",
        "aug.label_smoothing=1", "data.search_size=0", "data.cache=maybe", "seed=-1", "train.max_epochs=0",
        "train.images=0", "search.mutate_prob=2", "search.strategy=greedy", "supernet.sandwich=-1", "level=3",
        "train.epochs=abc", "train.epoch=3", "search.level2_topk=9", "search.max_macs=nan",
        "search.level1_scoring=marginal", "supernet.optim.compile=true", "search.local_ops=[nope]",
        "search.local_ops=[]", "aug.flip=yes", "run.truth=[a]", "log.tensorboard=null")],
    ("retired-key", (*TRAIN, "--set", "search.topk_retrain_epochs=1", "--out", "NEW"),
     ("search.topk_retrain_epochs", "retired", "search.finalists")),
    ("no-gpu-here", (*TRAIN, "--set", "device=cuda", "--out", "NEW"), ("device=cuda", "no CUDA GPU")),
    ("search-generations-0", (*SEARCH, "--generations", "0", "--out", "NEW"), ("search.generations",)),
    ("search-population-0", (*SEARCH, "--population", "0", "--out", "NEW"), ("search.population",)),
    # -- budgets
    ("max-macs-nan", (*SEARCH, "--max-macs", "nan", "--out", "NEW"), ("search.max_macs",)),
    ("max-macs-negative", (*SEARCH, "--max-macs", "-5", "--out", "NEW"), ("search.max_macs",)),
    ("max-macs-zero", (*SEARCH, "--max-macs", "0", "--out", "NEW"), ("search.max_macs",)),
    ("max-macs-words", (*SEARCH, "--max-macs", "lots", "--out", "NEW"), ("search.max_macs",)),
    ("max-macs-impossible", (*SEARCH, "--max-macs", "1K", "--out", "NEW"), ("budget", "impossible")),
    ("max-params-impossible", (*SEARCH, "--max-params", "10", "--out", "NEW"), ("budget", "impossible")),
    # -- architecture files
    *[(f"arch-{name}", ("train", "--preset", "demo", "--arch", W(f"{name}.json"), "--epochs", "1", *FAST,
                        "--out", "NEW"), (f"{name}.json", *needles)) for name, needles in (
        ("nan", ("block 0: mlp_ratio: NaN",)), ("inf", ("block 0: mlp_ratio: Infinity",)),
        ("huge", ("mlp_ratio",)), ("negative", ("mlp_ratio",)),
        ("heads", ("num_global_heads",)), ("kernel", ("kernel_size",)), ("missing", ("mlp_ratio",)),
        ("unknown", ("colour",)), ("depth", ("depth",)), ("embed", ("embed_dim",)), ("patch", ("patch_size",)),
        ("giant", ("embed_dim",)), ("chans", ("in_chans",)), ("binary", ("UTF-8",)), ("latin1", ("UTF-8",)),
        ("utf16", ("UTF-8",)), ("empty", ("malformed JSON",)), ("list", ("JSON object",)),
        ("absent", ("absent.json",)))],
    # -- config files
    *[(f"config-{name}", ("train", "--config", W(f"{name}.yaml"), "--arch", GOOD, "--out", "NEW"),
       (f"{name}.yaml", *needles)) for name, needles in (
        ("binary", ("UTF-8",)), ("utf16", ("UTF-8",)), ("malformed", ("malformed YAML",)), ("list", ("mapping",)),
        ("unknown", ("train.epoch",)), ("range", ("train.epochs",)), ("absent", ("cannot read",)))],
    # -- data trees
    *[(f"data-{name}", ("train", "--preset", "cifar", "--arch", "deit-cifar", "--epochs", "1",
                        "--data", W(name), *FAST, "--set", "data.search_size=4", "--set", "data.train_subset=0",
                        "--out", "NEW"), (name, *needles)) for name, needles in (
        ("absent", ("not found",)), ("single", ("at least 2",)), ("noval", ("evaluation split",)),
        ("notrain", ("training split",)), ("emptyclass", ("digit_0", "empty")), ("differ", ("differ",)),
        ("badfirst", ("unreadable image",)), ("bomb", ("000-big.png", "too large")))],
    ("run-single-class-tree", ("run", "cifar", "--data", W("single"), "--out", "NEW"), ("single", "at least 2")),
    ("run-tree-without-val", ("run", "cifar", "--data", W("noval"), "--out", "NEW"), ("noval", "evaluation split")),
    ("data-search-split-too-large", ("train", "--preset", "cifar", "--arch", "deit-cifar", "--data", TREE, *FAST,
                                     "--set", "data.train_subset=0", "--out", "NEW"), ("data.search_size",)),
    # -- checkpoints (malicious pickles never run: the marker file would appear)
    ("eval-evil-pickle", ("eval", "--checkpoint", W("evil.pt")), ("evil.pt",)),
    ("search-evil-pickle", ("search", "--supernet", W("evil.pt"), "--out", "NEW"), ("evil.pt",)),
    ("rank-evil-pickle", ("rank", "--supernet", W("evil.pt"), "--truth", W("truth-bad.jsonl")), ("evil.pt",)),
    ("warm-start-evil-pickle", (*SUPERNET, "--level", "2", "--warm-start", W("evil.pt"), "--out", "NEW"),
     ("evil.pt",)),
    ("train-resume-evil-pickle", (*TRAIN, "--out", W("tr-evil"), "--resume"), ("checkpoint.pt",)),
    ("supernet-resume-evil-pickle", (*SUPERNET, "--out", W("sn-evil"), "--resume"),
     ("checkpoint.pt",)),
    ("eval-text-file", ("eval", "--checkpoint", W("text.pt")), ("text.pt",)),
    ("eval-truncated", ("eval", "--checkpoint", W("truncated.pt")), ("truncated.pt",)),
    ("eval-no-config", ("eval", "--checkpoint", W("noconfig.pt")), ("noconfig.pt", "config")),
    ("eval-missing-tensor", ("eval", "--checkpoint", W("notensor.pt")), ("notensor.pt", "missing tensor")),
    ("search-malformed-space", ("search", "--supernet", W("badspace.pt"), "--out", "NEW"), ("badspace.pt",)),
    ("search-space-short-genes", ("search", "--supernet", W("badspace2.pt"), "--out", "NEW"), ("badspace2.pt",)),
    ("eval-batch-size-0", ("eval", "--checkpoint", W("tr/checkpoint.pt"), "--batch-size", "0"), ("--batch-size",)),
    ("eval-other-classes", ("eval", "--checkpoint", W("tr/checkpoint.pt"), "--data", W("otherclasses")),
     ("classes",)),
    ("eval-supernet-without-arch", ("eval", "--checkpoint", W("sn/checkpoint.pt")), ("--arch",)),
    # -- truth and rank
    ("truth-archs-0", ("truth", "demo", "--archs", "0", "--out", "NEW"), ("--archs",)),
    ("truth-seeds-negative", ("truth", "demo", "--seeds", "-1", "--out", "NEW"), ("--seeds",)),
    ("truth-seeds-twice", ("truth", "demo", "--seeds", "0,0", "--out", "NEW"), ("--seeds",)),
    ("rank-truth-absent", ("rank", "--supernet", SN, "--truth", W("absent.jsonl")), ("absent.jsonl",)),
    ("rank-truth-malformed", ("rank", "--supernet", SN, "--truth", W("truth-bad.jsonl")), ("truth-bad.jsonl",)),
    # -- the command line itself: argparse's errors are one line too (no usage block)
    ("cli-epochs-abc", ("train", "--preset", "demo", "--arch", GOOD, "--epochs", "abc", "--out", "NEW"),
     ("glit train", "--epochs", "'abc'")),
    ("cli-missing-out", ("search", "--supernet", SN), ("glit search", "--out")),
    ("cli-level-3", ("train-supernet", "--preset", "demo", "--level", "3", "--out", "NEW"), ("--level", "3")),
    ("cli-unknown-command", ("frobnicate",), ("frobnicate",)),
    # -- inputs that fit badly, named by the key or file they came from
    ("distribution-too-long", (*SUPERNET, "--level", "2", "--set", "distribution=[3,3,3,3,3,3,3]", "--out", "NEW"),
     ("distribution", "4 values")),
    ("distribution-not-a-candidate", (*SUPERNET, "--level", "2", "--set", "distribution=[9,9,9,9]", "--out", "NEW"),
     ("distribution", "block 0", "num_global_heads=9")),
    ("search-model-checkpoint", ("search", "--supernet", W("tr/checkpoint.pt"), "--out", "NEW"),
     ("tr/checkpoint.pt", "a trained model (written by glit train), not a supernet", "glit train-supernet")),
    ("eval-arch-outside-space", ("eval", "--checkpoint", W("sn/checkpoint.pt"), "--arch", W("outside.json")),
     ("outside.json", "block 0", "outside the space")),
    ("max-macs-impossible-says-1K", (*SEARCH, "--max-macs", "1K", "--out", "NEW"), ("MACs <= 1 K",)),
    # -- one case at least for each of the other commands
    ("space-unknown-preset", ("space", "nope"), ("'nope'", "demo")),
    ("profile-absent-arch", ("profile", "--arch", W("absent.json")), ("absent.json",)),
    ("ablate-unknown-study", ("ablate", "demo", "--study", "nope", "--out", "NEW"), ("--study", "'nope'")),
    ("export-supernet-without-arch", ("export", "--supernet", SN, "--format", "onnx", "--out", W("x.onnx")),
     ("--arch",)),
    ("latency-absent-table", ("latency", "check", "demo", "--lut", W("absent.json")), ("absent.json",)),
    ("compare-not-a-run", ("compare", W("notempty")), ("notempty", "not a glit run folder")),
    ("report-absent", ("report", W("absent")), ("absent", "no such folder")),
]


def test_the_table_covers_every_command():
    """Each of glit's commands is refused at least once in the table (a command added later gets its case)."""
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    tried = {argv[0] for _, argv, _ in CASES}
    assert set(commands) <= tried, sorted(set(commands) - tried)


@pytest.mark.parametrize("case, argv, needles", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(world, case, argv, needles, monkeypatch):
    if case == "no-gpu-here" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    if case == "data-bomb":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)  # the 9 Mpx image is then over twice the limit
    args = [str(world.root / a[1]) if isinstance(a, tuple) else str(world.root / f"new-{case}") if a == "NEW"
            else a for a in argv]
    before = snapshot(world.root)
    code, err = run(*args)
    lines = err.strip().splitlines()
    assert code == 2, (code, err[-3000:])
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert snapshot(world.root) == before, "a refused command changed files"
    assert not world.marker.exists(), "a malicious pickle ran"
    assert not (world.root / f"new-{case}").exists(), "a refused command left its --out behind"


def test_a_second_command_on_a_locked_folder_is_refused(world, tmp_path):
    """A folder in use by another process (its flock held) is refused at once, nothing written."""
    out = tmp_path / "busy"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time\n"
                               f"fd = os.open({str(out)!r}, os.O_RDONLY)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
                               "print('locked', flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = run("train", "--preset", "demo", "--arch", world.good, "--epochs", "1", *FAST, "--out", out)
        assert code == 2 and "another glit command is running" in err and len(err.strip().splitlines()) == 1
        assert list(out.iterdir()) == []
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_a_write_killed_midway_keeps_the_old_file_and_the_run_continues(world, tmp_path):
    """SIGKILL in the middle of writing config.yaml (the write goes to a temporary file, then is renamed): the old
    config.yaml is intact, and the same command continues the run and clears the temporary file."""
    run_dir = tmp_path / "run"
    shutil.copytree(world.tr, run_dir)
    config = (run_dir / "config.yaml").read_bytes()
    killed = subprocess.run([sys.executable, "-c", "import os, signal\nfrom glit.files import write_atomic\n"
                             "def half(f):\n    f.write(b'train:\\n  epo')\n    f.flush()\n"
                             "    os.kill(os.getpid(), signal.SIGKILL)\n"
                             f"write_atomic({str(run_dir / 'config.yaml')!r}, half)\n"])
    assert killed.returncode == -signal.SIGKILL
    assert (run_dir / "config.yaml").read_bytes() == config
    assert len(list(run_dir.glob(".config.yaml.*.tmp"))) == 1  # what the killed write left
    train = [str(world.good) if a == GOOD else a for a in TRAIN]
    assert run(*train, "--set", "train.epochs=2", "--out", run_dir, "--resume")[0] == 2  # another config: refused
    assert run(*train, "--out", run_dir, "--resume")[0] == 0  # the same command: continues (finished, here)
    assert (run_dir / "config.yaml").read_bytes() == config
    assert not list(run_dir.glob(".*.tmp"))


def test_eval_on_a_tree_with_only_an_evaluation_split(world, tmp_path):
    """Evaluating a trained model needs only root/val (or root/test), whatever data.search_size is."""
    from helpers import digit_images

    for digit in range(10):
        folder = tmp_path / "evalonly" / "val" / str(digit)
        folder.mkdir(parents=True)
        for i, pixels in enumerate(digit_images(digit, 2, offset=100)):
            Image.fromarray(pixels).save(folder / f"{i}.png")
    code, err = run("eval", "--checkpoint", world.tr / "checkpoint.pt", "--data", tmp_path / "evalonly")
    assert code == 0, err[-3000:]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs: room for a run's small files, not for its checkpoint (skipped where mounting is refused)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line_that_says_so(world, tiny_disk):
    train = [str(world.good) if a == GOOD else a for a in TRAIN]
    code, err = run(*train, "--out", tiny_disk / "run")
    assert code == 2 and len(err.strip().splitlines()) == 1, err[-3000:]
    assert "checkpoint.pt" in err and "disk is full" in err
    assert not list((tiny_disk / "run").glob(".*.tmp"))  # the half-written checkpoint is gone
    assert (tiny_disk / "run" / "config.yaml").exists()  # what was written before is kept
    assert "run the same command again with --resume" in err
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_disk)], check=True)  # space freed
    code, err = run(*train, "--out", tiny_disk / "run", "--resume")  # what the message said
    assert code == 0, err[-3000:]


def test_a_model_too_large_for_memory_is_one_line(world, tmp_path):
    """A valid architecture that this machine cannot allocate (under a 5 GiB address-space limit)."""
    arch = json.loads(world.good.read_text())
    arch["family"].update(embed_dim=12288, num_heads=3)
    (tmp_path / "big.json").write_text(json.dumps(arch))
    code = ("import resource, sys\nresource.setrlimit(resource.RLIMIT_AS, (5 << 30, 5 << 30))\n"
            "from glit.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    argv = ["train", "--preset", "demo", "--arch", str(tmp_path / "big.json"), "--epochs", "1", *FAST,
            "--out", str(tmp_path / "run")]
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-3000:]
    assert "out of memory" in proc.stderr


def test_json_files_write_non_finite_numbers_as_null(tmp_path):
    """A diverged loss or an undefined rank figure is written as null: strict JSON parsers reject NaN/Infinity."""
    from glit.files import write_json, write_jsonl

    data = {"loss": float("nan"), "tau": float("-inf"), "rows": [1.5, float("inf"), (2.0, float("nan"))], "n": 3}
    write_json(tmp_path / "a.json", data)
    write_jsonl(tmp_path / "b.jsonl", [data])

    def refuse(token):
        raise AssertionError(f"non-standard JSON constant {token}")

    expected = {"loss": None, "tau": None, "rows": [1.5, None, [2.0, None]], "n": 3}
    assert json.loads((tmp_path / "a.json").read_text(), parse_constant=refuse) == expected
    assert json.loads((tmp_path / "b.jsonl").read_text(), parse_constant=refuse) == expected


def test_a_first_run_stopped_by_an_unreadable_image_continues_once_it_is_fixed(world, tmp_path):
    """An image that only the decode finds bad (not the first, which is checked before anything is written) stops
    the first run with its file named; once it is replaced, the same command continues in the same folder."""
    tree = write_image_folder(tmp_path / "tree")
    bad = sorted((tree / "train" / "digit_1").iterdir())[-1]
    good = bad.read_bytes()
    bad.write_bytes(b"not an image at all")
    argv = ("train", "--preset", "cifar", "--arch", "deit-cifar", "--epochs", "1", "--data", tree, *FAST,
            "--set", "data.search_size=4", "--set", "data.train_subset=0", "--set", "train.batch_size=8",
            "--set", "data.cache=no",  # decoded while training: the bad image is found after the run started
            "--out", tmp_path / "run")
    code, err = run(*argv)
    assert code == 2 and bad.name in err and len(err.strip().splitlines()) == 1, err[-3000:]
    assert (tmp_path / "run" / "config.yaml").is_file()  # it had started
    bad.write_bytes(good)
    code, err = run(*argv)
    assert code == 0, err[-3000:]
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
