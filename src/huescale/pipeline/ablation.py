"""Ablation grids: Singh et al.'s Table 7 rows, the x4 SR rows and two-step vs joint, one command.

``huescale ablate GRID.yaml`` reads a grid file; each row applies its dotted-key
overrides (the ``dvc exp run -S`` syntax, e.g. ``train.losses.vgg16_conv7: 10``) to the
base params, trains the row's models with the one recipe (:mod:`huescale.training.recipe`, the
same as the ``pretrain`` and ``train`` stages) on the prepared pair store, scores them
on its test split (:func:`huescale.evaluation.evaluate.score_row`) and is recorded as a nested
MLflow run under one parent run of the grid. Results go to the grid's metrics file
and report (:func:`huescale.evaluation.report.ablation_report`); the colorizer row with the lowest
validation L1 of its decoded ab (:func:`huescale.pipeline.champion.score`, every row scored the same way,
whatever its training objective) becomes ``huescale-colorizer@champion`` only if it beats the current
champion on the same validation split (:func:`huescale.pipeline.champion.decide`, the rule of the Prefect
flow). With ``--dvc`` each row is a DVC
experiment of the ``ablate_row`` stage (:func:`huescale.pipeline.commands.rows_as_dvc_experiments`).

The grid file format is documented in :mod:`huescale.pipeline.grid`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from huescale import TEMPLATES, tracking
from huescale.atomic import write_json, write_png
from huescale.config import Config
from huescale.data.dataset import PairDataset
from huescale.evaluation import benchmark, evaluate, report
from huescale.evaluation.evaluate import finite_or_none
from huescale.models.pipelines import render
from huescale.pipeline import champion
from huescale.pipeline.commands import rows_as_dvc_experiments
from huescale.pipeline.grid import adversarial as _adversarial
from huescale.pipeline.grid import check_rows, load_grid, slug
from huescale.pipeline.stages import FEATURES
from huescale.pipeline.stages.runner import device as stage_device
from huescale.training import phases
from huescale.training.checkpoint import load_model

log = logging.getLogger(__name__)


def train_row(kind: str, adversarial: bool, cfg: Config, store, row_dir: Path, device,
              progress: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train a row's networks with the one recipe; returns ``(networks by role, figures)``.

    A generator is L1 pre-trained (``pretrain.*``; a colorizer with a pretrained encoder: its frozen-encoder phase,
    then ``pretrain.finetune``) when ``train.init: pretrained`` or when the row has no adversarial phase, then
    trained adversarially (``train``) from those weights; upscalers are pre-trained,
    and adversarial only in an ``upscaler`` row that asks for it (SRGAN). ``model.upscaler.name: bicubic``
    is no network (None).
    """
    nets: dict[str, Any] = {}
    figures: dict[str, Any] = {}

    def paths(name: str) -> phases.PhasePaths:
        return phases.PhasePaths(row_dir / f"{name}.pt", row_dir / f"{name}.csv", row_dir / f".{name}_state.pt")

    def generator(role: str, adversarial_: bool) -> Any:
        best = None
        if cfg.train.init == "pretrained" or not adversarial_:
            best, figs = phases.pretrain_generator(cfg, role, store, paths, device, resume=False, progress=progress,
                                                   features=Path(store.root).parent / FEATURES.name)  # beside
            # the pair store, as the features stage lays it out (data/pairs -> data/features)
            figures.update(figs, best_val_l1=figs[f"{best.stem}_best_val_l1"], checkpoint=str(best))
        if adversarial_:
            name = f"train_{role}"
            res, figs = phases.train_phase(cfg, role, "adversarial", store, name, paths(name), device, init=best,
                                           resume=False, progress=progress)
            best = res.best_path
            figures.update(figs, best_val_l1=res.best_val, checkpoint=str(best))
        return load_model(best, device)[0]

    if kind in ("colorizer", "two_step"):
        nets["colorizer"] = generator("colorizer", adversarial)
        colorizer_figures = dict(figures)
    if kind in ("upscaler", "two_step"):
        if cfg.model.upscaler.name == "bicubic":
            nets["upscaler"] = None
        else:
            nets["upscaler"] = generator("upscaler", adversarial and kind == "upscaler")
    if kind == "joint":
        nets["joint"] = generator("joint", adversarial)
    if kind == "two_step":  # the row's champion candidate is its colorizer
        figures.update(best_val_l1=colorizer_figures["best_val_l1"], checkpoint=colorizer_figures["checkpoint"])
    return nets, figures


def run_row(grid: dict, row: dict, cfg: Config, store, sample, progress: bool = False) -> dict:
    """Train and score one row as a nested MLflow run of the active run (the grid's parent): test split, and the
    held-out sets for rows that colorize; its result dict, also written to ``<out>/<row slug>/result.json``."""
    kind, adversarial = row.get("kind", "colorizer"), _adversarial(row)
    row_dir = Path(grid.get("out", "ablations")) / slug(row["name"])
    device = stage_device(cfg)
    log.info("ablation row %s (%s)", row["name"], kind)
    t0 = time.perf_counter()
    with tracking.row_run(row["name"], kind, adversarial, cfg) as run_id:
        nets, figures = train_row(kind, adversarial, cfg, store, row_dir, device, progress)
        train_s = time.perf_counter() - t0
        pipeline = evaluate.row_pipeline(kind, nets)
        test = evaluate.score_row(kind, pipeline, store, device, cfg.evaluate.epsilon, cfg.evaluate.batch_size,
                                  names=cfg.evaluate.metrics)
        ev = cfg.evaluate
        held = {} if kind == "upscaler" else {
            name: evaluate.score_row(kind, pipeline, s, device, ev.epsilon, ev.batch_size, fps=False,
                                     names=ev.metrics)
            for name, s in evaluate.holdout_stores(grid.get("holdout", "data/holdout_pairs")).items()}
        bench = {}
        if kind == "upscaler" and grid.get("benchmark", True):
            bench = benchmark.upscaler_scores(cfg.benchmark.sets, nets["upscaler"], cfg.data.scale, device)
        res = {"name": row["name"], "kind": kind, "adversarial": adversarial, "run_id": run_id, **figures,
               "test": test, "holdout": held, "benchmark": bench, "train_s": round(train_s, 2),
               "wall_s": round(time.perf_counter() - t0, 2), "device": str(device)}
        if sample is not None and len(sample):
            res["sample"] = str(row_dir / "sample.png")
            write_png(render(pipeline, sample, device)[0], res["sample"])
            tracking.log_artifact(res["sample"], "samples")
        if res.get("checkpoint"):
            tracking.log_artifact(res["checkpoint"], "checkpoints")
        tracking.log_artifact(row_dir / "params.yaml")
        tracking.log_metrics({f"benchmark/{st}/{k}": v[k] for st, v in bench.items() for k in ("psnr_y", "ssim_y")})
        tracking.log_metrics({f"holdout/{h}/{k}": v for h, m in held.items() for k, v in m.items()})
        tracking.log_metrics({**{f"test/{k}": v for k, v in test.items()}, "wall_s": res["wall_s"],
                              **{k: v for k, v in figures.items() if isinstance(v, float)}})
        if any(v is True for k, v in figures.items() if k.endswith("_d_collapse")):
            tracking.set_tags({"warning": "discriminator collapse (loss_D ~ 0)"})
    write_json(_finite(res), row_dir / "result.json")
    return res


def sample_images(rows: list[tuple[dict, Config, Any]]):
    """The sample every row shows: the first 256-tier test image of the grid's stores (its 64 px LR)."""
    stores = {id(s): s for _, _, s in rows}.values()
    return next((a for a in (s.images("test", "lq64")[:1] for s in stores) if len(a)), None)


def run_grid(grid_path: str | Path, progress: bool = False, dvc: bool = False) -> dict:
    """Run every row of a grid file (module docstring); returns the summary written to its metrics file.

    Args:
        grid_path: the grid YAML.
        progress: tqdm bars (and DVC's output in ``dvc`` mode).
        dvc: run each row as a DVC experiment of the ``ablate_row`` stage instead of in this process.

    Raises:
        ConfigError: a bad grid or override; FileNotFoundError: no pair store; ValueError: an unknown loss;
        whatever training raises.
    """
    grid = load_grid(grid_path)
    rows = check_rows(grid)  # every row is checked before any training
    tracking.setup(rows[0][1])
    with tracking.grid_run(grid["name"], grid_path) as parent:
        if dvc:
            results = rows_as_dvc_experiments(Path(grid_path), grid, parent, progress)
        else:
            sample = sample_images(rows)
            results = [run_row(grid, row, cfg, store, sample, progress) for row, cfg, store in rows]
        champ = None
        colorizers = [r for r in results if r["kind"] == "colorizer" and r.get("checkpoint")]
        if grid.get("register_champion", True) and colorizers:
            val = {row["name"]: PairDataset(s, "val", "64") for row, _, s in rows}
            for r in colorizers:  # the champion rule's own score: rows trained on different objectives compare
                r["val_l1"] = champion.score(r["checkpoint"], val[r["name"]])
            best = min(colorizers, key=lambda r: r["val_l1"])
            decision = champion.decide(best["checkpoint"], best["run_id"], val[best["name"]])
            champ = {"row": best["name"], "run_id": best["run_id"], "val_l1": best["val_l1"],
                     "model": champion.NAME, **decision}
            if decision["promoted"]:
                tracking.set_tags({"champion_row": best["name"]})
        summary = {"grid": grid["name"], "parent_run_id": parent, "device": results[0].get("device", "?"),
                   "runner": "dvc experiments" if dvc else "in process", "rows": results, "champion": champ,
                   "holdout_baselines": evaluate.holdout_baselines(
                       evaluate.holdout_stores(grid.get("holdout", "data/holdout_pairs")), stage_device(rows[0][1]),
                       rows[0][1].evaluate.epsilon, rows[0][1].evaluate.batch_size)}
        metrics_path = Path(grid.get("metrics", "metrics/ablations.json"))
        write_json(_finite(summary), metrics_path)
        tracking.log_artifact(metrics_path)
        if grid.get("report", "reports/ablations.html"):
            out = report.ablation_report(summary, grid.get("report", "reports/ablations.html"),
                                         grid.get("templates") or TEMPLATES)
            tracking.log_artifact(out, "report")
    return summary


def _finite(obj: dict) -> dict:
    return finite_or_none(obj)
