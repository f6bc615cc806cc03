"""Stage ``benchmark``: the x4 SR benchmark (Set5/Set14/BSD100 protocol) of bicubic and the trained upscaler."""

from __future__ import annotations

from huescale import tracking
from huescale.atomic import write_json
from huescale.config import Config
from huescale.data.benchmarks import resolve_all
from huescale.data.source_base import cache_root
from huescale.evaluation import benchmark as bm
from huescale.pipeline.stages import BENCH_CSV, BENCH_METRICS, BENCH_SAMPLES, UPSCALER
from huescale.pipeline.stages.runner import device
from huescale.training import checkpoint


def run(cfg: Config) -> dict:
    """Write the full result (``eval/benchmark/result.json``), per-image scores and zoomed crops for
    ``reports/benchmark.html``; return flat ``<set>_<method>_psnr_y`` / ``_ssim_y`` values (DVC metrics).

    Raises:
        huescale.training.checkpoint.CheckpointError: the upscaler checkpoint is missing.
    """
    dev = device(cfg)
    upscaler, ck = checkpoint.load_model(UPSCALER, dev)
    b = cfg.benchmark
    # registry names are fetched once into the cache (from a mirror when archive_url is set)
    sets, skipped = resolve_all(b.sets, cache_root(cfg.data), url=b.archive_url, md5=b.archive_md5)
    lr_check, _ = resolve_all(b.lr_check, cache_root(cfg.data), url=b.archive_url, md5=b.archive_md5)
    result, rows = bm.run(sets, {ck["model"]: upscaler}, cfg.data.scale, lr_check, BENCH_SAMPLES, b.samples, dev)
    result["skipped"].update(skipped)
    result["upscaler"] = {"name": ck["model"], "kwargs": ck.get("kwargs", {}), "checkpoint": str(UPSCALER)}
    write_json(result, BENCH_METRICS)
    bm.write_per_image_csv(rows, BENCH_CSV)
    tracking.log_artifact(BENCH_METRICS)
    flat = {f"{s}_{m}_{k}": v[k] for s, methods in result["sets"].items() for m, v in methods.items()
            for k in ("psnr_y", "ssim_y")}
    flat.update({f"{s}_lr_max_abs_diff": c["max_abs_diff"] for s, c in result["lr_check"].items()})
    return flat
