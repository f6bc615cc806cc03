"""The ``huescale`` command: run a pipeline stage, or colorize your own photographs.

    huescale stage NAME [--params params.yaml]
    huescale ablate GRID.yaml [--dvc]
    huescale profile [NAME...] [--params params.yaml]     apply profiles (params/NAME.yaml overlays)
    huescale losses                                       the loss names of the losses params
    huescale metrics                                      the metric table (names for evaluate.metrics)
    huescale colorize INPUT... --out DIR|FILE [--scale 1|4] [--pipeline two-step|joint]
                     [--checkpoint CKPT | --model champion|shipped] [--upscaler CKPT]
                     (no --checkpoint: the model installed with huescale)
                     [--format png] [--tile 256] [--device auto] [--overwrite]
    huescale ship [--project .]                           make a finished run's models the installed ones
    huescale export-onnx --checkpoint models/colorizer.pt --upscaler models/upscaler.pt --out DIR
                         [--images PHOTO...] [--tolerance 1e-4]
    huescale benchmark-sr HR_DIR... [--lr LR_DIR...] [--upscaler CKPT...] --out DIR
    huescale score-folder PHOTOS... [--checkpoint models/colorizer.pt] [--out CSV]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

import huescale
from huescale.errors import guard
from huescale.pipeline.stages import STAGES


def _load_models(args: argparse.Namespace, device, tmp: str):
    """(colour model, upscaler or None) from --checkpoint/--model champion and --upscaler."""
    from huescale.inference import shipped  # lazy: per command (huescale --help loads no torch)
    from huescale.pipeline import champion
    from huescale.training import checkpoint

    if args.model == "shipped":
        if args.pipeline == "joint":
            raise ValueError("the shipped model is a two-step colorizer + upscaler; pass a joint --checkpoint")
        model, up, card = shipped.load(device)
        print(f"huescale colorize: the shipped model ({card.get('summary', 'see huescale/assets/MODEL_CARD.md')})",
              file=sys.stderr)
        if args.upscaler_given:
            up = checkpoint.load_model(args.upscaler, device)[0]
        return model, (up if args.scale > 1 else None)
    if args.model == "champion":
        uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:
            from huescale.config_io import load_config
            from huescale.tracking import tracking_uri

            params = Path(args.params)
            if not params.is_file():
                raise FileNotFoundError(f"{params}: params file not found (it gives tracking.uri); "
                                        "pass --tracking-uri or --params")
            uri = tracking_uri(load_config(params), params.resolve().parent)
        path = champion.load(uri, tmp)
    else:
        path = args.checkpoint
    model, ck = checkpoint.load_model(path, device)
    is_joint = args.pipeline == "joint"
    if is_joint and not isinstance(getattr(model, "scale", None), int):
        raise ValueError(f"{path}: model {ck['model']!r} is not a joint generator (no `scale`); "
                         "use --pipeline two-step or a joint checkpoint")
    if not is_joint and isinstance(getattr(model, "scale", None), int):
        raise ValueError(f"{path}: model {ck['model']!r} looks like an upscaler or a joint model, not a "
                         "colorizer; pass the colorizer checkpoint (or --pipeline joint)")
    need_upscaler = args.scale > 1 and (not is_joint or args.upscaler_given)
    upscaler = checkpoint.load_model(args.upscaler, device)[0] if need_upscaler else None
    if upscaler is not None and getattr(upscaler, "scale", args.scale) != args.scale:
        raise ValueError(f"{args.upscaler}: upscaler scale factor {upscaler.scale} != --scale {args.scale}")
    if is_joint and args.scale not in (1, model.scale):
        raise ValueError(f"--scale {args.scale}: the joint model's scale factor is {model.scale}")
    return model, upscaler


def _colorize(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm  # lazy: per command (huescale --help loads no torch)

    from huescale.data.images import ImageError, read_image
    from huescale.inference.paths import WRITABLE_FORMATS, output_paths, plan_inputs
    from huescale.inference.tiling import Colorizer
    from huescale.inference.writer import UNMARKABLE_FORMATS, colorize_to_file, is_colorize_output
    from huescale.progress import bar as progress_bar
    from huescale.training.distributed import resolve_device, use_bf16

    device = resolve_device(args.device)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    fmt = None
    if args.format:
        fmt = "." + args.format.lower().lstrip(".")
        if fmt not in WRITABLE_FORMATS:
            raise ValueError(f"--format {args.format}: use one of {', '.join(sorted(WRITABLE_FORMATS))}")
    plan, failed, skipped, written, seen = [], 0, 0, 0, set()
    for item in args.inputs:  # an input that matches nothing is reported; the others go on
        try:
            for pair in plan_inputs([item]):
                if pair[0] not in seen:
                    seen.add(pair[0])
                    plan.append(pair)
        except FileNotFoundError as exc:
            print(f"huescale colorize: failed: {exc}", file=sys.stderr)
            failed += 1
    # every output checked before anything runs: never an input, never inside an input folder, one input each
    jobs = output_paths(plan, Path(args.out), fmt, [i for i in args.inputs if Path(i).is_dir()])

    def not_ours(dest: Path) -> str:
        why = ("a .bmp holds no mark, so an existing one is never replaced" if dest.suffix.lower() in
               UNMARKABLE_FORMATS else "it carries no 'huescale colorize' mark")
        return (f"{dest} exists and is not an output of huescale colorize ({why}); --overwrite replaces only "
                "earlier outputs: move the file away or pass another --out")

    with tempfile.TemporaryDirectory(prefix="huescale-model-") as tmp:
        model, upscaler = _load_models(args, device, tmp)  # a wrong model is reported even without inputs
    if not jobs:
        print(f"huescale colorize: nothing to colorize: {failed} input(s) failed (named above)", file=sys.stderr)
        return 1
    run = Colorizer(model, upscaler, model_size=args.model_size, scale=args.scale, device=device,
                    tile=args.tile, margin=args.margin, joint=args.pipeline == "joint",
                    amp=use_bf16(args.amp, device))
    bar = progress_bar(jobs, desc="colorize", unit="img")
    for f, dest in bar:
        bar.set_postfix_str(f.name)
        if dest.exists() or dest.is_symlink():
            if not is_colorize_output(dest):  # a photograph, an edited result: never replaced
                tqdm.write(f"huescale colorize: skipped: {not_ours(dest)} (output of {f})", file=sys.stderr)
                skipped += 1
                continue
            if not args.overwrite:
                tqdm.write(f"huescale colorize: skipped: {dest} exists (an earlier output; output of {f}); pass "
                           "--overwrite to replace it", file=sys.stderr)
                skipped += 1
                continue
        try:
            rgb = read_image(f, max_pixels=args.max_pixels)
            n = run.n_tiles(*rgb.shape[:2])
            with progress_bar(total=n, desc=f.name, unit="tile", leave=False, disable=n < 8) as tiles:
                colorize_to_file(run, rgb, dest, tiles.update, overwrite=args.overwrite)
            del rgb
            written += 1
        except FileExistsError:  # created by someone else while this one was colorized
            what = (not_ours(dest) if args.overwrite else
                    f"{dest} appeared meanwhile; pass --overwrite to replace it")
            tqdm.write(f"huescale colorize: skipped: {what} (output of {f})", file=sys.stderr)
            skipped += 1
        except (ImageError, ValueError, OSError, RuntimeError, MemoryError) as exc:
            msg = str(exc) if str(f) in str(exc) else f"{f}: {type(exc).__name__}: {exc}"
            tqdm.write(f"huescale colorize: failed: {msg}", file=sys.stderr)
            failed += 1
    if failed or skipped:
        print(f"huescale colorize: {failed} input(s) failed, {skipped} skipped (named above); {written} written",
              file=sys.stderr)
    return 1 if failed or skipped else 0


def _set_name(folder: Path) -> str:
    """A benchmark set's name from its folder: ``.../Set5/GTmod12`` -> ``Set5``."""
    return folder.parent.name if folder.name in ("GTmod12", "HR", "GT") else folder.name


def _benchmark_sr(args: argparse.Namespace) -> int:
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


def _score_folder(args: argparse.Namespace) -> int:
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


def _add_evaluation_commands(sub) -> None:
    """``huescale benchmark-sr`` and ``huescale score-folder``."""
    bs = sub.add_parser("benchmark-sr",
                        help="x4 SR benchmark (Set5/Set14/BSD100 protocol) on HR folders, with a report")
    bs.add_argument("hr", nargs="+", help="folders of HR images, or benchmark names (Set5, Set14, BSD100, Urban100: "
                                          "downloaded once, md5-pinned)")
    bs.add_argument("--lr", nargs="*", help="provided LR folders, in the order of the HR folders, to check our bicubic")
    bs.add_argument("--upscaler", nargs="*", default=[], help="upscaler checkpoints to score (bicubic always is)")
    bs.add_argument("--scale", type=int, default=4)
    bs.add_argument("--samples", type=int, default=2, help="images per set shown as zoomed crops")
    bs.add_argument("--out", required=True, help="output folder: result.json, per_image.csv, benchmark.html")
    bs.add_argument("--templates", default=None, help="Jinja2 templates folder (default: the package's)")
    bs.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sf = sub.add_parser("score-folder", help="colorization quality on your own colour photographs (per-image CSV)")
    sf.add_argument("inputs", nargs="+", help="image files, folders or globs of colour photographs")
    sf.add_argument("--checkpoint", default="models/colorizer.pt", help="colorizer checkpoint")
    sf.add_argument("--out", default="eval/score_folder.csv", help="per-image CSV, worst first")
    sf.add_argument("--epsilon", type=float, default=0.05, help="epsilon-accuracy threshold (fraction of 255)")
    sf.add_argument("--max-side", type=int, default=512, help="longest side scored (0 = full size)")
    sf.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def _ship(args: argparse.Namespace) -> int:
    """Write the shipped model (package data) from a finished run's checkpoints and metrics."""
    from huescale.inference import shipped  # lazy: per command (huescale --help loads no torch)

    card = shipped.card_from_run(args.project, args.retrain)
    res = shipped.ship(Path(args.project) / args.colorizer, Path(args.project) / args.upscaler, card, args.out)
    print(json.dumps(res, indent=2))
    return 0


def _export_onnx(args: argparse.Namespace) -> int:
    # lazy: per command (huescale --help loads no torch)
    from huescale.inference.export import export_models

    report = export_models(args.checkpoint, args.upscaler, args.out, images=args.images,
                           tolerance=args.tolerance, dynamo=not args.legacy)
    print(json.dumps(report, indent=2))
    if not report["ok"]:
        print(f"huescale export-onnx: max abs diff above the tolerance {args.tolerance}", file=sys.stderr)
    return 0 if report["ok"] else 1


def _stage(args: argparse.Namespace) -> int:
    # lazy: per command (huescale --help loads no torch)
    from huescale.pipeline.stages.runner import run_stage

    module = importlib.import_module(f"huescale.pipeline.stages.{args.name}")
    run_stage(args.name, module.run, args.params, tracked=args.name != "ablate_row")
    return 0


def _ablate(args: argparse.Namespace) -> int:
    # lazy: per command (huescale --help loads no torch)
    from huescale.pipeline.ablation import run_grid

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    summary = run_grid(args.grid, progress=True, dvc=args.dvc)
    print(f"{len(summary['rows'])} rows; results in the grid's metrics file; champion: {summary['champion']}")
    return 0


def _profile(args: argparse.Namespace) -> int:
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


def _losses(args: argparse.Namespace) -> int:
    # lazy: per command (huescale --help loads no torch)
    from huescale.training.losses import available

    for name, line in available().items():
        print(f"{name:14s} {line}")
    return 0


def _metrics(args: argparse.Namespace) -> int:
    from huescale.metrics import METRICS  # lazy: per command (huescale --help loads no torch)

    for m in METRICS.values():
        print(f"{m.name:18s} per {m.per:5s} {m.better:6s} {m.heading():32s} {m.source}")
    return 0


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="huescale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("stage", help="run one pipeline stage (as dvc repro does)")
    st.add_argument("name", choices=STAGES)
    st.add_argument("--params", default="params.yaml")
    ab = sub.add_parser("ablate", help="run an ablation grid (rows as nested MLflow runs, champion registered)")
    ab.add_argument("grid", help="grid file, e.g. grids/table7.yaml")
    ab.add_argument("--dvc", action="store_true",
                    help="run each row as a DVC experiment "
                         "(dvc exp run -S ablation.row=i ablate_row; see dvc exp show)")
    pr = sub.add_parser("profile", help="apply parameter profiles (overlays in params/) to params.yaml")
    pr.add_argument("names", nargs="*", help="profiles to apply in order, e.g. offline, gpu (none: list them)")
    pr.add_argument("--params", default="params.yaml", help="the params file to update (default: params.yaml)")
    pr.add_argument("--dir", default="params", help="the folder of profiles (default: params)")
    pr.add_argument("--list", action="store_true", help="list the profiles")
    sub.add_parser("losses", help="list the loss names usable in the losses params, with their source")
    sub.add_parser("metrics", help="list the metric table: the names usable in evaluate.metrics, with their source")
    co = sub.add_parser("colorize", help="colorize (and x4 upscale) your own photographs")
    co.add_argument("inputs", nargs="+", help="image files, folders or globs")
    co.add_argument("--out", required=True, help="output folder, or an output file for a single input")
    co.add_argument("--scale", type=int, default=1, choices=[1, 4], help="output size factor (4 uses the upscaler)")
    co.add_argument("--pipeline", default="two-step", choices=["two-step", "joint"],
                    help="two-step: colorizer + upscaler; joint: one 64 L -> 256 Lab generator")
    co.add_argument("--checkpoint", "--colorizer", dest="checkpoint", default=None,
                    help="colour model checkpoint (colorizer, or the joint generator); default: the shipped model")
    co.add_argument("--model", choices=["champion", "shipped"], default=None,
                    help="champion: the MLflow model huescale-colorizer@champion; shipped: the colorizer and "
                         "upscaler installed with huescale (the default without --checkpoint)")
    co.add_argument("--tracking-uri", default=None,
                    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else tracking.uri of --params)")
    co.add_argument("--params", default="params.yaml", help="params file giving tracking.uri for --model")
    co.add_argument("--upscaler", default=None,
                    help="upscaler checkpoint (default: models/upscaler.pt with --checkpoint, else the shipped one)")
    co.add_argument("--format", default=None, help="output extension, e.g. png (default: the input's, or png)")
    co.add_argument("--tile", type=int, default=256, help="tile side in input pixels (memory bound)")
    co.add_argument("--margin", type=int, default=None,
                    help="tile overlap in input pixels (default: upscaler receptive field + 4)")
    co.add_argument("--model-size", type=int, default=64, help="the colour model's input side (its training size)")
    co.add_argument("--max-pixels", type=int, default=64_000_000, help="largest input accepted, in pixels")
    co.add_argument("--overwrite", action="store_true",
                    help="replace earlier outputs of huescale colorize (never a file it did not write, never an "
                         "input; default: skip existing outputs and exit non-zero)")
    co.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    co.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    co.add_argument("--amp", default="auto", choices=["auto", "bf16", "off"],
                    help="bf16 autocast of the networks: auto = where the device runs bf16 natively (CUDA; CPUs "
                         "with AMX/AVX512-BF16), off = float32 (bit-for-bit the reference path)")
    sh = sub.add_parser("ship", help="make a finished run's colorizer and upscaler the model installed with huescale")
    sh.add_argument("--project", default=".", help="the project where `dvc repro` finished")
    sh.add_argument("--colorizer", default="models/colorizer.pt")
    sh.add_argument("--upscaler", default="models/upscaler.pt")
    sh.add_argument("--retrain", default="huescale profile offline && dvc repro",
                    help="the command that retrains it (written into the model card)")
    sh.add_argument("--out", default=None, help="assets folder (default: the installed package's)")
    ex = sub.add_parser("export-onnx", help="export the colorizer and upscaler to ONNX, checked with onnxruntime")
    ex.add_argument("--checkpoint", "--colorizer", dest="checkpoint", default="models/colorizer.pt")
    ex.add_argument("--upscaler", default="models/upscaler.pt")
    ex.add_argument("--out", required=True, help="output folder for colorizer.onnx and upscaler.onnx")
    ex.add_argument("--images", nargs="*", default=None,
                    help="photos (files, folders, globs) to compare onnxruntime with PyTorch on")
    ex.add_argument("--tolerance", type=float, default=1e-4, help="largest max abs diff accepted")
    ex.add_argument("--legacy", action="store_true", help="TorchScript exporter instead of dynamo")
    _add_evaluation_commands(sub)
    return ap


HANDLERS = {"stage": _stage, "ablate": _ablate, "profile": _profile, "losses": _losses, "metrics": _metrics,
            "colorize": _colorize,
            "export-onnx": _export_onnx, "ship": _ship, "benchmark-sr": _benchmark_sr, "score-folder": _score_folder}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``huescale`` console script: one error boundary for every command
    (:func:`huescale.errors.guard`: one line and exit status 1; ``HUESCALE_DEBUG=1`` for the traceback)."""
    args = _parser().parse_args(argv)
    if args.cmd == "colorize":
        args.upscaler_given = args.upscaler is not None
        if args.model is None and args.checkpoint is None:
            args.model = "shipped"
        if args.model == "shipped" and args.checkpoint is not None:
            raise SystemExit("huescale colorize: --model shipped and --checkpoint exclude each other")
        args.upscaler = args.upscaler or (None if args.model == "shipped" else "models/upscaler.pt")
    program = f"huescale {args.name}" if args.cmd == "stage" else f"huescale {args.cmd}"
    guard(program, lambda: HANDLERS[args.cmd](args))
