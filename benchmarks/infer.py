"""Inference throughput of 64 gray -> 256 colour (two-step: colorizer + ESPCN). Prints JSON.

    python benchmarks/infer.py [--device auto] [--iters 20] [--no-onnx] [--memory-photo PHOTO]
        [--photos DIR [--n-photos 20] [--cli N] [--checkpoint COLORIZER.pt] [--upscaler UPSCALER.pt]]

The colorizers: params.yaml's (semantic) and the source documents' U-Net (depth 3, base 32), each with
the residual ESPCN x4. Batch 1 and 64, after warm-up; eager fp32 vs the tuned path (channels_last,
bf16 autocast on CUDA and on CPUs with AMX/AVX512-BF16), and onnxruntime (U-Net pipeline) (CPU, fp32, the graph of
``huescale.inference.export.two_step_for_export``: the same pipeline with the MATLAB
bicubic as a convolution), measured in the same run, with the ratio
onnxruntime / eager. Untrained weights: speed does not depend on them. Target
Targets: >= 20 img/s on 2 CPU cores, >= 1,000 img/s at batch 64 on an H100
(Singh et al. reports 28 FPS).

``--photos DIR`` also colorizes the first ``--n-photos`` photographs of DIR at x4 through ``huescale colorize``'s
Colorizer (the shipped model; a BSDS500 photograph becomes 1924 x 1284) with float32 and with bf16 autocast of
the networks (``--amp``), reporting CPU-ms and wall-ms per photograph (process CPU time, all threads).

``--cli N`` (with ``--photos``) runs ``huescale colorize --scale 4`` end to end in a child process on N 64 x 64
gray photographs made from DIR, start-up included: the ``--checkpoint`` model beside the shipped one, photographs/s
and the child's CPU-s per photograph (issue 24's target: >= 20 photographs/s on 2 cores).

``--memory-photo`` also resizes that photo to 4000 x 3000 (in a temp folder) and
runs ``huescale colorize`` on it at ``--scale 1`` and ``--scale 4`` (16000 x
12000 PNG) in child processes, recording each one's peak RSS and wall time.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from huescale import models
from huescale.evaluation.evaluate import measure_fps
from huescale.models.pipelines import TwoStepPipeline
from huescale.training import checkpoint
from huescale.training.distributed import resolve_device

ROOT = Path(__file__).resolve().parents[1]

_PEAK = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
         "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
         "sys.stderr.write(r.stderr[-2000:])")


def onnx_fps(colorizer: torch.nn.Module, upscaler: torch.nn.Module, batches: tuple[int, ...], iters: int) -> dict:
    """img/s of the two-step pipeline exported to ONNX, run by onnxruntime on the CPU (fp32)."""
    import onnxruntime as ort

    from huescale.inference.export import two_step_for_export

    model = two_step_for_export(colorizer, upscaler).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "two_step.onnx"
        n = torch.export.Dim("batch", min=1, max=4096)
        torch.onnx.export(model, (torch.rand(2, 1, 64, 64) * 2 - 1,), dynamo=True, input_names=["L"],
                          output_names=["Lab"], dynamic_shapes={"x": {0: n}}, verbose=False).save(str(path))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    out = {}
    for b in batches:
        x = (np.random.default_rng(0).random((b, 1, 64, 64), dtype=np.float32) * 2 - 1)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        out["max_abs_diff_vs_torch"] = max(out.get("max_abs_diff_vs_torch", 0.0),
                                           float(np.abs(sess.run(None, {"L": x})[0] - ref).max()))
        n_it = max(2, iters // (8 if b == 64 else 1))
        for _ in range(3):
            sess.run(None, {"L": x})
        t = time.perf_counter()
        for _ in range(n_it):
            sess.run(None, {"L": x})
        out[f"onnxruntime_batch{b}_img_s"] = round(b * n_it / (time.perf_counter() - t), 1)
    return out


def memory(photo: str, colorizer: torch.nn.Module, upscaler: torch.nn.Module) -> dict:
    """Peak RSS (MB) and seconds of `huescale colorize` on ``photo`` resized to 4000 x 3000, x1 and x4."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # the x4 output (192 MP) is ours, not a decompression bomb
    out: dict = {"photo": str(photo), "input": "4000x3000"}
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big.jpg"
        Image.open(photo).convert("RGB").resize((4000, 3000), Image.BICUBIC).save(big, quality=92)
        checkpoint.save_model(colorizer, "unet", {"base_channels": 32}, Path(tmp) / "c.pt")
        checkpoint.save_model(upscaler, "espcn", {"scale": 4}, Path(tmp) / "u.pt")
        exe = str(Path(sys.executable).parent / "huescale")
        for scale in (1, 4):
            dest = Path(tmp) / f"out{scale}.png"
            cmd = [exe, "colorize", str(big), "--out", str(dest), "--scale", str(scale), "--checkpoint",
                   str(Path(tmp) / "c.pt"), "--upscaler", str(Path(tmp) / "u.pt"), "--device", "cpu"]
            t = time.perf_counter()
            r = subprocess.run([sys.executable, "-c", _PEAK, *cmd], capture_output=True, text=True)
            rc, kb = r.stdout.split()
            with Image.open(dest) if rc == "0" else open(os.devnull) as im:
                size = "x".join(map(str, im.size)) if rc == "0" else r.stderr[-300:]
            out[f"scale{scale}"] = {"rc": int(rc), "peak_rss_mb": round(int(kb) / 1024),
                                    "s": round(time.perf_counter() - t, 1), "output": size,
                                    "output_mb_on_disk": round(dest.stat().st_size / 2**20) if dest.exists() else None}
    return out


def colorize_photos(folder: str, n: int, colorizer: str | None = None, upscaler: str | None = None) -> dict:
    """CPU-ms and wall-ms per photograph of x4 colorize (the shipped model, or the ``colorizer`` / ``upscaler``
    checkpoints), float32 vs bf16 autocast."""
    from huescale.data.images import read_image
    from huescale.inference import shipped
    from huescale.inference.tiling import Colorizer
    from huescale.training.distributed import use_bf16

    files = sorted(f for f in Path(folder).iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
    photos = [read_image(f) for f in files]
    col, up, _ = shipped.load("cpu")
    if colorizer:
        col = checkpoint.load_model(colorizer)[0]
    if upscaler:
        up = checkpoint.load_model(upscaler)[0]
    out: dict = {"model": colorizer or "shipped", "photos": len(photos), "size": list(photos[0].shape[:2]), "scale": 4,
                 "bf16_native": use_bf16("auto", torch.device("cpu"))}
    for amp in (False, True):
        run = Colorizer(col, up, scale=4, amp=amp)
        run(photos[0])  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        for x in photos:
            run(x)
        key = "bf16" if amp else "fp32"
        out[f"{key}_cpu_ms_per_photo"] = round(1000 * (time.process_time() - cpu) / len(photos), 1)
        out[f"{key}_wall_ms_per_photo"] = round(1000 * (time.perf_counter() - wall) / len(photos), 1)
    out["cpu_ratio_fp32_over_bf16"] = round(out["fp32_cpu_ms_per_photo"] / out["bf16_cpu_ms_per_photo"], 2)
    return out


def cli_throughput(folder: str, n: int, colorizer: str | None, upscaler: str | None) -> dict:
    """End to end, as a user runs it: ``huescale colorize --scale 4`` in a child process on ``n`` 64 x 64 gray
    photographs (the first ``n`` of ``folder``, centre-cropped and resized with Pillow), start-up, model loading
    and PNG writing included. Measured for the ``colorizer`` / ``upscaler`` checkpoints (None: the shipped
    model) and, in the same run, for the shipped model as the reference; photographs/s by wall clock, and the
    child's CPU-s (user + system, all threads). Issue 24's target: >= 20 photographs/s on 2 cores."""
    from PIL import Image, ImageOps

    files = sorted(f for f in Path(folder).iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
    out: dict = {"photos": len(files), "input": "64 x 64 gray", "scale": 4}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        for f in files:
            with Image.open(f) as im:
                ImageOps.fit(im.convert("L"), (64, 64), Image.Resampling.BICUBIC).save(src / f"{f.stem}.png")
        from huescale.inference import shipped

        upscaler = upscaler or (str(shipped.assets_dir() / "upscaler.pt") if colorizer else None)
        runs = {"model": [*(["--checkpoint", colorizer] if colorizer else []),
                          *(["--upscaler", upscaler] if upscaler else [])]}
        if colorizer or upscaler:
            runs["shipped_reference"] = []
        for key, extra in runs.items():
            dest = Path(tmp) / f"out_{key}"
            cli = str(Path(sys.executable).with_name("huescale"))  # the console script of this environment
            cmd = [cli, "colorize", str(src), "--out", str(dest), "--scale", "4", *extra]
            before = os.times()
            t = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t
            after = os.times()
            if r.returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
            cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
            out[key] = {"checkpoint": extra[1] if extra else "shipped", "wall_s": round(wall, 2),
                        "cpu_s": round(cpu, 2), "photos_per_s": round(len(files) / wall, 1),
                        "cpu_s_per_photo": round(cpu / len(files), 3),
                        "outputs": len(list(dest.glob("*.png")))}
    if "shipped_reference" in out:
        out["ratio_photos_per_s_vs_shipped"] = round(out["model"]["photos_per_s"]
                                                     / out["shipped_reference"]["photos_per_s"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime measurement")
    ap.add_argument("--memory-photo", default=None, help="measure peak RSS of colorize on this photo at 4000x3000")
    ap.add_argument("--photos", default=None, help="a folder of photographs to colorize at x4, fp32 vs bf16")
    ap.add_argument("--n-photos", type=int, default=20)
    ap.add_argument("--cli", type=int, default=0, metavar="N",
                    help="with --photos: `huescale colorize --scale 4` end to end on N 64 px gray photographs "
                         "(--checkpoint / --upscaler, beside the shipped model)")
    ap.add_argument("--checkpoint", default=None, help="--photos with this colorizer checkpoint (default: shipped)")
    ap.add_argument("--upscaler", default=None, help="--photos with this upscaler checkpoint (default: shipped)")
    args = ap.parse_args()
    device = resolve_device(args.device)
    from huescale.config_io import load_config
    from huescale.training.distributed import use_bf16

    out: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
                 "dtype": "float32" + (" (tuned: bfloat16 autocast)" if use_bf16("auto", device) else ""),
                 "torch": torch.__version__, "load_average_1min": round(os.getloadavg()[0], 2),
                 "pipeline": "two-step: colorizer at 64 + espcn x4 on L + bicubic ab -> 256"}
    torch.manual_seed(0)
    spec = load_config(ROOT / "params.yaml").model.colorizer
    upscaler = models.build("espcn", scale=4).eval()
    colorizer = models.build("unet", base_channels=32).eval()
    for name, col in ((spec.name, models.build(spec.name, **spec.kwargs).eval()), ("unet", colorizer)):
        for tuned in (False, True):
            pipe = copy.deepcopy(TwoStepPipeline(col, upscaler)).to(device).eval()
            if tuned:
                pipe = pipe.to(memory_format=torch.channels_last)
            key = f"{name}_" + ("tuned" if tuned else "eager_fp32")
            for b in (1, 64):
                iters = max(2, args.iters // (8 if b == 64 else 1))
                fps = measure_fps(pipe, (1, 64, 64), device, b, 3, iters, tuned)
                out[f"{key}_batch{b}_img_s"] = round(fps, 1)
            out[f"{name}_speedup_batch64"] = round(out[f"{name}_tuned_batch64_img_s"]
                                                  / out[f"{name}_eager_fp32_batch64_img_s"], 2) if tuned else None
    if not args.no_onnx:
        import onnxruntime

        out["onnxruntime"] = {"version": onnxruntime.__version__, "provider": "CPUExecutionProvider",
                              "dtype": "float32",
                              "threads": torch.get_num_threads(),
                              **onnx_fps(colorizer, upscaler, (1, 64), args.iters)}
        if device.type == "cpu":
            for b in (1, 64):
                out["onnxruntime"][f"ratio_vs_eager_batch{b}"] = round(
                    out["onnxruntime"][f"onnxruntime_batch{b}_img_s"] / out[f"unet_eager_fp32_batch{b}_img_s"], 2)
    if args.photos:
        out["colorize_x4"] = colorize_photos(args.photos, args.n_photos, args.checkpoint, args.upscaler)
    if args.photos and args.cli:
        out["colorize_cli_x4"] = cli_throughput(args.photos, args.cli, args.checkpoint, args.upscaler)
    if args.memory_photo:
        out["memory_4000x3000"] = memory(args.memory_photo, colorizer, upscaler)
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
