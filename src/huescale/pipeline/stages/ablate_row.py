"""Stage ``ablate_row``: one row of an ablation grid, so that ``huescale ablate GRID --dvc`` can run each row as
a DVC experiment (``dvc exp run -S ablation.grid=... -S ablation.row=i``); a no-op while ``ablation.row`` is -1."""

from __future__ import annotations

import os

from huescale import tracking
from huescale.config import Config
from huescale.errors import ConfigError
from huescale.pipeline import ablation
from huescale.pipeline.grid import check_rows, load_grid


def run(cfg: Config) -> dict:
    """Train and score row ``ablation.row`` of grid ``ablation.grid`` (:func:`huescale.pipeline.ablation.run_row`);
    returns its flat test metrics (written to ``metrics/ablate_row.json`` for ``dvc exp show``).

    The row's MLflow run nests under ``$HUESCALE_PARENT_RUN_ID`` (the grid's parent, set by the runner) or
    under a new grid parent run.

    Raises:
        ConfigError: a row index outside the grid, or what :func:`huescale.pipeline.grid.load_grid` raises.
    """
    a = cfg.ablation
    if a.row < 0 or not a.grid:
        return {"row": None}
    grid = load_grid(a.grid)
    if a.row >= len(grid["rows"]):
        raise ConfigError(f"ablation.row={a.row}: the grid {a.grid} has {len(grid['rows'])} rows")
    rows = check_rows(grid)
    row, row_cfg, store = rows[a.row]
    tracking.setup(row_cfg)
    with tracking.grid_run(grid["name"], a.grid, os.environ.get("HUESCALE_PARENT_RUN_ID")):
        res = ablation.run_row(grid, row, row_cfg, store, ablation.sample_images(rows))
    flat = {"row": row["name"], "kind": res["kind"], **{f"test_{k}": v for k, v in res["test"].items()},
            "best_val_l1": res.get("best_val_l1")}
    flat.update({f"{st}_psnr_y": b["psnr_y"] for st, b in res.get("benchmark", {}).items()})
    return flat
