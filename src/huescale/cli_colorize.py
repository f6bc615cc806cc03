"""``huescale colorize``: your own photographs colorized (and x4 upscaled) tile by tile, outputs checked before
anything runs and never replacing a file it did not write.

The models come from ``--checkpoint``, ``--model champion`` (MLflow) or the shipped model
(:func:`load_models`). Everything heavy is imported inside the functions, so ``huescale --help`` loads no torch.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path


def load_models(args: argparse.Namespace, device, tmp: str):
    """(colour model, upscaler or None) from --checkpoint/--model champion and --upscaler.

    Raises:
        ValueError: a model of the wrong kind or scale for ``--pipeline``/``--scale``.
        FileNotFoundError: ``--model champion`` without a tracking URI or params file.
    """
    from huescale.inference import shipped  # lazy: per command (huescale --help loads no torch)
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
        from huescale.pipeline import champion  # lazy: MLflow's import costs 1.6 s of every colorize start

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


def cmd_colorize(args: argparse.Namespace) -> int:
    """``huescale colorize``: colorize (and upscale) every input into ``--out``, never replacing a file it did
    not write; exit status 1 when an input failed or an output was skipped (each named on stderr)."""
    # lazy: per command (huescale --help loads no torch)
    from huescale.inference.paths import WRITABLE_FORMATS, output_paths
    from huescale.inference.tiling import Colorizer
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
    plan, failed = _plan(args.inputs)
    # every output checked before anything runs: never an input, never inside an input folder, one input each
    jobs = output_paths(plan, Path(args.out), fmt, [i for i in args.inputs if Path(i).is_dir()])
    with tempfile.TemporaryDirectory(prefix="huescale-model-") as tmp:
        model, upscaler = load_models(args, device, tmp)  # a wrong model is reported even without inputs
    if not jobs:
        print(f"huescale colorize: nothing to colorize: {failed} input(s) failed (named above)", file=sys.stderr)
        return 1
    run = Colorizer(model, upscaler, model_size=args.model_size, scale=args.scale, device=device,
                    tile=args.tile, margin=args.margin, joint=args.pipeline == "joint",
                    amp=use_bf16(args.amp, device))
    outcomes = {"written": 0, "skipped": 0, "failed": failed}
    bar = progress_bar(jobs, desc="colorize", unit="img")
    for f, dest in bar:
        bar.set_postfix_str(f.name)
        outcomes[_colorize_one(run, f, dest, args)] += 1
    written, skipped, failed = outcomes["written"], outcomes["skipped"], outcomes["failed"]
    if failed or skipped:
        print(f"huescale colorize: {failed} input(s) failed, {skipped} skipped (named above); {written} written",
              file=sys.stderr)
    return 1 if failed or skipped else 0


def _plan(inputs: list[str]) -> tuple[list, int]:
    """(input file, its folder-relative name) pairs of every input, each file once, and the number of inputs
    that matched nothing (each reported on stderr; the others go on)."""
    from huescale.inference.paths import plan_inputs  # lazy: per command (huescale --help loads no torch)

    plan, failed, seen = [], 0, set()
    for item in inputs:  # an input that matches nothing is reported; the others go on
        try:
            for pair in plan_inputs([item]):
                if pair[0] not in seen:
                    seen.add(pair[0])
                    plan.append(pair)
        except FileNotFoundError as exc:
            print(f"huescale colorize: failed: {exc}", file=sys.stderr)
            failed += 1
    return plan, failed


def _not_ours(dest: Path) -> str:
    """Why ``dest`` is never replaced: it exists and is not an output of ``huescale colorize``."""
    from huescale.inference.writer import UNMARKABLE_FORMATS  # lazy: per command (huescale --help loads no torch)

    why = ("a .bmp holds no mark, so an existing one is never replaced" if dest.suffix.lower() in
           UNMARKABLE_FORMATS else "it carries no 'huescale colorize' mark")
    return (f"{dest} exists and is not an output of huescale colorize ({why}); --overwrite replaces only "
            "earlier outputs: move the file away or pass another --out")


def _colorize_one(run, f: Path, dest: Path, args: argparse.Namespace) -> str:
    """Colorize input ``f`` into ``dest`` unless that would replace a file it must not: ``"written"``,
    ``"skipped"`` or ``"failed"`` (a skip or failure is named on stderr)."""
    # lazy: per command (huescale --help loads no torch)
    from tqdm.auto import tqdm

    from huescale.data.images import ImageError, read_image
    from huescale.inference.writer import colorize_to_file, is_colorize_output
    from huescale.progress import bar as progress_bar

    if dest.exists() or dest.is_symlink():
        if not is_colorize_output(dest):  # a photograph, an edited result: never replaced
            tqdm.write(f"huescale colorize: skipped: {_not_ours(dest)} (output of {f})", file=sys.stderr)
            return "skipped"
        if not args.overwrite:
            tqdm.write(f"huescale colorize: skipped: {dest} exists (an earlier output; output of {f}); pass "
                       "--overwrite to replace it", file=sys.stderr)
            return "skipped"
    try:
        rgb = read_image(f, max_pixels=args.max_pixels)
        n = run.n_tiles(*rgb.shape[:2])
        with progress_bar(total=n, desc=f.name, unit="tile", leave=False, disable=n < 8) as tiles:
            colorize_to_file(run, rgb, dest, tiles.update, overwrite=args.overwrite)
        del rgb
        return "written"
    except FileExistsError:  # created by someone else while this one was colorized
        what = (_not_ours(dest) if args.overwrite else
                f"{dest} appeared meanwhile; pass --overwrite to replace it")
        tqdm.write(f"huescale colorize: skipped: {what} (output of {f})", file=sys.stderr)
        return "skipped"
    except (ImageError, ValueError, OSError, RuntimeError, MemoryError) as exc:
        msg = str(exc) if str(f) in str(exc) else f"{f}: {type(exc).__name__}: {exc}"
        tqdm.write(f"huescale colorize: failed: {msg}", file=sys.stderr)
        return "failed"
