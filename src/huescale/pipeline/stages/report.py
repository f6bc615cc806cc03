"""Stage ``report``: render ``reports/index.html`` (the run) and ``reports/benchmark.html`` (x4 SR) with Jinja2."""

from __future__ import annotations

import json

from huescale import tracking
from huescale.config import Config
from huescale.evaluation import report
from huescale.pipeline.stages import (
    BENCH_CSV,
    BENCH_METRICS,
    BENCH_REPORT,
    BENCH_SAMPLES,
    EVAL_METRICS,
    HOLDOUT_SAMPLES,
    METRICS,
    PAIRS,
    REPORT,
    SAMPLES,
    STAGES,
    TEMPLATES,
)


def run(cfg: Config) -> dict:
    """Render both reports from the evaluate and benchmark outputs and attach them to the MLflow run.

    Raises:
        FileNotFoundError: ``metrics.json`` or the samples are missing (names the stage to run).
    """
    if not EVAL_METRICS.is_file():
        raise FileNotFoundError(f"{EVAL_METRICS}: not found; run the evaluate stage first (dvc repro evaluate)")
    metrics = json.loads(EVAL_METRICS.read_text())
    manifest = json.loads((PAIRS / "manifest.json").read_text())
    meta = report.run_metadata(metrics.get("fps", {}).get("device", "?"), report.stage_wall_times(METRICS, STAGES))
    report.run_report(cfg, metrics, manifest, SAMPLES, METRICS, meta, TEMPLATES, REPORT, HOLDOUT_SAMPLES)
    tracking.log_artifact(REPORT, "report")
    if BENCH_METRICS.is_file():
        result = json.loads(BENCH_METRICS.read_text())
        up = result.get("upscaler", {})
        labels = {up.get("name", "model"): f"{up.get('name')} {up.get('kwargs', {})} (this run, on L; ab bicubic)",
                  "bicubic": "bicubic (MATLAB-compatible)"}
        report.benchmark_report(result, BENCH_SAMPLES, labels, meta, BENCH_CSV, TEMPLATES, BENCH_REPORT)
        tracking.log_artifact(BENCH_REPORT, "report")
    return {}
