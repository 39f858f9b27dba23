"""Atomic file output: a reader never sees a half-written result, and a killed run never
leaves one behind (the old file, if any, stays until the new one is complete)."""

from __future__ import annotations

import errno
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_UMASK = os.umask(0)
os.umask(_UMASK)


# errors of the disk rather than of the code: reported with the file and what to do
_DISK_ERRORS = {errno.ENOSPC: "the disk holding it is full: free space on it and run again",
                errno.EDQUOT: "the disk quota is exceeded: free space and run again",
                errno.EROFS: "the file system is read-only: choose a writable folder",
                errno.EACCES: "permission denied: make the folder writable (chmod u+w)",
                errno.EPERM: "permission denied: make the folder writable (chmod u+w)"}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temporaries(path: Path) -> None:
    """Remove the temporary files that writers of ``path`` killed mid-write left beside it."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    The temporary name carries the writer's pid, so one left by a killed writer is removed
    by the next write of the same file. A full disk or a read-only folder raises an OSError
    that names ``path`` and the fix.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)
    except OSError as err:
        raise _named(err, path) from err
    os.close(fd)
    tmp = Path(tmp)
    try:
        tmp.chmod(0o666 & ~_UMASK)  # mkstemp makes 0600; results are shared like any other file
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        raise _named(err, path) from err
    finally:
        tmp.unlink(missing_ok=True)


def _named(err: OSError, path: Path) -> OSError:
    fix = _DISK_ERRORS.get(err.errno)
    if fix is None or str(path) in str(err):
        return err
    return type(err)(err.errno, f"cannot write {path}: {fix} (the previous version, if any, "
                     f"is unchanged)", str(path))


def _write(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return _write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"
    return write_text(path, text)


def copy_file(src: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """``shutil.copyfile``, atomically: ``dest`` is the old file or the whole new one."""
    return _write(dest, lambda tmp: shutil.copyfile(src, tmp))


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save``, atomically and byte-for-byte the same for the same object.

    Written through an open file, not a path (a zip written to a path records that, here
    random, temporary file name), and streamed: tensors go to disk one at a time (a CUDA one
    copied to the host on its own), never as a whole in-memory copy of the file.
    """
    import torch  # imported here: reporting and the CLI use this module without torch

    def save(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    return _write(path, save)
