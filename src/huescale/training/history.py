"""A phase's per-epoch record (:class:`EpochRecord`) and its CSV file (``dvc plots``, the report's charts)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from huescale.atomic import atomic_open


@dataclass
class EpochRecord:
    """Per-epoch losses and validation metric (also a row of the plots CSV)."""

    epoch: int
    step: int
    values: dict[str, float]


def write_history_csv(history: list[EpochRecord], path: str | Path) -> None:
    """Per-epoch values as CSV (columns ``epoch, step, <loss names>``) for ``dvc plots`` and the report."""
    keys = sorted({k for r in history for k in r.values})
    with atomic_open(path, "w", newline="") as f:  # process-private temporary, fsync, os.replace
        w = csv.writer(f)
        w.writerow(["epoch", "step", *keys])
        for r in history:
            w.writerow([r.epoch, r.step, *[f"{r.values.get(k, float('nan')):.6g}" for k in keys]])
