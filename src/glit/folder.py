"""A run folder (``--out DIR``) belongs to one command and one config.

- **Checked before anything is written.** ``prepare_out`` refuses a folder that is a file, that holds another
  command's run (``OWNER_FILES``: a ``glit search`` folder is never a ``glit train`` folder), that holds a run with
  another config, or that holds a run when ``--resume`` was not given, or that is not empty and holds no glit run.
  It writes nothing: ``write_config`` writes ``config.yaml`` once the command has validated all its inputs (data
  included) and is about to write its first file, so a refused or failed command leaves the folder as it was, and
  the corrected command is not refused for a config it never ran.
- **Comparing configs** ignores ``IGNORED_ON_RESUME``: settings that do not change the result (``data.workers``),
  or paths that may be spelled differently or move with the run (``data.root``: the data's identity is checked by
  the checkpoint's split record instead; ``supernet.warm_start``: used only before the first checkpoint), so a run
  continues from any working directory and after its folder or its data has moved.
- **A stage's arguments.** ``glit train-supernet`` and ``glit search`` take what differs between the stages of a
  ``glit run`` (the space, the supernet's length, the search strategy and its length) as arguments, and record them
  in ``stage.json`` beside ``config.yaml``: inside ``glit run`` every stage's ``config.yaml`` is the run's own, and its
  ``stage.json`` says what the stage was given. A folder continues only with the same arguments; the config keys
  that once carried them (``STAGE_KEYS``) are not compared, so folders written before ``stage.json`` existed, whose
  ``config.yaml`` holds a copy of the run's config with these keys changed, still continue.
- **Locked while a command runs in it** (``lock``: ``flock`` on the folder itself, so no file is added): a second
  command on the same folder is refused at once. The kernel releases the lock when the process dies. The CLI locks
  ``--out`` around every command that writes one (rank 0 only under torchrun).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import yaml

from glit.config import Config, apply, read_yaml
from glit.errors import GlitError
from glit.files import io_error, remove_stale_temporaries, write_json, write_text_atomic
from glit.layout import STAGE
from glit.train.dist import Dist, barrier

IGNORED_ON_RESUME = ("data.workers", "run.truth", "data.root", "supernet.warm_start", "log.tensorboard")
STAGE_KEYS = ("level", "distribution", "supernet.optim.epochs", "supernet.optim.images", "search.strategy",
              "search.generations", "search.random_candidates")

# The file that each command writes first (after config.yaml): a folder holding one belongs to that command.
OWNER_FILES = (("run.json", "glit run"), ("sample.json", "glit truth"), ("search_state.json", "glit search"),
               ("candidates.jsonl", "glit search"), ("finalists.json", "glit finalists"),
               ("space.json", "glit train-supernet"), ("arch.json", "glit train"))

_held: dict[Path, tuple[int, bool]] = {}  # folder -> (the descriptor that holds its lock, whether lock created it)


def owner(out: Path) -> str | None:
    """The command whose run ``out`` holds, or None."""
    return next((command for name, command in OWNER_FILES if (out / name).exists()), None)


def prepare_out(out: Path, cfg: Config, resume: bool, dist: Dist, state: str = "checkpoint.pt",
                command: str = "glit train", stage: dict | None = None) -> Path | None:
    """Check ``out`` for ``command`` with ``cfg`` (and a stage's arguments, ``stage``); write nothing. Returns the
    state file to resume from, if any."""
    if out.exists() and not out.is_dir():
        raise GlitError(f"{out}: --out is a file, not a folder")
    config_file, state_file = out / "config.yaml", out / state
    held = owner(out)
    if held is not None and held != command:
        raise GlitError(f"{out}: holds a {held} run; give this {command} another --out")
    if config_file.exists():
        ignored = IGNORED_ON_RESUME + (STAGE_KEYS if stage is not None else ())
        diff = _first_difference(read_config(config_file).to_dict(), cfg.to_dict(), ignored)
        if diff:
            raise GlitError(f"{out}: holds a run with another config ({diff}); use another --out, or the same config")
        if stage is not None and (out / STAGE).exists():
            old, new = _read_stage(out / STAGE), json.loads(json.dumps(stage))
            changed = [key for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
            if changed:
                raise GlitError(f"{out}: holds a {command} stage with another {', '.join(changed)} (its "
                                f"{STAGE}); use another --out")
        # Same command, same config: a folder with no progress yet (a first run stopped before its first
        # checkpoint, on an unreadable image say) simply continues; one with progress needs --resume.
        if state_file.exists() and not resume:
            raise GlitError(f"{out}: already holds a run; pass --resume to continue it, or use another --out")
    elif out.is_dir() and any(out.iterdir()) and not resume:
        raise GlitError(f"{out}: exists and is not empty, and holds no glit run; use another --out")
    return state_file if resume and state_file.exists() else None


def write_config(out: Path, cfg: Config, dist: Dist, stage: dict | None = None) -> None:
    """Create ``out`` and write ``config.yaml`` (and a stage's arguments, ``stage.json``) atomically, once the
    command's inputs are all validated."""
    if dist.main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise io_error(out, err) from None
        remove_stale_temporaries(out)
        write_text_atomic(out / "config.yaml", cfg.to_yaml())
        if stage is not None:
            write_json(out / STAGE, stage)
    barrier(dist)


def read_config(file: Path) -> Config:
    """A run's ``config.yaml``. A key that it lacks (one added to glit since) reads as its default, which keeps the
    behaviour from before the key existed: runs written by an older glit still continue."""
    try:
        data = read_yaml(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not UTF-8" if isinstance(err, UnicodeDecodeError) \
            else "malformed YAML"
        raise GlitError(f"{file}: unreadable run config ({reason}); remove the folder or use another --out") from None
    if not isinstance(data, dict):
        raise GlitError(f"{file}: unreadable run config (not a mapping); remove the folder or use another --out")
    return apply(Config(), data, str(file))


def lock(out: Path) -> None:
    """Create ``out`` if need be and hold an exclusive lock on it until the process ends (or ``unlock``)."""
    out = Path(out).absolute()
    if out in _held:
        return
    if out.exists() and not out.is_dir():
        raise GlitError(f"{out}: --out is a file, not a folder")
    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_RDONLY)
    except OSError as err:
        raise io_error(out, err) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise GlitError(f"{out}: another glit command is running in this folder; wait for it, or use another "
                        "--out") from None
    _held[out] = fd, created
    remove_stale_temporaries(out)  # ours now: any temporary file in it is a killed write's


def unlock(out: Path) -> None:
    """Release the lock; a folder that ``lock`` created and nothing was written to is removed again."""
    out = Path(out).absolute()
    fd, created = _held.pop(out, (None, False))
    if fd is None:
        return
    if created and not any(out.iterdir()):
        out.rmdir()
    os.close(fd)


def _read_stage(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise GlitError(f"{file}: unreadable stage arguments; remove the folder or use another --out")
    return data


def _first_difference(old: dict, new: dict, ignored: tuple[str, ...], prefix: str = "") -> str | None:
    for key in sorted(set(old) | set(new)):
        path = prefix + key
        if path in ignored:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diff = _first_difference(a, b, ignored, path + ".")
            if diff:
                return diff
        elif a != b:
            return f"{path}: {a!r} there, {b!r} now"
    return None
