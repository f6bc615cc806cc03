"""Inference throughput of 64 gray -> 256 colour (two-step: U-Net colorizer + ESPCN). Prints JSON.

    python benchmarks/infer.py [--device auto] [--iters 20]

Batch 1 and 64, after warm-up; eager fp32 vs the tuned path (channels_last,
bf16 autocast on CUDA), measured in the same run. Untrained weights: speed
does not depend on them. Target (issue 6/7): >= 20 img/s on 2 CPU cores,
>= 1,000 img/s at batch 64 on an H100 (seed 004 reports 28 FPS).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from huescale import models
from huescale.evaluate import measure_fps
from huescale.models.pipelines import TwoStepPipeline
from huescale.train import resolve_device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    device = resolve_device(args.device)
    out: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
                 "pipeline": "two-step: unet(depth 3, base 32) at 64 + espcn x4 on L + bicubic ab -> 256"}
    for tuned in (False, True):
        pipe = TwoStepPipeline(models.build("unet", base_channels=32), models.build("espcn", scale=4)).to(device).eval()
        if tuned:
            pipe = pipe.to(memory_format=torch.channels_last)
        key = "tuned" if tuned else "eager_fp32"
        for b in (1, 64):
            iters = max(2, args.iters // (8 if b == 64 else 1))
            out[f"{key}_batch{b}_img_s"] = round(measure_fps(pipe, (1, 64, 64), device, b, 3, iters, tuned), 1)
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
