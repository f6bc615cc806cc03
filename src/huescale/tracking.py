"""MLflow helpers: the one place in huescale that knows MLflow (DESIGN.md §8).

One parent run per pipeline run, one nested run per stage. Stages are
separate processes (DVC runs them one by one), so they find their parent by a
tag: ``HUESCALE_PARENT_RUN_ID`` when set (the Prefect flow sets it: one flow
run = one parent), else the pipeline key, a hash of ``params.yaml`` and the git
commit. A ``dvc repro`` after a change of params or code therefore opens a new
parent, and a re-run after a failure continues the same one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

from huescale.config import Config, to_flat_dict

PIPELINE_TAG = "huescale.pipeline_key"
KIND_TAG = "huescale.kind"


def _quiet_env() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def git_commit(cwd: str | Path = ".") -> str:
    """The current git commit, or ``"nogit"`` outside a repository."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "nogit"
    except (OSError, subprocess.SubprocessError):
        return "nogit"


def pipeline_key(params_path: str | Path = "params.yaml") -> str:
    """Hash of the params file bytes and the git commit: same key = same pipeline run."""
    h = hashlib.sha256(Path(params_path).read_bytes())
    h.update(git_commit(Path(params_path).resolve().parent).encode())
    return h.hexdigest()[:16]


def setup(cfg: Config) -> str:
    """Point MLflow at ``tracking.uri`` and select ``tracking.experiment``; returns the experiment id."""
    _quiet_env()
    import mlflow

    mlflow.set_tracking_uri(cfg.tracking.uri)
    exp = mlflow.set_experiment(cfg.tracking.experiment)
    return exp.experiment_id


def _find_or_create_parent(cfg: Config, key: str, experiment_id: str) -> str:
    import mlflow

    env_id = os.environ.get("HUESCALE_PARENT_RUN_ID")
    if env_id:
        return env_id
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`{PIPELINE_TAG}` = '{key}' and tags.`{KIND_TAG}` = 'pipeline'",
        max_results=1, order_by=["attributes.start_time DESC"], output_format="list",
    )
    if runs:
        return runs[0].info.run_id
    with mlflow.start_run(run_name=f"pipeline-{key[:8]}", experiment_id=experiment_id,
                          tags={PIPELINE_TAG: key, KIND_TAG: "pipeline", "git_commit": git_commit()}) as run:
        mlflow.log_params(_params_for_mlflow(cfg))
        return run.info.run_id


def _params_for_mlflow(cfg: Config) -> dict[str, str]:
    return {k: str(v)[:6000] for k, v in to_flat_dict(cfg).items()}


@contextlib.contextmanager
def stage_run(stage: str, cfg: Config, params_path: str | Path = "params.yaml") -> Iterator[Any]:
    """Open ``stage`` as a nested MLflow run under the pipeline's parent run.

    Yields the active child ``mlflow.ActiveRun``; params (flattened
    ``params.yaml``) are logged on it. A failing stage ends its run as FAILED.
    """
    import mlflow

    exp_id = setup(cfg)
    parent_id = _find_or_create_parent(cfg, pipeline_key(params_path), exp_id)
    with mlflow.start_run(run_id=parent_id):
        with mlflow.start_run(run_name=stage, nested=True, tags={KIND_TAG: "stage", "stage": stage}) as child:
            mlflow.log_params(_params_for_mlflow(cfg))
            yield child


def log_metrics(metrics: dict[str, float], step: int | None = None, prefix: str = "") -> None:
    """Log finite numeric metrics to the active run (others are skipped)."""
    import math

    import mlflow

    clean = {f"{prefix}{k}": float(v) for k, v in metrics.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    if clean:
        mlflow.log_metrics(clean, step=step)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    """Attach a file or folder to the active run."""
    import mlflow

    p = Path(path)
    if p.is_dir():
        mlflow.log_artifacts(str(p), artifact_path)
    elif p.is_file():
        mlflow.log_artifact(str(p), artifact_path)


def set_tags(tags: dict[str, Any]) -> None:
    """Tag the active run."""
    import mlflow

    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def active_run_info() -> dict[str, str]:
    """Run id, parent run id, experiment id and tracking URI of the active run (for reports)."""
    import mlflow

    run = mlflow.active_run()
    if run is None:
        return {}
    return {"run_id": run.info.run_id, "parent_run_id": run.data.tags.get("mlflow.parentRunId", ""),
            "experiment_id": run.info.experiment_id, "tracking_uri": mlflow.get_tracking_uri()}
