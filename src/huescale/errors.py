"""The one error boundary of every huescale command and stage script.

An error a user can cause (a bad param, a missing file, an unreadable image)
becomes one line ``<program>: error: <message>`` on stderr and exit status 1;
the messages name the file or param and what to do. ``HUESCALE_DEBUG=1`` shows
the full traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn


class ConfigError(ValueError):
    """A wrong or missing parameter; the message names its dotted key and the file (:mod:`huescale.config`,
    :mod:`huescale.validation`)."""


def guard(program: str, fn: Callable[[], int | None]) -> NoReturn:
    """Run ``fn`` and exit with its status (None = 0); any exception exits 1 with one line on stderr.

    Args:
        program: the prefix of the error line, e.g. ``huescale colorize``.
        fn: the command; returns an exit status.

    Raises:
        SystemExit: always (the exit status); the original exception when ``HUESCALE_DEBUG`` is set.
    """
    try:
        code = fn()
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into an exit status
        if os.environ.get("HUESCALE_DEBUG"):
            raise
        print(f"{program}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(code or 0)
