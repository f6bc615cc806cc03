"""Progress bars that suit where the output goes: the one tqdm factory of huescale.

On a terminal a bar redraws in place as usual. Anywhere else (a DVC stage's log, CI, a Prefect task's
log, ``> file``) tqdm would write every refresh, so the log of one run would be mostly progress bars:
there a bar stays silent for its first :data:`LOG_INTERVAL` seconds (short loops print nothing; their
stage or epoch logs one summary line), then prints at most one plain line per :data:`LOG_INTERVAL`
seconds, each refresh on its own line instead of ``\\r`` redraws.
``HUESCALE_PROGRESS_INTERVAL`` (seconds) changes the interval.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from tqdm import tqdm as _plain_tqdm
from tqdm.auto import tqdm

LOG_INTERVAL = 60.0


class _LogBar(_plain_tqdm):
    """tqdm for logs: a new postfix shows at the next timed refresh, never forcing a line of its own."""

    def set_postfix(self, ordered_dict=None, refresh: bool = False, **kwargs: Any) -> None:
        """As ``tqdm.set_postfix``, without the immediate refresh."""
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_postfix_str(self, s: str = "", refresh: bool = False) -> None:
        """As ``tqdm.set_postfix_str``, without the immediate refresh."""
        super().set_postfix_str(s, refresh=False)

    def set_description(self, desc: str | None = None, refresh: bool = False) -> None:
        """As ``tqdm.set_description``, without the immediate refresh."""
        super().set_description(desc, refresh=False)


class _Lines(io.TextIOBase):
    """A text stream that turns tqdm's ``\\r`` redraws into one line per refresh (blank clears dropped)."""

    def __init__(self, stream: TextIO):
        self._stream = stream

    def write(self, s: str) -> int:
        """Write each non-blank ``\\r``/``\\n``-separated part of ``s`` as its own line; returns ``len(s)``."""
        for part in s.replace("\r", "\n").split("\n"):
            if part.strip():
                self._stream.write(part.rstrip() + "\n")
        return len(s)

    def flush(self) -> None:
        """Flush the underlying stream."""
        self._stream.flush()


def _interval() -> float:
    raw = os.environ.get("HUESCALE_PROGRESS_INTERVAL", "")
    try:
        return float(raw) if raw else LOG_INTERVAL
    except ValueError:
        raise ValueError(f"HUESCALE_PROGRESS_INTERVAL={raw!r}: give a number of seconds, e.g. 60") from None


def is_terminal(stream: Any = None) -> bool:
    """Whether ``stream`` (default ``sys.stderr``, where tqdm writes) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def bar(iterable: Iterable | None = None, *, disable: bool = False, **kwargs: Any) -> _plain_tqdm:
    """A tqdm bar (same arguments as ``tqdm.tqdm``) that is quiet in logs.

    On a terminal it is a plain tqdm bar. Otherwise it appears only after ``HUESCALE_PROGRESS_INTERVAL``
    (default 60) seconds, refreshes at most that often, and writes each refresh as a line of its own.

    Args:
        iterable: what to iterate over, as for tqdm.
        disable: no bar at all (e.g. ``not progress``).
        **kwargs: tqdm's keyword arguments (``total``, ``desc``, ``unit``, ``leave``, ``file``...).

    Raises:
        ValueError: ``HUESCALE_PROGRESS_INTERVAL`` is not a number.
    """
    stream = kwargs.pop("file", None) or sys.stderr
    if disable or is_terminal(stream):
        return tqdm(iterable, disable=disable, file=stream, **kwargs)
    interval = _interval()
    kwargs.update(mininterval=max(interval, kwargs.get("mininterval", 0.0)),
                  maxinterval=max(interval, kwargs.get("maxinterval", 10.0)), delay=interval,
                  dynamic_ncols=False, ncols=kwargs.get("ncols", 100))
    return _LogBar(iterable, file=_Lines(stream), **kwargs)
