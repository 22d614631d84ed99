"""Atomic file writes: write a temporary file in the same folder, flush it to disk, then rename it over the target.

A crash, a SIGKILL or a full disk never leaves half a file: the target holds its old content or the new one. A
failed write removes its temporary file, and an I/O error (a full disk, a read-only or unwritable folder) becomes
the one-line error that names the file. Temporary files are named ``.NAME.PID.tmp``; ``remove_stale_temporaries``
clears those that a killed process left behind.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from glit.errors import GlitError


def write_atomic(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, fsync it, and rename it to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise io_error(path, err) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        if _nearly_full(path.parent):  # torch.save reports a failed write as a RuntimeError
            raise io_error(path, OSError(errno.ENOSPC, "No space left on device")) from None
        raise
    _fsync_folder(path.parent)


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: str | Path, data) -> None:
    write_text_atomic(path, dumps(data, indent=2) + "\n")


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    write_text_atomic(path, "".join(dumps(row) + "\n" for row in rows))


def dumps(data, indent: int | None = None) -> str:
    """JSON that any parser reads: a NaN or an infinity (a diverged loss, an empty ranking) is written as null, not
    as Python's ``NaN``/``Infinity`` extensions."""
    return json.dumps(nan_to_null(data), indent=indent, allow_nan=False)


def nan_to_null(data):
    """``data`` with every non-finite float replaced by None (recursively through dicts, lists and tuples)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: nan_to_null(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [nan_to_null(v) for v in data]
    return data


def io_error(path: str | Path, err: OSError) -> GlitError:
    """The one-line error for an I/O failure on ``path``, saying plainly when the disk is full."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return GlitError(f"{path}: cannot write: the disk is full (free some space, then run the same command again)")
    return GlitError(f"{path}: cannot write ({err.strerror or err})")


def remove_stale_temporaries(folder: Path) -> None:
    """Remove the temporary files that killed writes left in ``folder`` (call it only while holding its lock)."""
    for tmp in folder.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < 1 << 20
    except OSError:
        return False


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: some file systems cannot fsync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
