"""Training throughput: eager fp32 vs the tuned path, in the same run. Prints JSON.

    python benchmarks/train.py [--device auto] [--steps 20] [--batch 16] [--compile]

Measures images/s and CPU-ms per image of the default colorizer's two pre-training steps (semantic 64:
``semantic64_frozen_cached``, the decoder on cached encoder features, and ``semantic64_finetune``, the whole network;
rebalanced ab_ce + 5 reg_l1, Adam), (1) colornet's pre-training step (the previous default, Zhang et al. 2016),
(2) the U-Net 64 adversarial step (U-Net + PatchGAN,
LSGAN + lambda_L1 L1, Adam, Brescia et al., Singh et al.) and (3) the two-step 256 pipeline's
upscaler step (ESPCN 64 -> 256, L1), each for eager fp32 and for the tuned
path (channels_last; bf16 autocast where runtime.amp auto turns it on: CUDA, and CPUs with AMX/AVX512-BF16;
fused Adam on CUDA; torch.compile with --compile), plus the training loader's delivery rate from a real pair store
built from ../shared/data/coco128 and its ratio to what the step consumes.
Peak memory: CUDA max allocated, or the process's peak RSS on CPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

from huescale.color import uint8_to_lab_normalized
from huescale.config import Config
from huescale.training import recipe
from huescale.training.distributed import resolve_device
from huescale.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_rate(kind: str, tuned: bool, device: torch.device, batch: int, steps: int, compile_: bool) -> float:
    """(images per second, CPU-ms per image) of one training step kind after 3 warm-up steps."""
    from huescale.config_io import load_config

    cfg = Config()  # the source documents' models: U-Net depth 3 / 32 channels, PatchGAN 32, residual ESPCN x4
    cfg.runtime.channels_last, cfg.runtime.compile = tuned, tuned and compile_
    cfg.runtime.amp = "auto" if tuned else "off"
    cfg.train.batch_size = cfg.pretrain.upscaler.batch_size = batch
    with tempfile.TemporaryDirectory() as tmp:
        params = load_config(ROOT / "params.yaml")
        if kind.startswith("semantic64"):  # params.yaml's colorizer and its pre-training phases
            cfg.model.colorizer, cfg.pretrain = params.model.colorizer, params.pretrain
            cfg.pretrain.colorizer.batch_size = cfg.pretrain.finetune.batch_size = batch
            r = recipe.build(cfg, "colorizer", "finetune" if kind.endswith("finetune") else "pretrain", device)
            images = torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8)
            with torch.no_grad():  # what the feature cache holds for these photographs
                feats = r.netG.encode(uint8_to_lab_normalized(images.to(device))[0]) if r.cached_features else []
            data = (images, *(f.half().float() for f in feats))
        elif kind == "colornet64_pretrain":  # the previous default colorizer and its pre-training losses
            cfg.model.colorizer.name = "colornet"
            cfg.model.colorizer.kwargs = {"depth": 4, "base_channels": 32, "convs": 2, "max_channels": 192,
                                          "global_dim": 256, "head_stride": 2}
            cfg.pretrain.colorizer = params.pretrain.colorizer
            cfg.pretrain.colorizer.batch_size = batch
            r = recipe.build(cfg, "colorizer", "pretrain", device)
            data = (torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8),)
        elif kind == "unet64_adversarial":
            r = recipe.build(cfg, "colorizer", "adversarial", device)
            data = (torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8),)
        else:
            r = recipe.build(cfg, "upscaler", "pretrain", device)
            data = (torch.randint(0, 256, (batch, 3, 64, 64), dtype=torch.uint8),
                    torch.randint(0, 256, (batch, 3, 256, 256), dtype=torch.uint8))
        t = Trainer(r, Path(tmp) / "s.pt", Path(tmp) / "b.pt", device=device, progress=False)
        if not tuned:  # eager fp32 reference: no autocast even on CUDA
            t.amp = False
        for i in range(3 + steps):
            if i == 3:
                _sync(device)
                t0, c0 = time.perf_counter(), time.process_time()
            x, y, extra = t._prepare(data, 0, i, train=True)
            t.train_step(x, y, extra)
        _sync(device)
        n = batch * steps
        return n / (time.perf_counter() - t0), 1000 * (time.process_time() - c0) / n


def loader_rate(batch: int, seconds: float = 5.0) -> float:
    """Images per second the pair-store DataLoader delivers (uint8 batches, tier 64)."""
    from torch.utils.data import DataLoader

    from huescale.config import DataConfig
    from huescale.data.dataset import PairDataset
    from huescale.data.source_base import FolderSource
    from huescale.data.sources import list_images
    from huescale.data.store import PairStore
    from huescale.data.store_build import build_pair_store

    with tempfile.TemporaryDirectory() as tmp:
        refs = list_images(FolderSource([ROOT.parent / "shared" / "data" / "coco128" / "train2017"]))
        build_pair_store(refs, DataConfig(source="folder", folders=["x"], n_images=128, workers=2), Path(tmp) / "p",
                         progress=False)
        ds = PairDataset(PairStore(Path(tmp) / "p"), "train", "64")
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for (b,) in DataLoader(ds, batch_size=batch, shuffle=True):
                n += b.shape[0]
        return n / (time.perf_counter() - t0)


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA allocation, or peak RSS of this process, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args()
    from huescale.training.distributed import use_bf16

    device = resolve_device(args.device)
    bf16 = use_bf16("auto", device)
    out: dict = {"device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu x{torch.get_num_threads()}",
                 "torch": torch.__version__, "batch": args.batch, "steps": args.steps,
                 "load_average_1min": round(__import__("os").getloadavg()[0], 2),
                 "tuned": "channels_last" + (" + bf16 autocast" if bf16 else "")
                 + (" + fused Adam" if device.type == "cuda" else "") + (" + torch.compile" if args.compile else "")}
    for kind in ("semantic64_frozen_cached", "semantic64_finetune", "colornet64_pretrain", "unet64_adversarial",
                 "espcn_two_step_256"):
        eager, eager_cpu = step_rate(kind, False, device, args.batch, args.steps, args.compile)
        tuned, tuned_cpu = step_rate(kind, True, device, args.batch, args.steps, args.compile)
        out[kind] = {"eager_fp32_img_s": round(eager, 1), "tuned_img_s": round(tuned, 1),
                     "speedup": round(tuned / eager, 2), "eager_cpu_ms_per_img": round(eager_cpu, 2),
                     "tuned_cpu_ms_per_img": round(tuned_cpu, 2)}
    out["loader_img_s"] = round(loader_rate(args.batch), 1)
    consumed = max(out["unet64_adversarial"]["tuned_img_s"], out["unet64_adversarial"]["eager_fp32_img_s"])
    out["loader_over_unet64_step"] = round(out["loader_img_s"] / consumed, 2)
    out["peak_memory_mib"] = round(peak_memory_mb(device), 1)
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
