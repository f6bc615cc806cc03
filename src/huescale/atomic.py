"""Atomic file writes: each goes to a temp file in the same folder, then ``os.replace`` moves it into
place, so a reader (DVC, the report, a resumed run) never sees half a file."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any


def _tmp(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON; returns the path."""
    path = Path(path)
    tmp = _tmp(path)
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)
    return path


def write_text(text: str, path: str | Path) -> Path:
    """Write ``text`` (UTF-8); returns the path."""
    path = Path(path)
    tmp = _tmp(path)
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_png(rgb, path: str | Path) -> str:
    """Write a uint8 ``H x W x 3`` (or ``H x W``) array as PNG; returns the file name."""
    import numpy as np
    from PIL import Image

    path = Path(path)
    tmp = _tmp(path, ".png")
    Image.fromarray(np.ascontiguousarray(rgb)).save(tmp)
    os.replace(tmp, path)
    return path.name


def write_csv(rows: list[dict], path: str | Path, fields: list[str] | None = None) -> Path:
    """Write dict rows as CSV: columns ``fields`` (default: the first row's keys; other keys are left
    out), floats with 4 decimals. No rows and no ``fields`` give an empty file."""
    path = Path(path)
    tmp = _tmp(path)
    fields = fields or (list(rows[0]) if rows else None)
    with open(tmp, "w", newline="") as f:
        if fields:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})
    os.replace(tmp, path)
    return path
