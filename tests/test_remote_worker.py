"""A GPU worker that is another machine, on one machine; and the MLflow and Prefect UIs as people open them.

A bare git repository is the project's origin, a directory its DVC remote; a Prefect server and an
MLflow server listen on 127.0.0.1. The deployment is created from the git repository (URL + branch) on
a ``gpu`` process work pool with a cron schedule; ``prefect worker start --pool gpu`` runs in a second,
fresh clone elsewhere and picks up the run that ``prefect deployment run`` triggers. The flow clones
the branch, pulls from the (empty) DVC remote, runs every stage at tiny sizes, pushes the outputs to
the remote, commits dvc.lock and the metrics to the branch and registers the champion in the MLflow
server. The first checkout then gets everything with ``git pull`` + ``dvc pull`` and reproduces the
report without re-running anything else. Headless Chromium then opens both servers' UIs (screenshots
in ``HUESCALE_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from conftest import copy_project, project_env, run_checked

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
STAGES_RUN = ("download", "prepare", "pretrain", "train", "evaluate", "benchmark", "report")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list, cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except OSError:
            assert time.time() < deadline and proc.poll() is None, f"{url} not up:\n{log.read_text()[-3000:]}"
            time.sleep(1)


def _tiny_params(work: Path, shared_data: Path) -> None:
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["data"].update(source="folder", folders=[str(shared_data / "imagenet_sample")], n_images=100)
    # what is tested is the git / DVC remote / Prefect worker path, not a model: the small models of
    # conftest.tiny_project (the default pretrained-encoder colorizer would add its feature and fine-tuning phases)
    params["model"].update(colorizer={"name": "unet", "kwargs": {"depth": 3, "base_channels": 8}},
                           upscaler={"name": "espcn", "kwargs": {"scale": 4, "features": 8}},
                           discriminator={"name": "patchgan", "kwargs": {"base_channels": 8, "n_layers": 3}})
    for role in ("colorizer", "upscaler"):
        params["pretrain"][role].update(epochs=1, max_batches=2, losses={"l1": 1.0})
    params["train"].update(epochs=1, max_batches=2, losses={"l1": 100.0, "gan": 1.0})
    params["evaluate"].update(fid=False, grid_rows=4)
    bench = shared_data / "benchmarks"
    params["benchmark"] = {"sets": {"Set5": str(bench / "Set5/GTmod12")},
                           "lr_check": {"Set5": str(bench / "Set5/LRbicx4")}, "samples": 1}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, shared_data):
    """Origin, DVC remote, Prefect and MLflow servers, a deployment from git, a worker in another clone,
    and one triggered run that completed. Yields a dict of paths, URLs, environment and the run's output."""
    tmp = tmp_path_factory.mktemp("remote")
    logs = tmp / "logs"
    logs.mkdir()
    prefect_port, mlflow_port = _free_port(), _free_port()
    env = project_env(PREFECT_HOME=str(tmp / "prefect-home"), PREFECT_API_URL=f"http://127.0.0.1:{prefect_port}/api",
                      PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1", MLFLOW_DISABLE_TELEMETRY="true",
                      PREFECT_WORKER_QUERY_SECONDS="2", PYTHONUNBUFFERED="1")
    env.pop("MLFLOW_TRACKING_URI", None)
    # the project's origin (a bare repository) and its DVC remote (a directory): what a team shares
    origin, storage = tmp / "origin.git", tmp / "dvc-storage"
    run_checked(["git", "init", "-q", "--bare", "-b", "main", origin], tmp, env)
    home = copy_project(tmp / "laptop")  # the first checkout: where people deploy from and look at results
    _tiny_params(home, shared_data)
    run_checked(["git", "init", "-q", "-b", "main"], home, env)
    run_checked([BIN / "dvc", "remote", "add", "-d", "storage", storage], home, env)
    run_checked(["git", "add", "-A"], home, env)
    run_checked(["git", "commit", "-qm", "huescale, tiny params"], home, env)
    run_checked(["git", "remote", "add", "origin", origin], home, env)
    run_checked(["git", "push", "-q", "-u", "origin", "main"], home, env)

    procs: list[subprocess.Popen] = []
    try:
        prefect = _start([BIN / "prefect", "server", "start", "--host", "127.0.0.1", "--port", prefect_port], tmp, env,
                         logs / "prefect-server.log")
        procs.append(prefect)
        from mlflow.tracking import MlflowClient

        # create the server's tables first: `mlflow server` on a new SQLite file sometimes fails its own
        # schema migration under load ("table _alembic_tmp_experiments already exists")
        MlflowClient(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}").search_experiments()
        mlflow = _start([BIN / "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                         "--artifacts-destination", tmp / "mlflow-artifacts", "--host", "127.0.0.1", "--port",
                         mlflow_port, "--workers", "1"], tmp, env, logs / "mlflow-server.log")
        procs.append(mlflow)
        _wait_http(f"http://127.0.0.1:{prefect_port}/api/health", prefect, logs / "prefect-server.log")
        _wait_http(f"http://127.0.0.1:{mlflow_port}/health", mlflow, logs / "mlflow-server.log")
        tracking = f"http://127.0.0.1:{mlflow_port}"
        run_checked([BIN / "prefect", "work-pool", "create", "gpu", "--type", "process"], tmp, env, timeout=120)
        run_checked([sys.executable, home / "flows" / "retrain.py", "deploy", "--pool", "gpu", "--name", "remote",
                     "--cron", "0 3 * * *", "--dvc-remote", "storage", "--tracking-uri", tracking, "--git-push"],
                    home, env, timeout=300)
        # the GPU machine: a fresh clone elsewhere, a worker of the pool started in it
        gpu = tmp / "gpu-machine"
        run_checked(["git", "clone", "-q", origin, gpu], tmp, env)
        worker_env = {**env, "GIT_AUTHOR_NAME": "gpu-worker", "GIT_COMMITTER_NAME": "gpu-worker"}
        worker = _start([BIN / "prefect", "worker", "start", "--pool", "gpu"], gpu, worker_env, logs / "worker.log")
        procs.append(worker)
        t0 = time.time()
        run = subprocess.run([BIN / "prefect", "deployment", "run", "huescale-retrain/remote", "--watch",
                              "--watch-timeout", "1500"], cwd=home, env=env, capture_output=True, text=True,
                             timeout=1600)
        yield {"tmp": tmp, "home": home, "gpu": gpu, "origin": origin, "storage": storage, "env": env,
               "run": run, "run_s": time.time() - t0, "logs": logs, "tracking": tracking,
               "prefect_ui": f"http://127.0.0.1:{prefect_port}", "worker_log": logs / "worker.log"}
    finally:
        for p in reversed(procs):  # the worker first, then the servers (ENVIRONMENT.md)
            _stop(p)


def test_a_worker_in_another_clone_runs_the_git_deployment_and_publishes_its_results(cluster):
    run, env = cluster["run"], cluster["env"]
    detail = run.stdout[-3000:] + run.stderr[-2000:] + cluster["worker_log"].read_text()[-6000:]
    assert run.returncode == 0 and "Completed" in run.stdout, detail
    res = run_checked([BIN / "prefect", "deployment", "inspect", "huescale-retrain/remote"], cluster["home"], env)
    assert "0 3 * * *" in res and "'work_pool_name': 'gpu'" in res  # the cron schedule and the pool
    assert "git_clone" in res and str(cluster["origin"]) in res and "'branch': 'main'" in res  # source: git
    log = cluster["worker_log"].read_text()
    for stage in STAGES_RUN:
        assert f"dvc-{stage}" in log, stage
    # the results went to the shared places: a commit on origin/main, files in the DVC remote
    head = run_checked(["git", "log", "-1", "--format=%an %s", "main"], cluster["origin"], env)
    assert head.startswith("gpu-worker huescale retrain: results of MLflow run"), head
    files = run_checked(["git", "show", "--stat", "--format=", "main"], cluster["origin"], env)
    assert "dvc.lock" in files and "metrics.json" in files, files
    assert sum(1 for p in cluster["storage"].rglob("*") if p.is_file()) > 10
    # the champion lives in the MLflow server
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=cluster["tracking"])
    mv = client.get_model_version_by_alias("huescale-colorizer", "champion")
    parent = client.get_run(mv.run_id)
    assert parent.data.tags["huescale.kind"] == "pipeline" and parent.data.tags["orchestrator"] == "prefect"


def test_the_first_checkout_pulls_the_results_and_reruns_only_the_report(cluster):
    home, env = cluster["home"], cluster["env"]
    assert not (home / "dvc.lock").exists() and not (home / "models").exists()
    run_checked(["git", "pull", "-q", "origin", "main"], home, env)
    run_checked([BIN / "dvc", "pull"], home, env)
    assert (home / "models" / "colorizer.pt").is_file() and (home / "data" / "pairs").is_dir()
    out = run_checked([BIN / "dvc", "repro", "report"], home, env)
    ran = {s for s in STAGES_RUN if f"Running stage '{s}'" in out}
    assert ran <= {"download", "report"}, out[-3000:]  # download is always_changed: it re-lists, same listing
    assert "report" in ran and (home / "reports" / "index.html").is_file()
    assert "Stage 'train' didn't change, skipping" in out or "'train' didn't change" in out, out[-3000:]
    metrics = json.loads((home / "metrics.json").read_text())
    assert metrics["sr_x4"]["model"]["psnr_y"] > 0


def _screenshot(page, name: str, tmp: Path) -> Path:
    path = tmp / name
    page.screenshot(path=str(path), full_page=False)
    keep = os.environ.get("HUESCALE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    return path


def _browser():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "Chromium not installed (apt-get install -y chromium; scripts/setup.sh does it)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def _close_assistant(page) -> None:
    """Close MLflow 3.17's assistant side panel when it is open (it hides half the page)."""
    close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    if close.count():
        close.first.click()


def test_mlflow_ui_opens_the_experiment_on_its_runs_with_stages_metrics_and_the_champion(cluster):
    """The link huescale gives (tracking.ui_url, also the Prefect run's artifact) opens the runs table of
    the experiment, with the pipeline run, its nested stage runs, a stage's metrics and the champion."""
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    from huescale.tracking import ui_url

    exe = _browser()
    client = MlflowClient(tracking_uri=cluster["tracking"])
    exp = client.get_experiment_by_name("huescale")
    assert exp.tags.get("mlflow.experimentKind") == "custom_model_development"
    train = client.search_runs([exp.experiment_id], "tags.stage = 'train'")[0]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(ui_url(cluster["tracking"], exp.experiment_id), wait_until="load")
            page.get_by_text("pipeline-", exact=False).first.wait_for(timeout=90_000)  # the runs table
            assert "/runs" in page.url and "overview" not in page.url, page.url
            _close_assistant(page)
            row = page.locator("[role=row]", has_text="pipeline-").first
            row.locator("[col-id*='Run Name'] button").first.click()  # unfold the nested stage runs
            page.get_by_text("evaluate", exact=True).first.wait_for(timeout=60_000)
            names = [c.strip().splitlines()[-1] for c in page.locator("[col-id*='Run Name']").all_inner_texts()
                     if c.strip()]  # a cell: the run's colour label, then its name
            assert set(STAGES_RUN) <= set(names), names
            _screenshot(page, "mlflow-runs.png", cluster["tmp"])
            page.goto(ui_url(cluster["tracking"], exp.experiment_id, train.info.run_id), wait_until="load")
            page.get_by_text("train/val_l1").first.wait_for(timeout=60_000)  # a stage's metrics
            _close_assistant(page)
            _screenshot(page, "mlflow-train-run.png", cluster["tmp"])
            page.goto(f"{cluster['tracking']}/#/models/huescale-colorizer?workflowType=machine_learning",
                      wait_until="load")
            page.get_by_text("@ champion").first.wait_for(timeout=60_000)
            assert "Version 1" in page.inner_text("body")
            _close_assistant(page)
            _screenshot(page, "mlflow-champion.png", cluster["tmp"])
        finally:
            browser.close()


def test_prefect_ui_shows_the_deployment_and_its_last_flow_run(cluster):
    from playwright.sync_api import sync_playwright

    exe = _browser()
    url = cluster["prefect_ui"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}/deployments", wait_until="load")
            page.get_by_text("remote", exact=True).first.wait_for(timeout=90_000)
            page.get_by_text("remote", exact=True).first.click()
            page.get_by_text("Completed").first.wait_for(timeout=60_000)
            body = page.inner_text("body")
            assert "huescale-retrain" in body and "gpu" in body, body[:3000]
            _screenshot(page, "prefect-deployment.png", cluster["tmp"])
            page.goto(f"{url}/runs", wait_until="load")
            page.get_by_text("Completed").first.wait_for(timeout=60_000)
            _screenshot(page, "prefect-runs.png", cluster["tmp"])
        finally:
            browser.close()
