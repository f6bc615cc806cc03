"""The six pipeline stages as functions: the glue between params, library, files and MLflow.

``stages/*.py`` (DVC) and ``flows/retrain.py`` (Prefect) call :func:`run_stage`;
each stage reads its section of ``params.yaml``, its declared deps, writes
its declared outs (DVC ``dvc.yaml``) and logs a nested MLflow run.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from pathlib import Path
from typing import Callable

from huescale.atomic import write_json
from huescale.config import Config, load_config, to_flat_dict

log = logging.getLogger("huescale")

# Paths of the stage outputs, relative to the project root (mirrors dvc.yaml).
LISTING = Path("data/raw.json")
PAIRS = Path("data/pairs")
MODELS = Path("models")
COLORIZER_PRE = MODELS / "colorizer_pretrained.pt"
UPSCALER = MODELS / "upscaler.pt"
COLORIZER = MODELS / "colorizer.pt"
DISCRIMINATOR = MODELS / "discriminator.pt"
METRICS = Path("metrics")
STATE = Path(".huescale/state")
EVAL_METRICS = Path("metrics.json")
SAMPLES = Path("eval/samples")
PER_IMAGE = Path("eval/per_image.csv")
REPORT = Path("reports/index.html")
BENCH_SAMPLES = Path("eval/benchmark")
BENCH_METRICS = BENCH_SAMPLES / "result.json"  # the full result; metrics/benchmark.json has the flat figures
BENCH_CSV = Path("eval/benchmark_per_image.csv")
BENCH_REPORT = Path("reports/benchmark.html")
TEMPLATES = Path("reports/templates")


def _device(cfg: Config):
    import torch

    from huescale.train import resolve_device

    from huescale.distributed import init_from_env

    if cfg.runtime.threads > 0:
        torch.set_num_threads(cfg.runtime.threads)
    return init_from_env(resolve_device(cfg.runtime.device))  # joins the torchrun group, if any


def download(cfg: Config) -> dict:
    """Fetch the source (download/verify/extract or check folders) and write the image listing."""
    from huescale.data.sources import list_images, make_source, make_test_source, write_listing

    refs = list_images(make_source(cfg.data, seed=cfg.seed))
    if not refs:
        raise FileNotFoundError(f"data.source={cfg.data.source}: no image files found; check data.folders")
    test_source = make_test_source(cfg.data, seed=cfg.seed)
    test_refs = list_images(test_source, split="test") if test_source is not None else []
    if test_source is not None and not test_refs:
        raise FileNotFoundError(f"data.test_source={cfg.data.test_source.source}: no image files found")
    write_listing(refs + test_refs, cfg.data.source, LISTING)
    out = {"images_listed": len(refs), "bytes": sum(r.size for r in refs)}
    if test_refs:
        out["test_images_listed"] = len(test_refs)
    return out


def prepare(cfg: Config) -> dict:
    """Build the 64/256 pair store from the listing (subset, split, exclusions, shards)."""
    from huescale.data.sources import read_listing
    from huescale.data.store import build_pair_store

    manifest = build_pair_store(read_listing(LISTING), cfg.data, PAIRS, seed=cfg.seed)
    out = {"usable": manifest["usable"], "candidates_seen": manifest["candidates_seen"]}
    out.update({f"excluded_{k}": v for k, v in manifest["excluded"].items()})
    out.update({f"converted_{k}": v for k, v in manifest["converted"].items()})
    out.update({f"{s}_tier{t}": n for s, c in manifest["counts"].items() for t, n in c.items()})
    return out


def _phase(cfg: Config, opt, **extra):
    from huescale.train import PhaseConfig

    return PhaseConfig(epochs=opt.epochs, batch_size=opt.batch_size, lr=opt.lr, betas=tuple(opt.betas),
                       seed=cfg.seed, max_batches=opt.max_batches, num_workers=cfg.runtime.num_workers,
                       channels_last=cfg.runtime.channels_last, compile=cfg.runtime.compile, **extra)


def _fit(name: str, trainer_kwargs: dict, train_set, val_set, history_csv: Path) -> dict:
    """Run one Trainer phase with per-epoch MLflow logging; drop its resume state on success."""
    from huescale import checkpoint, tracking
    from huescale.train import Trainer, write_history_csv

    def on_epoch(rec) -> None:
        tracking.log_metrics(rec.values, step=rec.epoch, prefix=f"{name}/")
        write_history_csv(trainer.history, history_csv)

    trainer = Trainer(**trainer_kwargs, on_epoch=on_epoch)
    history = trainer.fit(train_set, val_set)
    write_history_csv(history, history_csv)
    trainer.state_path.unlink(missing_ok=True)
    checkpoint.previous(trainer.state_path).unlink(missing_ok=True)
    out = {f"{name}_best_val_l1": trainer.best_val, f"{name}_epochs": trainer.epoch, f"{name}_steps": trainer.step}
    if trainer.adversarial:
        out[f"{name}_d_collapse"] = bool(history and history[-1].values.get("d_collapse", 0))
    return out


def pretrain(cfg: Config) -> dict:
    """L1 pre-training of the colorizer (seed 004) and the x4 upscaler on L (seed 000)."""
    from huescale import models, tracking
    from huescale.data.dataset import PairDataset
    from huescale.data.store import PairStore
    from huescale.train import colorization_task, seed_everything, upscaling_task

    device, store = _device(cfg), PairStore(PAIRS)
    out = {}
    m = cfg.model
    for name, spec, tier, task, opt, best in (
        ("colorizer", m.colorizer, "64", colorization_task, cfg.pretrain.colorizer, COLORIZER_PRE),
        ("upscaler", m.upscaler, "256", upscaling_task, cfg.pretrain.upscaler, UPSCALER),
    ):
        seed_everything(cfg.seed)
        net = models.build(spec.name, **spec.kwargs)
        out.update(_fit(name, dict(netG=net, task=task, cfg=_phase(cfg, opt), state_path=STATE / f"pretrain_{name}.pt",
                                   best_path=best, model_spec=(spec.name, spec.kwargs), device=device),
                        PairDataset(store, "train", tier), PairDataset(store, "val", tier),
                        METRICS / f"pretrain_{name}.csv"))
        tracking.log_artifact(best, "checkpoints")
    return out


def loss_terms(t) -> dict:
    """The ``train`` section's loss options as :class:`huescale.train.PhaseConfig` fields."""
    c = t.content_loss
    return {"lambda_gan": t.lambda_gan, "content_loss": c.name,
            "lambda_content": c.lambda_content if c.name != "none" else 0.0, "content_weights": c.weights,
            "lambda_cosine": t.lambda_cosine, "lambda_rgb": t.lambda_rgb, "d_conditional": t.d_conditional}


def train(cfg: Config) -> dict:
    """Adversarial training of the colorizer from its pre-trained weights (seeds 002/004)."""
    from huescale import checkpoint, distributed, models, tracking
    from huescale.data.dataset import PairDataset
    from huescale.data.store import PairStore
    from huescale.train import colorization_task, seed_everything

    device, store, t = _device(cfg), PairStore(PAIRS), cfg.train
    seed_everything(cfg.seed)
    spec, dspec = cfg.model.colorizer, cfg.model.discriminator
    if t.init == "scratch":  # seed 004 rows 1-6: adversarial training from a random generator
        netG, ck = models.build(spec.name, **spec.kwargs), {"model": spec.name, "kwargs": spec.kwargs}
    else:
        netG, ck = checkpoint.load_model(COLORIZER_PRE, device)
    netD = models.build(dspec.name, **dspec.kwargs)
    phase = _phase(cfg, t, gan_loss=t.gan_loss, lambda_l1=t.lambda_l1, collapse_steps=t.collapse_steps,
                   collapse_threshold=t.collapse_threshold, extra={"pretrained_val_l1": ck.get("val_l1")},
                   **loss_terms(t))
    out = _fit("train", dict(netG=netG, netD=netD, task=colorization_task, cfg=phase, state_path=STATE / "train.pt",
                             best_path=COLORIZER, model_spec=(ck["model"], ck["kwargs"]), device=device,
                             resume=t.resume),
               PairDataset(store, "train", "64"), PairDataset(store, "val", "64"), METRICS / "train.csv")
    if distributed.is_main():
        checkpoint.save_model(netD, dspec.name, dspec.kwargs, DISCRIMINATOR)
    if out.get("train_d_collapse"):
        tracking.set_tags({"warning": "discriminator collapse (loss_D ~ 0)"})
    tracking.log_artifact(COLORIZER, "checkpoints")
    return out


def evaluate(cfg: Config) -> dict:
    """Score the colorizer, the two-step pipeline, the upscaler and baselines on the test split."""
    import torch

    from huescale import checkpoint, evaluate as ev, metrics, tracking
    from huescale.data.store import PairStore

    device = _device(cfg)
    colorizer, _ = checkpoint.load_model(COLORIZER, device)
    upscaler, _ = checkpoint.load_model(UPSCALER, device)
    store = PairStore(PAIRS)
    images = ev.run_models(store, colorizer, upscaler, device, cfg.data.scale, cfg.evaluate.batch_size)
    fid, reason = None, None
    if not cfg.evaluate.fid:
        reason = "disabled by evaluate.fid=false"
    elif not metrics.FID.available(cfg.evaluate.fid_weights or None):
        reason = metrics.FID.missing_reason(cfg.evaluate.fid_weights or None)
    else:
        fid = metrics.FID(str(device), cfg.evaluate.fid_batch_size, cfg.evaluate.fid_weights or None,
                          cfg.evaluate.fid_cache or None)
    result, per_image = ev.score(images, cfg.evaluate.epsilon, cfg.data.scale, fid, reason)
    lr = cfg.data.lr_size
    result["fps"] = {"device": device.type, "dtype": "float32", "batch_sizes": [1, 64],
                     "threads": torch.get_num_threads(),
                     "colorizer_batch1": ev.measure_fps(colorizer, (1, lr, lr), device, 1),
                     "colorizer_batch64": ev.measure_fps(colorizer, (1, lr, lr), device, 64, 1, 2),
                     "upscaler_batch1": ev.measure_fps(upscaler, (1, lr, lr), device, 1)}
    result = ev.finite_or_none(result)
    write_json(result, EVAL_METRICS)
    ev.write_per_image_csv(per_image, store, PER_IMAGE)
    samples = ev.save_samples(images, SAMPLES, cfg.evaluate.grid_rows, [r["key"] for r in store.records("test", "256")])
    write_json({"rows": samples}, SAMPLES / "index.json")
    flat = {k: v for k, v in to_flat_dict(result).items() if isinstance(v, (int, float)) and v is not None}
    tracking.log_metrics(flat)
    tracking.log_artifact(EVAL_METRICS)
    return {}


def benchmark(cfg: Config) -> dict:
    """The x4 SR benchmark (Set5/Set14/BSD100 protocol) of bicubic and the trained upscaler.

    Writes the full result (``eval/benchmark/result.json``), per-image scores and zoomed
    crops for ``reports/benchmark.html``; returns flat ``<set>_<method>_psnr_y`` / ``_ssim_y``
    values, which :func:`run_stage` writes to ``metrics/benchmark.json`` (DVC metrics).
    """
    from huescale import benchmark as bm, checkpoint, tracking

    device = _device(cfg)
    upscaler, ck = checkpoint.load_model(UPSCALER, device)
    b = cfg.benchmark
    result, rows = bm.run(b.sets, {ck["model"]: upscaler}, cfg.data.scale, b.lr_check, BENCH_SAMPLES, b.samples, device)
    result["upscaler"] = {"name": ck["model"], "kwargs": ck.get("kwargs", {}), "checkpoint": str(UPSCALER)}
    write_json(result, BENCH_METRICS)
    bm.write_per_image_csv(rows, BENCH_CSV)
    tracking.log_artifact(BENCH_METRICS)
    flat = {f"{s}_{m}_{k}": v[k] for s, methods in result["sets"].items() for m, v in methods.items()
            for k in ("psnr_y", "ssim_y")}
    flat.update({f"{s}_lr_max_abs_diff": c["max_abs_diff"] for s, c in result["lr_check"].items()})
    return flat


def _report_meta(cfg: Config, device: str) -> dict:
    """Run metadata shown by every report: time, git commit, device, MLflow run, stage wall times."""
    from huescale import tracking

    wall = {}
    for stage in ("download", "prepare", "pretrain", "train", "evaluate", "benchmark"):
        p = METRICS / f"{stage}.json"
        if p.is_file():
            wall[stage] = json.loads(p.read_text()).get("wall_s", 0.0)
    info = tracking.active_run_info()
    if info.get("parent_run_id"):
        info["url"] = f"http://127.0.0.1:5000/#/experiments/{info['experiment_id']}/runs/{info['parent_run_id']}"
    return {"generated": dt.datetime.now().isoformat(timespec="seconds"), "git_commit": tracking.git_commit(),
            "device": device, "mlflow": info, "wall_times": wall}


def report(cfg: Config) -> dict:
    """Render ``reports/index.html`` (run) and ``reports/benchmark.html`` (SR benchmark) with Jinja2."""
    from huescale import reference, tracking
    from huescale.report import benchmark_context, data_uri, read_history, render, svg_line_chart, zoomed_crops

    if not EVAL_METRICS.is_file():
        raise FileNotFoundError(f"{EVAL_METRICS}: not found; run the evaluate stage first (dvc repro evaluate)")
    metrics_ = json.loads(EVAL_METRICS.read_text())
    manifest = json.loads((PAIRS / "manifest.json").read_text())
    rows = json.loads((SAMPLES / "index.json").read_text())["rows"]
    samples = []
    for r in rows:
        row = {k: (v if k == "key" else data_uri(SAMPLES / v)) for k, v in r.items()}
        zoom = zoomed_crops({"two_step": SAMPLES / r["two_step"], "ground_truth": SAMPLES / r["ground_truth"]},
                            reference="ground_truth")
        row.update({f"zoom_{k}": v for k, v in zoom.items()})
        samples.append(row)
    charts, warnings = [], []
    for name, title, keys in (
        ("pretrain_colorizer", "colorizer pre-training (L1)", ["loss_G_L1", "val_l1"]),
        ("pretrain_upscaler", "upscaler pre-training (L1)", ["loss_G_L1", "val_l1"]),
        ("train", "adversarial: discriminator", ["loss_D", "loss_D_real", "loss_D_fake"]),
        ("train", "adversarial: generator GAN loss", ["loss_G_GAN"]),
        ("train", "adversarial: L1 (train, validation)", ["loss_G_L1", "val_l1"]),
    ):
        h = read_history(METRICS / f"{name}.csv")
        if h:
            charts.append(svg_line_chart({k: h[k] for k in keys if k in h}, h["epoch"], title))
            if name == "train" and any(h.get("d_collapse", [])):
                warnings.append("discriminator collapse: loss_D stayed near 0 (see train.collapse_steps)")
    m = cfg.model
    meta = _report_meta(cfg, metrics_.get("fps", {}).get("device", "?"))
    meta.update({
        "colorizer": f"{m.colorizer.name} {m.colorizer.kwargs}", "upscaler": f"{m.upscaler.name} {m.upscaler.kwargs}",
        "data_name": cfg.data.source if cfg.data.source != "folder" else ", ".join(Path(f).name for f in cfg.data.folders),
    })
    params = sorted(to_flat_dict(cfg).items())
    render(TEMPLATES, "index.html.j2", REPORT, page="index.html", metrics=metrics_, manifest=manifest,
           samples=samples, charts=charts, warnings=warnings, meta=meta, params=params,
           reference=reference.SEED004_TABLE7, seed002=reference.SEED002_SSIM_EXAMPLES)
    tracking.log_artifact(REPORT, "report")
    if BENCH_METRICS.is_file():
        result = json.loads(BENCH_METRICS.read_text())
        up = result.get("upscaler", {})
        labels = {up.get("name", "model"): f"{up.get('name')} {up.get('kwargs', {})} (this run, on L; ab bicubic)",
                  "bicubic": "bicubic (MATLAB-compatible)"}
        render(TEMPLATES, "benchmark.html.j2", BENCH_REPORT, page="benchmark.html", result=result, meta=meta,
               params=[], method_labels=labels, per_image_csv=str(BENCH_CSV),
               **benchmark_context(result, BENCH_SAMPLES))
        tracking.log_artifact(BENCH_REPORT, "report")
    return {}


STAGES: dict[str, Callable[[Config], dict]] = {
    "download": download, "prepare": prepare, "pretrain": pretrain,
    "train": train, "evaluate": evaluate, "benchmark": benchmark, "report": report,
}


def run_stage(name: str, params: str | Path = "params.yaml") -> dict:
    """Run stage ``name`` with MLflow tracking; writes ``metrics/<name>.json`` (with ``wall_s``).

    Raises:
        ValueError: for an unknown stage; whatever the stage raises otherwise.
    """
    from huescale import tracking

    import contextlib

    from huescale.distributed import is_main

    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = load_config(params)
    t0 = time.perf_counter()
    main_process = is_main()  # under torchrun only rank 0 tracks and writes
    with tracking.stage_run(name, cfg, params) if main_process else contextlib.nullcontext():
        out = STAGES[name](cfg)
        out["wall_s"] = round(time.perf_counter() - t0, 2)
        tracking.log_metrics({k: v for k, v in out.items() if not isinstance(v, bool)})
    if not main_process:
        return out
    if name != "report":
        write_json(out, METRICS / f"{name}.json")
    log.info("stage %s done in %.1f s: %s", name, out["wall_s"], out)
    return out


def main(name: str) -> None:
    """Entry point of ``stages/<name>.py``: ``--params`` is the only argument; errors exit 1 with one line."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description=f"huescale pipeline stage: {name}")
    ap.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    args = ap.parse_args()
    try:
        run_stage(name, args.params)
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into an exit code
        if os.environ.get("HUESCALE_DEBUG"):
            raise
        print(f"huescale {name}: error: {exc}", file=sys.stderr)
        sys.exit(1)


__all__ = ["run_stage", "main", "STAGES"]
