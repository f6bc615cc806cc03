"""The ``huescale`` command: run a pipeline stage, or colorize your own photographs.

    huescale stage NAME [--params params.yaml]
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


def _set_name(folder: Path) -> str:
    """A benchmark set's name from its folder: ``.../Set5/GTmod12`` -> ``Set5``."""
    return folder.parent.name if folder.name in ("GTmod12", "HR", "GT") else folder.name


def _benchmark_sr(args: argparse.Namespace) -> int:
    import datetime as dt
    import json

    from huescale import benchmark as bm, checkpoint
    from huescale.report import benchmark_context, render
    from huescale.tracking import git_commit
    from huescale.train import resolve_device

    device = resolve_device(args.device)
    nets, labels = {}, {"bicubic": "bicubic (MATLAB-compatible)"}
    for path in args.upscaler:
        net, ck = checkpoint.load_model(path, device)
        name = f"{ck['model']}:{Path(path).stem}"
        nets[name], labels[name] = net, f"{ck['model']} {ck.get('kwargs', {})} ({path})"
    sets = {_set_name(Path(f)): str(f) for f in args.hr}
    lr = {_set_name(Path(h)): str(l) for h, l in zip(args.hr, args.lr or [])}
    out = Path(args.out)
    result, rows = bm.run(sets, nets, args.scale, lr, out / "samples", args.samples, device)
    if not result["sets"]:
        raise FileNotFoundError("; ".join(result["skipped"].values()) or "no benchmark set given")
    (out / "result.json").write_text(json.dumps(result, indent=2))
    bm.write_per_image_csv(rows, out / "per_image.csv")
    meta = {"generated": dt.datetime.now().isoformat(timespec="seconds"), "git_commit": git_commit(),
            "device": device.type, "mlflow": {}, "wall_times": {}}
    render(Path(args.templates), "benchmark.html.j2", out / "benchmark.html", page="benchmark.html", result=result,
           meta=meta, params=[], method_labels=labels, per_image_csv=str(out / "per_image.csv"),
           **benchmark_context(result, out / "samples"))
    for name, s in result["sets"].items():
        print(name, json.dumps({m: [round(v["psnr_y"], 2), round(v["ssim_y"], 4)] for m, v in s.items()}))
    print(f"report: {out / 'benchmark.html'}")
    return 0


def _score_folder(args: argparse.Namespace) -> int:
    import json

    from huescale import checkpoint
    from huescale.evaluate import score_folder, summarize_rows, write_rows_csv
    from huescale.infer import Colorizer, iter_inputs
    from huescale.train import resolve_device

    device = resolve_device(args.device)
    colorizer, _ = checkpoint.load_model(args.checkpoint, device)
    run = Colorizer(colorizer, None, scale=1, device=device)
    rows, skipped = score_folder(iter_inputs(args.inputs), run, args.epsilon, args.max_side)
    write_rows_csv(rows, args.out)
    for s in skipped:
        print(f"skipped: {s['file']}: {s['reason']}", file=sys.stderr)
    summary = {**summarize_rows(rows), "skipped": len(skipped), "csv": str(args.out)}
    print(json.dumps(summary, indent=1))
    return 0 if rows else 1


def _add_evaluation_commands(sub) -> None:
    """``huescale benchmark-sr`` and ``huescale score-folder``."""
    bs = sub.add_parser("benchmark-sr", help="x4 SR benchmark (Set5/Set14/BSD100 protocol) on HR folders, with a report")
    bs.add_argument("hr", nargs="+", help="folders of HR images (e.g. ../shared/data/benchmarks/Set5/GTmod12)")
    bs.add_argument("--lr", nargs="*", help="provided LR folders, in the order of the HR folders, to check our bicubic")
    bs.add_argument("--upscaler", nargs="*", default=[], help="upscaler checkpoints to score (bicubic always is)")
    bs.add_argument("--scale", type=int, default=4)
    bs.add_argument("--samples", type=int, default=2, help="images per set shown as zoomed crops")
    bs.add_argument("--out", required=True, help="output folder: result.json, per_image.csv, benchmark.html")
    bs.add_argument("--templates", default=str(Path(__file__).resolve().parents[2] / "reports" / "templates"))
    bs.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sf = sub.add_parser("score-folder", help="colorization quality on your own colour photographs (per-image CSV)")
    sf.add_argument("inputs", nargs="+", help="image files, folders or globs of colour photographs")
    sf.add_argument("--checkpoint", default="models/colorizer.pt", help="colorizer checkpoint")
    sf.add_argument("--out", default="eval/score_folder.csv", help="per-image CSV, worst first")
    sf.add_argument("--epsilon", type=float, default=0.05, help="epsilon-accuracy threshold (fraction of 255)")
    sf.add_argument("--max-side", type=int, default=512, help="longest side scored (0 = full size)")
    sf.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``huescale`` console script."""
    ap = argparse.ArgumentParser(prog="huescale", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("stage", help="run one pipeline stage (as dvc repro does)")
    st.add_argument("name", choices=["download", "prepare", "pretrain", "train", "evaluate", "benchmark", "report"])
    st.add_argument("--params", default="params.yaml")
    co = sub.add_parser("colorize", help="colorize (and x4 upscale) your own photographs")
    co.add_argument("inputs", nargs="+", help="image files, folders or globs")
    co.add_argument("--out", required=True, help="output folder")
    co.add_argument("--scale", type=int, default=1, choices=[1, 4], help="output size factor (4 uses the upscaler)")
    co.add_argument("--colorizer", default="models/colorizer.pt")
    co.add_argument("--upscaler", default="models/upscaler.pt")
    co.add_argument("--format", default=None, help="output extension, e.g. .png (default: keep the input's)")
    co.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    _add_evaluation_commands(sub)
    args = ap.parse_args(argv)
    handlers = {"benchmark-sr": _benchmark_sr, "score-folder": _score_folder}
    if args.cmd in handlers:
        try:
            sys.exit(handlers[args.cmd](args))
        except (FileNotFoundError, ValueError, RuntimeError) as exc:
            sys.exit(f"huescale {args.cmd}: error: {exc}")
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
