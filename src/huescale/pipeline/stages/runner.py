"""Run one pipeline stage: params in, MLflow stage run around it, ``metrics/<name>.json`` out.

``stages/<name>.py`` calls :func:`main` with the stage's ``run`` function; the
Prefect flow runs the same scripts through ``dvc repro``. Under ``torchrun`` only
rank 0 tracks and writes.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch

from huescale import tracking
from huescale.atomic import write_json
from huescale.config import Config
from huescale.config_io import load_config
from huescale.errors import guard
from huescale.pipeline.stages import METRICS, STAGES
from huescale.training.distributed import init_from_env, is_main, resolve_device

log = logging.getLogger("huescale")

StageFn = Callable[[Config], dict]


def device(cfg: Config):
    """The stage's torch device (``runtime.device``), after joining the torchrun group if any;
    sets the CPU threads (``runtime.threads``)."""
    if cfg.runtime.threads > 0:
        torch.set_num_threads(cfg.runtime.threads)
    return init_from_env(resolve_device(cfg.runtime.device))


def run_stage(name: str, fn: StageFn, params: str | Path = "params.yaml", tracked: bool = True) -> dict:
    """Run stage ``name`` (``fn(cfg)``) in a nested MLflow run of the pipeline's parent (``tracked``; a stage
    that opens its own runs, ``ablate_row``, passes False); writes ``metrics/<name>.json`` (with ``wall_s``).

    Raises:
        ValueError: an unknown stage name; whatever the stage raises otherwise.
    """
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = load_config(params)
    t0 = time.perf_counter()
    main_process = is_main()
    with tracking.stage_run(name, cfg, params) if main_process and tracked else contextlib.nullcontext():
        out = fn(cfg)
        out["wall_s"] = round(time.perf_counter() - t0, 2)
        tracking.log_metrics({k: v for k, v in out.items() if not isinstance(v, bool)})
    if not main_process:
        return out
    if name != "report":
        write_json(out, METRICS / f"{name}.json")
    log.info("stage %s done in %.1f s: %s", name, out["wall_s"], out)
    return out


def main(name: str, fn: StageFn, tracked: bool = True) -> None:
    """Entry point of ``stages/<name>.py``: ``--params`` is the only argument; errors exit 1 with one line
    (``HUESCALE_DEBUG=1`` shows the traceback)."""
    ap = argparse.ArgumentParser(description=f"huescale pipeline stage: {name}")
    ap.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    args = ap.parse_args()

    def command() -> int:
        run_stage(name, fn, args.params, tracked)
        return 0

    guard(f"huescale {name}", command)
