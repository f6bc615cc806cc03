"""Inter-process locks on shared files and folders.

:func:`file_lock` serialises processes that share a folder (two ``prepare`` runs on one pair
store, two downloads into one cache): the second waits, and says for whom, or fails with a clear
message after a timeout. It uses the ``filelock`` package (``flock`` on POSIX: released by the
kernel when the holder dies, so a killed run never leaves a lock behind).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger("huescale.locks")


def lock_path(target: str | Path) -> Path:
    """The lock file guarding ``target`` (a file or folder): the hidden sibling ``.<name>.lock``."""
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


def _owner_text(what: str) -> str:
    return (f"pid {os.getpid()} on {socket.gethostname()} ({what}; "
            f"{' '.join(sys.argv[:3])[:200] or 'python'}; since {time.strftime('%Y-%m-%d %H:%M:%S')})")


def _read_owner(owner: Path, patience: float = 2.0) -> str:
    """The holder's description from its ``.owner`` file; the holder writes it just after taking the
    lock, so a reader that lost the race by microseconds polls for up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            text = owner.read_text().strip()
        except OSError:
            text = ""
        if text or time.monotonic() >= deadline:
            return text or "another process"
        time.sleep(0.02)


class LockTimeout(RuntimeError):
    """Another process held a lock longer than the caller would wait; names the lock, its holder and what to do."""


@contextlib.contextmanager
def file_lock(target: str | Path, what: str, timeout: float | None = None) -> Iterator[Path]:
    """Hold an exclusive inter-process lock on ``target`` for the duration of the block.

    If another process holds it, a warning names the holder (pid, host, command, since when, from
    the ``.<name>.lock.owner`` file it wrote) and this process waits. The lock is an ``flock`` via
    the ``filelock`` package, so it is released when its holder exits or is killed.

    Args:
        target: the shared file or folder (the lock is :func:`lock_path` next to it; its folder is created).
        what: a few words for the messages, e.g. ``"pair store data/pairs"``.
        timeout: seconds to wait at most; None waits as long as it takes (env
            ``HUESCALE_LOCK_TIMEOUT`` overrides None).

    Yields:
        The lock file path.

    Raises:
        LockTimeout: still held by another process after ``timeout`` seconds.
    """
    lp = lock_path(target)
    lp.parent.mkdir(parents=True, exist_ok=True)
    owner = lp.with_name(lp.name + ".owner")
    if timeout is None and os.environ.get("HUESCALE_LOCK_TIMEOUT"):
        timeout = float(os.environ["HUESCALE_LOCK_TIMEOUT"])
    lock = FileLock(str(lp), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _read_owner(owner)
        log.warning("waiting for the lock on %s (%s), held by %s", target, what, holder)
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise LockTimeout(f"{target}: {what} is still locked by {holder} after {timeout:.0f} s; wait for that "
                              f"run to finish (or stop it), then run again; the lock is {lp}") from None
    try:
        try:
            owner.write_text(_owner_text(what))
        except OSError:
            pass  # only informative
        yield lp
    finally:
        with contextlib.suppress(OSError):
            owner.unlink()
        lock.release()
