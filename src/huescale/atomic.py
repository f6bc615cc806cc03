"""Atomic, durable file writes (text, bytes, JSON, PNG, CSV) and clean-up of stale temporaries.

Every file huescale writes goes the same way (:func:`atomic_path` / :func:`atomic_open`):

1. a temporary name in the same folder, private to the process: ``.<name>.<pid>.tmp[<suffix>]``
   (two processes writing the same target never share a temporary);
2. write, flush, ``fsync`` the file;
3. ``os.replace`` it onto the target (atomic on POSIX: a reader sees the old file or the new one,
   never half a file);
4. ``fsync`` the folder, so the rename itself survives a power cut.

A process killed between 1 and 3 leaves its temporary behind. :func:`clean_stale_tmp` (called
by every write next to the target) and :func:`clean_stale_in` (at stage start) remove the
temporaries whose pid is no longer alive on this machine; a live writer's temporary is kept.

Inter-process locks are in :mod:`huescale.locks`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

log = logging.getLogger("huescale.atomic")

# .<name>.<pid>.tmp, optionally followed by one extension (.png, .npz: writers that pick the format by it)
TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp(?P<suffix>\.[A-Za-z0-9]+)?$")
# A temporary younger than this is kept even when its pid looks dead: the folder may be shared
# with another machine (a network cache), whose pids mean nothing here.
STALE_MIN_AGE_S = 60.0


def tmp_path(path: str | Path, suffix: str = "") -> Path:
    """The process-private temporary name of ``path``: ``<folder>/.<name>.<pid>.tmp<suffix>``.

    The folder is created. ``suffix`` (e.g. ``".png"``) is for writers that choose the format from
    the extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (``kill(pid, 0)``; a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return True  # cannot tell: keep its files
    return True


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        p.unlink(missing_ok=True)


def _stale(entry: Path, min_age_s: float) -> bool:
    m = TMP_RE.match(entry.name)
    if m is None or int(m["pid"]) == os.getpid() or pid_alive(int(m["pid"])):
        return False
    try:
        return time.time() - entry.lstat().st_mtime >= min_age_s
    except FileNotFoundError:
        return False


def clean_stale_tmp(path: str | Path, min_age_s: float = STALE_MIN_AGE_S) -> list[Path]:
    """Remove the temporaries of ``path`` (``.<name>.<pid>.tmp*`` files or folders next to it) left by
    dead processes.

    Args:
        path: the target whose temporaries are looked for (its folder need not exist).
        min_age_s: keep temporaries modified more recently than this many seconds (see
            :data:`STALE_MIN_AGE_S`).

    Returns:
        The paths removed.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    prefix = f".{path.name}."
    with os.scandir(path.parent) as it:
        for e in it:
            if e.name.startswith(prefix) and (m := TMP_RE.match(e.name)) and m["name"] == path.name:
                p = Path(e.path)
                if _stale(p, min_age_s):
                    _remove(p)
                    removed.append(p)
    if removed:
        log.info("removed %d stale temporary file(s) of dead processes next to %s", len(removed), path)
    return removed


def clean_stale_in(folder: str | Path, min_age_s: float = STALE_MIN_AGE_S, recursive: bool = False) -> list[Path]:
    """Remove every stale temporary (``.<name>.<pid>.tmp*`` of a dead pid) in ``folder`` (at stage start).

    Args:
        folder: the folder to sweep (missing: nothing to do).
        min_age_s: see :func:`clean_stale_tmp`.
        recursive: also sweep sub-folders.

    Returns:
        The paths removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for root, dirs, files in os.walk(folder):
        for name in list(dirs) + files:
            p = Path(root) / name
            if TMP_RE.match(name) and _stale(p, min_age_s):
                _remove(p)
                removed.append(p)
                if name in dirs:
                    dirs.remove(name)
        if not recursive:
            break
    if removed:
        log.info("removed %d stale temporary file(s) of dead processes in %s", len(removed), folder)
    return removed


def fsync_file(path: str | Path) -> None:
    """Flush a closed file's data to disk (``fsync`` through a fresh descriptor)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | Path) -> None:
    """``fsync`` a folder, making the renames and creations in it durable (a no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on folders; the rename is still atomic
    finally:
        os.close(fd)


def commit(tmp: str | Path, path: str | Path, replace: bool = True,
           may_replace: Callable[[Path], bool] | None = None) -> Path:
    """Move the (already fsynced) ``tmp`` onto ``path``, then ``fsync`` the folder.

    Args:
        tmp: the finished temporary file (or folder, with ``replace``).
        path: the target.
        replace: replace an existing ``path`` (``os.replace``). False: never replace one, also
            not one created by another process a moment ago (``os.link``, atomic; where the
            filesystem has no hard links, a check just before ``os.replace``).
        may_replace: with ``replace``, replace an existing ``path`` only if ``may_replace(path)`` is
            true (e.g. "it is one of this writer's earlier outputs"); asked after an atomic no-replace
            attempt failed, so a file created by another process meanwhile is judged too.

    Raises:
        FileExistsError: ``replace`` is False and ``path`` exists, or ``may_replace(path)`` is false
            (``tmp`` is removed; ``path`` is untouched).
    """
    path = Path(path)

    def allowed() -> bool:  # replace the file that is there now?
        return replace and may_replace is not None and may_replace(path)

    if replace and may_replace is None:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)
        except FileExistsError:
            if not allowed():
                Path(tmp).unlink(missing_ok=True)
                raise FileExistsError(f"{path} exists; not replaced") from None
            os.replace(tmp, path)
        except OSError:  # no hard links here (FAT, some network filesystems)
            if (path.exists() or path.is_symlink()) and not allowed():
                Path(tmp).unlink(missing_ok=True)
                raise FileExistsError(f"{path} exists; not replaced") from None
            os.replace(tmp, path)
        else:
            Path(tmp).unlink(missing_ok=True)
    fsync_dir(path.parent)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "", fsync: bool = True, clean: bool = True,
                replace: bool = True, may_replace: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a process-private temporary path; when the block ends without error, make it ``path``.

    For writers that take a file name (``Image.save``, ``np.savez``, ``torch.save``). On success:
    fsync the file, ``os.replace`` onto ``path``, fsync the folder. On an exception: the temporary
    is removed and ``path`` is untouched. Stale temporaries of ``path`` left by dead processes are
    removed first.

    Args:
        path: the final file.
        suffix: extension after ``.tmp`` (for writers that pick the format from it).
        fsync: flush to disk (False only for scratch data that may be lost).
        clean: look for stale temporaries of ``path`` first (a scan of its folder; writers of many
            files into one folder pass False and call :func:`clean_stale_in` once instead).
        replace: replace an existing ``path``; False raises FileExistsError instead (see :func:`commit`).
        may_replace: replace an existing ``path`` only if this says so (see :func:`commit`).
    """
    path = Path(path)
    tmp = tmp_path(path, suffix)
    if clean:
        clean_stale_tmp(path)
    try:
        yield tmp
        if fsync:
            fsync_file(tmp)
        commit(tmp, path, replace, may_replace)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", suffix: str = "", clean: bool = True,
                **kwargs: Any) -> Iterator[IO]:
    """Like ``open(path, mode)`` for writing, but atomic and durable (see :func:`atomic_path`).

    Args:
        path: the final file.
        mode: ``"w"``, ``"wb"`` (``"a"`` makes no sense for a fresh temporary).
        suffix: extension after ``.tmp``.
        clean: see :func:`atomic_path`.
        **kwargs: passed to ``open`` (``encoding``, ``newline``).
    """
    with atomic_path(path, suffix, fsync=False, clean=clean) as tmp:
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def write_text(text: str, path: str | Path, encoding: str = "utf-8") -> Path:
    """Write ``text`` atomically and durably; returns the path."""
    with atomic_open(path, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


def write_bytes(data: bytes, path: str | Path) -> Path:
    """Write ``data`` atomically and durably; returns the path."""
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON, atomically and durably; returns the path."""
    return write_text(json.dumps(obj, indent=2), path)


def write_png(rgb, path: str | Path) -> str:
    """Write a uint8 ``H x W x 3`` (or ``H x W``) array as PNG, atomically and durably; returns the file name."""
    path = Path(path)
    with atomic_path(path, ".png") as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp)
    return path.name


def write_csv(rows: list[dict], path: str | Path, fields: list[str] | None = None) -> Path:
    """Write dict rows as CSV: columns ``fields`` (default: the first row's keys; other keys are left
    out), floats with 4 decimals. No rows and no ``fields`` give an empty file. Atomic and durable."""
    path = Path(path)
    fields = fields or (list(rows[0]) if rows else None)
    with atomic_open(path, "w", newline="") as f:
        if fields:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    return path
