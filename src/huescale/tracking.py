"""MLflow helpers: the one place in huescale that knows MLflow (docs/architecture.md).

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
import math
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from huescale.config import Config
from huescale.config_io import to_flat_dict
from huescale.redact import redact

PIPELINE_TAG = "huescale.pipeline_key"
KIND_TAG = "huescale.kind"
# The experiment's kind for MLflow 3's UI: model training, not GenAI. (The 3.17 UI decides by its
# GenAI / Model training switch instead, which ui_url sets; earlier 3.x UIs read this tag.)
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


def quiet_env() -> None:
    """No MLflow telemetry and no artifact progress bars (set before MLflow is imported)."""
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


def resolve_uri(uri: str, root: str | Path = ".") -> str:
    """A relative ``sqlite:///file.db`` made absolute against ``root`` (other URIs unchanged)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((Path(root) / uri[len(prefix):]).resolve())
    return uri


def tracking_uri(cfg: Config, root: str | Path = ".") -> str:
    """The tracking server or database: ``MLFLOW_TRACKING_URI`` when set (e.g. the Prefect flow's
    ``--tracking-uri``, an ``http://`` MLflow server shared by remote workers), else ``tracking.uri``
    of the params (a relative ``sqlite:///`` path resolved against ``root``)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or resolve_uri(cfg.tracking.uri, root)


def ui_url(server: str, experiment_id: str, run_id: str | None = None) -> str:
    """The MLflow UI page of an experiment's runs table (or of one run) on ``server`` (``http://host:port``).

    The link selects the UI's "Model training" view (``workflowType=machine_learning``): MLflow 3.17
    otherwise opens every experiment on its GenAI overview of traces, empty for huescale.
    """
    page = f"experiments/{experiment_id}" + (f"/runs/{run_id}" if run_id else "")
    return f"{server.rstrip('/')}/#/{page}?workflowType=machine_learning"


def setup(cfg: Config, root: str | Path = ".") -> str:
    """Point MLflow at :func:`tracking_uri` and select the experiment (created if new, and marked as model
    training so that the MLflow UI opens it on its runs, not on the GenAI traces page); returns its id."""
    quiet_env()
    import mlflow  # lazy: ~4 s, and only after quiet_env()

    mlflow.set_tracking_uri(tracking_uri(cfg, root))
    exp = mlflow.set_experiment(cfg.tracking.experiment)
    if exp.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        mlflow.MlflowClient().set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return exp.experiment_id


def _find_or_create_parent(cfg: Config, params_path: str | Path, experiment_id: str) -> str:
    import mlflow  # lazy: ~4 s, and only after quiet_env()

    env_id = os.environ.get("HUESCALE_PARENT_RUN_ID")
    if env_id:
        return env_id
    key = pipeline_key(params_path)
    runs = mlflow.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`{PIPELINE_TAG}` = '{key}' and tags.`{KIND_TAG}` = 'pipeline'",
        max_results=1, order_by=["attributes.start_time DESC"], output_format="list",
    )
    return runs[0].info.run_id if runs else start_parent_run(cfg, ".", params_path=params_path)


def start_parent_run(cfg: Config, root: str | Path, tags: dict[str, str] | None = None,
                     params_path: str | Path | None = None) -> str:
    """Create a new pipeline parent run (e.g. one per Prefect flow run) and return its id.

    Args:
        cfg: the params (logged on the run, masked).
        root: the project root (a relative ``sqlite:///`` tracking URI is resolved against it).
        tags: extra tags.
        params_path: the params file the run was started with (``--params``), hashed into the pipeline key;
            default ``root/params.yaml``.

    Raises:
        FileNotFoundError: the params file does not exist.
    """
    import mlflow  # lazy: ~4 s, and only after quiet_env()

    exp_id = setup(cfg, root)
    key = pipeline_key(params_path if params_path is not None else Path(root) / "params.yaml")  # as the stages do
    tags = {PIPELINE_TAG: key, KIND_TAG: "pipeline", "git_commit": git_commit(root), **(tags or {})}
    with mlflow.start_run(run_name=f"pipeline-{key[:8]}", experiment_id=exp_id, tags=tags) as run:
        mlflow.log_params(_params_for_mlflow(cfg))
        return run.info.run_id


def _params_for_mlflow(cfg: Config) -> dict[str, str]:
    """Flattened params as MLflow param strings, with credentials and URL signatures masked
    (``tracking.uri`` may hold a database password, ``data.*.url`` a signed URL)."""
    return {k: redact(v)[:6000] for k, v in to_flat_dict(cfg).items()}


@contextlib.contextmanager
def stage_run(stage: str, cfg: Config, params_path: str | Path = "params.yaml") -> Iterator[Any]:
    """Open ``stage`` as a nested MLflow run under the pipeline's parent run.

    Yields the active child ``mlflow.ActiveRun``; params (flattened
    ``params.yaml``) are logged on it. A failing stage ends its run as FAILED.
    """
    import mlflow  # lazy: ~4 s, and only after quiet_env()

    exp_id = setup(cfg)
    parent_id = _find_or_create_parent(cfg, params_path, exp_id)
    with mlflow.start_run(run_id=parent_id):
        with mlflow.start_run(run_name=stage, nested=True, tags={KIND_TAG: "stage", "stage": stage}) as child:
            mlflow.log_params(_params_for_mlflow(cfg))
            yield child


@contextlib.contextmanager
def grid_run(grid_name: str, grid_path: str | Path, run_id: str | None = None) -> Iterator[str]:
    """The parent run of an ablation grid (a new one, or ``run_id`` resumed); yields its id.

    Tags: ``huescale.kind = ablation``, the grid file, the git commit; the grid file is attached with its secrets
    masked (:func:`huescale.redact.redact`: its ``set`` may hold URLs with credentials or signatures).
    """
    import mlflow  # lazy: ~4 s, and only after quiet_env()

    if run_id:
        with mlflow.start_run(run_id=run_id) as run:
            yield run.info.run_id
        return
    with mlflow.start_run(run_name=f"ablation-{grid_name}",
                          tags={KIND_TAG: "ablation", "grid": redact(grid_path), "git_commit": git_commit()}) as run:
        mlflow.log_text(redact(Path(grid_path).read_text()), Path(grid_path).name)
        yield run.info.run_id


@contextlib.contextmanager
def row_run(name: str, kind: str, adversarial: bool, cfg: Config) -> Iterator[str]:
    """A nested run of the active run (the grid's parent) for one ablation row; yields its id.

    Logs the row's flattened params and ``row.kind`` / ``row.adversarial``; tags ``row`` and ``row_kind``.
    """
    import mlflow  # lazy: ~4 s, and only after quiet_env()

    with mlflow.start_run(run_name=name, nested=True,
                          tags={KIND_TAG: "ablation_row", "row": name, "row_kind": kind}) as run:
        mlflow.log_params(_params_for_mlflow(cfg))
        mlflow.log_params({"row.kind": kind, "row.adversarial": adversarial})
        yield run.info.run_id


def log_metrics(metrics: dict[str, float], step: int | None = None, prefix: str = "") -> None:
    """Log finite numeric metrics to the active run (others are skipped)."""
    import mlflow  # lazy: ~4 s, and only after quiet_env()

    clean = {f"{prefix}{k}": float(v) for k, v in metrics.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
    if clean and mlflow.active_run() is not None:  # no run (e.g. a torchrun rank > 0): nothing to log
        mlflow.log_metrics(clean, step=step)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> None:
    """Attach a file or folder to the active run."""
    import mlflow  # lazy: ~4 s, and only after quiet_env()

    p = Path(path)
    if mlflow.active_run() is None:
        return
    if p.is_dir():
        mlflow.log_artifacts(str(p), artifact_path)
    elif p.is_file():
        mlflow.log_artifact(str(p), artifact_path)


def set_tags(tags: dict[str, Any]) -> None:
    """Tag the active run."""
    import mlflow  # lazy: ~4 s, and only after quiet_env()

    if mlflow.active_run() is not None:
        mlflow.set_tags({k: str(v) for k, v in tags.items()})


def active_run_info() -> dict[str, str]:
    """Run id, parent run id, experiment id and tracking URI (password masked) of the active run (for reports)."""
    import mlflow  # lazy: ~4 s, and only after quiet_env()

    run = mlflow.active_run()
    if run is None:
        return {}
    return {"run_id": run.info.run_id, "parent_run_id": run.data.tags.get("mlflow.parentRunId", ""),
            "experiment_id": run.info.experiment_id, "tracking_uri": redact(mlflow.get_tracking_uri())}
