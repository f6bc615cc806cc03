"""The ``huescale`` subcommands other than ``colorize`` (:mod:`huescale.cli_colorize`): one ``cmd_<name>(args)
-> exit status`` each, called by :func:`huescale.cli.main` with the parsed arguments.

Each imports what it needs inside it, so ``huescale --help`` loads no torch.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path

import huescale


def _set_name(folder: Path) -> str:
    """A benchmark set's name from its folder: ``.../Set5/GTmod12`` -> ``Set5``."""
    return folder.parent.name if folder.name in ("GTmod12", "HR", "GT") else folder.name


def cmd_benchmark_sr(args: argparse.Namespace) -> int:
    """``huescale benchmark-sr``: the x4 SR protocol on HR folders or named sets, with result.json,
    per_image.csv and benchmark.html under ``--out``; exit status 0."""
    from huescale.atomic import write_json  # lazy: per command (huescale --help loads no torch)
    from huescale.evaluation import benchmark as bm
    from huescale.evaluation.report import benchmark_report, run_metadata
    from huescale.training import checkpoint
    from huescale.training.distributed import resolve_device

    device = resolve_device(args.device)
    nets: dict = {}
    labels = {"bicubic": "bicubic (MATLAB-compatible)"}
    for path in args.upscaler:
        net, ck = checkpoint.load_model(path, device)
        name = f"{ck['model']}:{Path(path).stem}"
        nets[name], labels[name] = net, f"{ck['model']} {ck.get('kwargs', {})} ({path})"
    from huescale.config import DataConfig
    from huescale.data.benchmarks import is_registry_name, resolve
    from huescale.data.source_base import cache_root

    cache = cache_root(DataConfig())

    def set_name(f: str) -> str:
        return f if is_registry_name(f) else _set_name(Path(f))

    sets = {set_name(f): str(resolve(f, cache)) for f in args.hr}
    lr = {set_name(h): str(resolve(lr_dir, cache)) for h, lr_dir in zip(args.hr, args.lr or [])}
    out = Path(args.out)
    result, rows = bm.run(sets, nets, args.scale, lr, out / "samples", args.samples, device)
    if not result["sets"]:
        raise FileNotFoundError("; ".join(result["skipped"].values()) or "no benchmark set given")
    write_json(result, out / "result.json")
    bm.write_per_image_csv(rows, out / "per_image.csv")
    benchmark_report(result, out / "samples", labels, run_metadata(device.type), out / "per_image.csv",
                     args.templates or huescale.TEMPLATES, out / "benchmark.html")
    for name, s in result["sets"].items():
        print(name, json.dumps({m: [round(v["psnr_y"], 2), round(v["ssim_y"], 4)] for m, v in s.items()}))
    print(f"report: {out / 'benchmark.html'}")
    return 0


def cmd_score_folder(args: argparse.Namespace) -> int:
    """``huescale score-folder``: a colorizer scored on colour photographs (per-image CSV, a JSON summary on
    stdout); exit status 1 when nothing could be scored."""
    from huescale.atomic import write_csv  # lazy: per command (huescale --help loads no torch)
    from huescale.evaluation.evaluate import score_folder, summarize_rows
    from huescale.inference.paths import iter_inputs
    from huescale.inference.tiling import Colorizer
    from huescale.training import checkpoint
    from huescale.training.distributed import resolve_device

    device = resolve_device(args.device)
    colorizer, _ = checkpoint.load_model(args.checkpoint, device)
    run = Colorizer(colorizer, None, scale=1, device=device)
    rows, skipped = score_folder(iter_inputs(args.inputs), run, args.epsilon, args.max_side)
    write_csv(rows, args.out)
    for s in skipped:
        print(f"skipped: {s['file']}: {s['reason']}", file=sys.stderr)
    summary = {**summarize_rows(rows), "skipped": len(skipped), "csv": str(args.out)}
    print(json.dumps(summary, indent=1))
    return 0 if rows else 1


def cmd_ship(args: argparse.Namespace) -> int:
    """Write the shipped model (package data) from a finished run's checkpoints; its card's held-out figures are
    those of the shipped checkpoints themselves, scored here on the run's held-out sets (evaluate's figures are
    ``models/colorizer.pt``'s, which need not be the colorizer shipped)."""
    # lazy: per command (huescale --help loads no torch)
    from huescale.config_io import load_config
    from huescale.evaluation import evaluate
    from huescale.inference import shipped
    from huescale.training import checkpoint

    root = Path(args.project)
    colorizer, upscaler = root / args.colorizer, root / args.upscaler
    cfg = load_config(root / "params.yaml")
    col, up = checkpoint.load_model(colorizer)[0], checkpoint.load_model(upscaler)[0]
    ev = cfg.evaluate
    holdout = {name: evaluate.score_holdout(store, col, up, torch_device("cpu"), ev.epsilon, cfg.data.scale,
                                            ev.batch_size, ev.metrics)[0]
               for name, store in evaluate.holdout_stores(root / "data" / "holdout_pairs").items()}
    card = shipped.card_from_run(root, args.retrain, holdout=holdout,
                                 checkpoints={"colorizer": args.colorizer, "upscaler": args.upscaler})
    res = shipped.ship(colorizer, upscaler, card, args.out)
    print(json.dumps(res, indent=2))
    return 0


def torch_device(name: str):
    """``torch.device(name)`` (torch imported only when a command needs it)."""
    import torch  # lazy: huescale --help loads no torch

    return torch.device(name)


def cmd_export_onnx(args: argparse.Namespace) -> int:
    """``huescale export-onnx``: ONNX files checked against PyTorch; exit status 1 above ``--tolerance``."""
    # lazy: per command (huescale --help loads no torch)
    from huescale.inference.export import export_models

    report = export_models(args.checkpoint, args.upscaler, args.out, images=args.images,
                           tolerance=args.tolerance, dynamo=not args.legacy)
    print(json.dumps(report, indent=2))
    if not report["ok"]:
        print(f"huescale export-onnx: max abs diff above the tolerance {args.tolerance}", file=sys.stderr)
    return 0 if report["ok"] else 1


def cmd_stage(args: argparse.Namespace) -> int:
    """``huescale stage NAME``: one pipeline stage in its MLflow run (as ``dvc repro`` runs it)."""
    # lazy: per command (huescale --help loads no torch)
    from huescale.pipeline.stages.runner import run_stage

    module = importlib.import_module(f"huescale.pipeline.stages.{args.name}")
    run_stage(args.name, module.run, args.params, tracked=args.name != "ablate_row")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    """``huescale ablate GRID``: an ablation grid's rows, scored, and the champion decided."""
    # lazy: per command (huescale --help loads no torch)
    from huescale.pipeline.ablation import run_grid

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    summary = run_grid(args.grid, progress=True, dvc=args.dvc)
    print(f"{len(summary['rows'])} rows; results in the grid's metrics file; champion: {summary['champion']}")
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    """``huescale profile [NAME...]``: list the profiles, or apply them to the params file (printing each change)."""
    # lazy: per command (huescale --help loads no torch)
    from huescale.profiles import apply_profiles, available_profiles

    if args.list or not args.names:
        for name, line in available_profiles(args.dir).items():
            print(f"{name:24s} {line}")
        return 0
    changes = apply_profiles(args.names, args.params, args.dir)
    for key, (old, new) in changes.items():
        print(f"{key}: {old!r} -> {new!r}")
    print(f"{args.params}: {len(changes)} value(s) set from {', '.join(args.names)}")
    return 0


def cmd_losses(args: argparse.Namespace) -> int:
    """``huescale losses``: every loss name with its source line."""
    # lazy: per command (huescale --help loads no torch)
    from huescale.training.losses import available

    for name, line in available().items():
        print(f"{name:14s} {line}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    """``huescale metrics``: the metric table (name, per image or set, direction, heading, source)."""
    from huescale.metrics import METRICS  # lazy: per command (huescale --help loads no torch)

    for m in METRICS.values():
        print(f"{m.name:18s} per {m.per:5s} {m.better:6s} {m.heading():32s} {m.source}")
    return 0
