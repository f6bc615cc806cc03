"""The pipeline stages: one module each, thin glue between params, the library, files and MLflow.

``STAGES`` is the one list of stage names, in pipeline order (``dvc.yaml`` declares
the same stages; a test checks they agree). Each ``huescale.pipeline.stages.<name>`` module
has ``run(cfg) -> dict`` (the stage's flat figures); ``stages/<name>.py`` (DVC) runs
it through :func:`huescale.pipeline.stages.runner.main`, which opens the stage's nested
MLflow run and writes ``metrics/<name>.json``. Every stage reads only its own
params section and its declared deps, and writes its declared outs.

The paths below are the stage outputs, relative to the project root (as in ``dvc.yaml``).
"""

from __future__ import annotations

from pathlib import Path

STAGES = ("download", "prepare", "features", "pretrain", "train", "evaluate", "benchmark", "ablate_row", "report")

LISTING = Path("data/raw.json")
HOLDOUT_LISTINGS = Path("data/holdout")  # <set>.json: the listing of each held-out set (data.holdout)
PAIRS = Path("data/pairs")
FEATURES = Path("data/features")  # the frozen encoder's features of data/pairs (huescale.data.features)
HOLDOUT_PAIRS = Path("data/holdout_pairs")  # <set>/: a pair store (split test) of each held-out set
MODELS = Path("models")
COLORIZER_PRE = MODELS / "colorizer_pretrained.pt"
COLORIZER_FROZEN = Path(".huescale/colorizer_frozen.pt")  # the frozen-encoder phase's best, fine-tuning's start
UPSCALER = MODELS / "upscaler.pt"
COLORIZER = MODELS / "colorizer.pt"
DISCRIMINATOR = MODELS / "discriminator.pt"
METRICS = Path("metrics")
STATE = Path(".huescale/state")
EVAL_METRICS = Path("metrics.json")
SAMPLES = Path("eval/samples")
HOLDOUT_SAMPLES = Path("eval/holdout")  # sample grids of the held-out sets (PNG + index.json)
PER_IMAGE = Path("eval/per_image.csv")
REPORT = Path("reports/index.html")
BENCH_SAMPLES = Path("eval/benchmark")
BENCH_METRICS = BENCH_SAMPLES / "result.json"  # the full result; metrics/benchmark.json has the flat figures
BENCH_CSV = Path("eval/benchmark_per_image.csv")
BENCH_REPORT = Path("reports/benchmark.html")
ROW_METRICS = METRICS / "ablation_row.json"
from huescale import TEMPLATES  # noqa: E402,F401  (package data: huescale/templates)
