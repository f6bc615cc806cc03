"""The ``huescale`` command: run a pipeline stage, or colorize your own photographs.

    huescale stage NAME [--params params.yaml]
    huescale ablate GRID.yaml
    huescale colorize INPUT... --out DIR [--scale 1|4] [--colorizer models/colorizer.pt]
                                          [--upscaler models/upscaler.pt] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _colorize(args: argparse.Namespace) -> int:
    from PIL import Image
    from tqdm.auto import tqdm

    from huescale import checkpoint
    from huescale.data.images import ImageError, read_image
    from huescale.infer import Colorizer, iter_inputs
    from huescale.train import resolve_device

    device = resolve_device(args.device)
    colorizer, _ = checkpoint.load_model(args.colorizer, device)
    upscaler = checkpoint.load_model(args.upscaler, device)[0] if args.scale > 1 else None
    run = Colorizer(colorizer, upscaler, scale=args.scale, device=device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for f in tqdm(iter_inputs(args.inputs), desc="colorize", unit="img"):
        try:
            result = run(read_image(f))
        except ImageError as exc:
            print(f"skipped: {exc}", file=sys.stderr)
            failed += 1
            continue
        keep = f.suffix.lower() if f.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") else ".png"
        dest = out / (f.stem + (args.format or keep))
        tmp = dest.with_name("." + dest.name + ".tmp" + dest.suffix)
        Image.fromarray(result).save(tmp)
        os.replace(tmp, dest)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``huescale`` console script."""
    ap = argparse.ArgumentParser(prog="huescale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("stage", help="run one pipeline stage (as dvc repro does)")
    st.add_argument("name", choices=["download", "prepare", "pretrain", "train", "evaluate", "report"])
    st.add_argument("--params", default="params.yaml")
    ab = sub.add_parser("ablate", help="run an ablation grid (rows as nested MLflow runs, champion registered)")
    ab.add_argument("grid", help="grid file, e.g. grids/table7.yaml")
    co = sub.add_parser("colorize", help="colorize (and x4 upscale) your own photographs")
    co.add_argument("inputs", nargs="+", help="image files, folders or globs")
    co.add_argument("--out", required=True, help="output folder")
    co.add_argument("--scale", type=int, default=1, choices=[1, 4], help="output size factor (4 uses the upscaler)")
    co.add_argument("--colorizer", default="models/colorizer.pt")
    co.add_argument("--upscaler", default="models/upscaler.pt")
    co.add_argument("--format", default=None, help="output extension, e.g. .png (default: keep the input's)")
    co.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = ap.parse_args(argv)
    if args.cmd == "ablate":
        import logging

        from huescale.ablation import run_grid

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        try:
            summary = run_grid(args.grid, progress=True)
        except Exception as exc:  # noqa: BLE001
            if os.environ.get("HUESCALE_DEBUG"):
                raise
            sys.exit(f"huescale ablate: error: {exc}")
        print(f"{len(summary['rows'])} rows; results in the grid's metrics file; champion: {summary['champion']}")
        return
    if args.cmd == "stage":
        from huescale.stages import run_stage

        try:
            run_stage(args.name, args.params)
        except Exception as exc:  # noqa: BLE001
            sys.exit(f"huescale {args.name}: error: {exc}")
        return
    try:
        sys.exit(_colorize(args))
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        sys.exit(f"huescale colorize: error: {exc}")
