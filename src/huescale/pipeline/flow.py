"""The DVC pipeline as a Prefect 3 flow of tasks, ending in the champion decision.

``flows/retrain.py`` is the thin entry point (run once, serve on a cron
schedule, or deploy to a ``gpu`` work pool); this module holds the flow.

Each pipeline stage runs as ``dvc repro --single-item <stage>`` in the
project folder, so DVC still decides what is up to date and records
``dvc.lock``; the task streams its output to the Prefect log and is retried
on failure (a resumed training run continues from its last checkpoint). One
flow run is one MLflow parent run (``HUESCALE_PARENT_RUN_ID``). At the end the
new colorizer becomes the MLflow ``champion`` only if its L1 on the current
validation split beats the champion's on the same split.

On a worker of another machine (a deployment whose source is the git repository,
``flows/retrain.py deploy``) the checkout is a fresh clone without data or models:
with ``dvc_remote`` the flow ``dvc pull``s what earlier runs pushed before the
stages (an empty remote on the first run is fine) and ``dvc push``es the outputs
after them; with ``git_push`` it commits ``dvc.lock`` and the metrics and pushes
them to the branch, so any clone gets the results with ``git pull && dvc pull``;
``tracking_uri`` (an ``http://`` MLflow server) keeps the runs and the champion
where every machine sees them.

The ``dvc`` and ``git`` commands run through :mod:`huescale.pipeline.commands`; the metrics artifact is
:func:`huescale.pipeline.summary.metrics_markdown`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact

from huescale import tracking
from huescale.config_io import load_config
from huescale.data.dataset import PairDataset
from huescale.data.store import PairStore
from huescale.pipeline import champion
from huescale.pipeline.commands import dvc_path, project_env, remote_args, run_logged
from huescale.pipeline.stages import COLORIZER, EVAL_METRICS, PAIRS, REPORT, STAGES
from huescale.pipeline.summary import metrics_markdown
from huescale.redact import redact


@task(retries=2, retry_delay_seconds=10)
def dvc_pull(project_dir: str, remote: str) -> None:
    """``dvc pull`` the pipeline's data and models from ``remote`` (a DVC remote name or URL) before the
    stages, so DVC re-runs only what changed. Files the remote does not have yet (an empty remote on
    the first run) are skipped: their stages run.

    Raises:
        RuntimeError: the remote cannot be read (Prefect retries the task).
    """
    logger = get_run_logger()
    run_logged([dvc_path(), "pull", "--allow-missing", *remote_args(project_dir, remote, logger)], project_dir,
               "dvc pull", logger)


@task(retries=2, retry_delay_seconds=10)
def dvc_push(project_dir: str, remote: str) -> None:
    """``dvc push`` every cached output of ``dvc.lock`` to ``remote`` (a DVC remote name or URL).

    Raises:
        RuntimeError: the push failed (Prefect retries the task).
    """
    logger = get_run_logger()
    run_logged([dvc_path(), "push", *remote_args(project_dir, remote, logger)], project_dir, "dvc push", logger)


@task
def git_publish(project_dir: str, message: str) -> str | None:
    """Commit what the run changed in the checkout (``dvc.lock``, the metrics, the ``.gitignore`` entries
    DVC writes; the outputs themselves go to the DVC remote) and push it to the checkout's branch on
    ``origin``. Without a git identity configured, commits as ``huescale-worker``.

    Returns:
        The new commit, or None when nothing changed.

    Raises:
        RuntimeError: git failed, e.g. the push was rejected twice (the message holds git's output).
    """
    logger = get_run_logger()
    git = ["git"]
    who = subprocess.run(["git", "config", "user.email"], cwd=project_dir, capture_output=True, text=True)
    if not who.stdout.strip():
        git += ["-c", "user.name=huescale-worker", "-c", "user.email=huescale-worker@localhost"]
    run_logged(git + ["add", "-A"], project_dir, "git add", logger)
    if subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=project_dir).returncode == 0:
        logger.info("git: nothing to commit")
        return None
    run_logged(git + ["commit", "-q", "-m", message], project_dir, "git commit", logger)
    branch = run_logged(["git", "rev-parse", "--abbrev-ref", "HEAD"], project_dir, "git rev-parse",
                        logger).splitlines()[-1]
    try:
        run_logged(["git", "push", "origin", f"HEAD:{branch}"], project_dir, "git push", logger)
    except RuntimeError:  # the branch moved meanwhile: replay the results on top of it once
        run_logged(git + ["pull", "--rebase", "origin", branch], project_dir, "git pull --rebase", logger)
        run_logged(["git", "push", "origin", f"HEAD:{branch}"], project_dir, "git push", logger)
    return run_logged(["git", "rev-parse", "HEAD"], project_dir, "git rev-parse", logger).splitlines()[-1]


@task(retries=2, retry_delay_seconds=10, task_run_name="dvc-{stage}")
def dvc_stage(stage: str, project_dir: str, parent_run_id: str, force: bool = False) -> None:
    """Run one DVC stage in ``project_dir``; its output goes to the Prefect log.

    Raises:
        RuntimeError: the stage exited non-zero (Prefect retries the task).
    """
    logger = get_run_logger()
    env = project_env(project_dir, HUESCALE_PARENT_RUN_ID=parent_run_id)
    cmd = [dvc_path(), "repro", "--single-item", stage] + (["--force"] if force else [])
    logger.info("running %s in %s", " ".join(cmd), project_dir)
    proc = subprocess.Popen(cmd, cwd=project_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    assert proc.stdout is not None
    tail: deque[str] = deque(maxlen=20)
    for line in proc.stdout:
        text = line.rstrip("\n").split("\r")[-1].strip()  # progress bars redraw with \r: keep the last state
        if text:
            logger.info(text)
            tail.append(text)
    if proc.wait() != 0:
        raise RuntimeError(f"stage {stage} failed (exit {proc.returncode}); last lines:\n" + "\n".join(tail))


@task
def promote_champion(project_dir: str, run_id: str, name: str = "huescale-colorizer") -> dict:
    """Make the project's new colorizer the MLflow ``champion`` if it beats the current one
    (:func:`huescale.pipeline.champion.decide`) on the current validation split (tier 64) of the project's pair
    store, so the comparison is fair when the data changed. The new version is registered from (and its checkpoint
    logged to) MLflow run ``run_id``.

    Returns:
        ``{"promoted": bool, "new_val_l1": float, "champion_val_l1": float | None, "version": str | None}``.

    Raises:
        huescale.pipeline.champion.RegistryError: the registry cannot be read.
    """
    root = Path(project_dir)
    result = champion.decide(root / COLORIZER, run_id, PairDataset(PairStore(root / PAIRS), "val", "64"), name)
    get_run_logger().info("champion decision: %s", result)
    return result


@contextlib.contextmanager
def _tracking_env(uri: str | None) -> Iterator[None]:
    """``MLFLOW_TRACKING_URI=uri`` for this flow and the stages it starts (restored afterwards)."""
    old = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        yield
    finally:
        if uri and old is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        elif uri and old is not None:
            os.environ["MLFLOW_TRACKING_URI"] = old


@flow(name="huescale-retrain", log_prints=True)
def retrain(project_dir: str = ".", stages: list[str] | None = None, force: bool = False,
            promote: bool = True, dvc_remote: str | None = None, tracking_uri: str | None = None,
            git_push: bool = False) -> dict:
    """Retrain huescale: run the DVC stages, publish metrics and report, decide the champion.

    Args:
        project_dir: the huescale checkout (with ``dvc.yaml`` and ``params.yaml``); a relative path is
            taken from the flow run's working directory (on a worker: the deployment's git clone).
        stages: stages to run, in pipeline order (default: all of ``huescale.pipeline.stages.STAGES``).
        force: re-run stages even when DVC finds them up to date.
        promote: run the champion decision after the stages.
        dvc_remote: a DVC remote (a name configured in the project, or a URL): ``dvc pull`` before the
            stages, ``dvc push`` after them. None: the checkout's own DVC cache only.
        tracking_uri: MLflow tracking URI of this run, its stages and the champion (e.g. an
            ``http://`` MLflow server); None: ``MLFLOW_TRACKING_URI``, else ``tracking.uri`` of the params.
        git_push: commit ``dvc.lock`` and the metrics and push them to the checkout's branch on ``origin``.

    Returns:
        ``{"parent_run_id", "tasks" (stage -> final task state name), "metrics", "report", "champion",
        "commit" (the pushed commit with ``git_push``, else None)}``.

    Raises:
        ValueError: unknown stage names.
        RuntimeError: a stage, ``dvc pull``/``dvc push`` or git failed (after the task's retries).
    """
    with _tracking_env(tracking_uri):
        return _retrain(Path(project_dir).resolve(), stages, force, promote, dvc_remote, git_push)


def _retrain(root: Path, stages: list[str] | None, force: bool, promote: bool, dvc_remote: str | None,
             git_push: bool) -> dict:
    stages = list(stages or STAGES)
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; stages: {', '.join(STAGES)}")
    cfg = load_config(root / "params.yaml")
    if dvc_remote:
        dvc_pull(str(root), dvc_remote)
    parent = tracking.start_parent_run(cfg, root, tags={"orchestrator": "prefect"})
    out: dict = {"parent_run_id": parent, "tasks": {}, "metrics": None, "report": None, "champion": None,
                 "commit": None}
    for stage in sorted(stages, key=STAGES.index):
        state = dvc_stage(stage, str(root), parent, force, return_state=True)
        out["tasks"][stage] = state.name
        if not state.is_completed():
            state.result()  # re-raises the task's error after its retries: the flow run fails
    if dvc_remote:
        dvc_push(str(root), dvc_remote)
    if git_push:
        out["commit"] = git_publish(str(root), f"huescale retrain: results of MLflow run {parent} "
                                               "(dvc.lock and metrics; data and models in the DVC remote)")
    if (root / EVAL_METRICS).is_file():
        out["metrics"] = json.loads((root / EVAL_METRICS).read_text())
        create_markdown_artifact(metrics_markdown(out["metrics"]), key="huescale-metrics",
                                 description="test-split metrics of this retraining run")
    if (root / REPORT).is_file():
        out["report"] = str(root / REPORT)
        create_link_artifact((root / REPORT).as_uri(), link_text="huescale report", key="huescale-report")
    uri = tracking.tracking_uri(cfg, root)
    link = (tracking.ui_url(uri, tracking.setup(cfg, root), parent) if uri.startswith(("http://", "https://"))
            else f"{uri}#runs/{parent}")
    create_link_artifact(redact(link), link_text=f"MLflow parent run {parent}", key="huescale-mlflow-run")
    if promote:
        out["champion"] = promote_champion(str(root), parent)
    return out
