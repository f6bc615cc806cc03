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

from huescale.cli_colorize import cmd_colorize
from huescale.cli_commands import (
    cmd_ablate,
    cmd_benchmark_sr,
    cmd_export_onnx,
    cmd_losses,
    cmd_metrics,
    cmd_profile,
    cmd_score_folder,
    cmd_ship,
    cmd_stage,
)
from huescale.errors import guard
from huescale.pipeline.stages import STAGES


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


def _parser() -> argparse.ArgumentParser:
    """The ``huescale`` argument parser: the module docstring as its description, one subparser per command."""
    ap = argparse.ArgumentParser(prog="huescale", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    _add_pipeline_commands(sub)
    _add_colorize_command(sub)
    _add_model_commands(sub)
    _add_evaluation_commands(sub)
    return ap


def _add_pipeline_commands(sub) -> None:
    """``huescale stage``, ``ablate``, ``profile``, ``losses`` and ``metrics``."""
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


def _add_colorize_command(sub) -> None:
    """``huescale colorize``."""
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


def _add_model_commands(sub) -> None:
    """``huescale ship`` and ``huescale export-onnx``."""
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


HANDLERS = {"stage": cmd_stage, "ablate": cmd_ablate, "profile": cmd_profile, "losses": cmd_losses,
            "metrics": cmd_metrics, "colorize": cmd_colorize, "export-onnx": cmd_export_onnx, "ship": cmd_ship,
            "benchmark-sr": cmd_benchmark_sr, "score-folder": cmd_score_folder}


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
