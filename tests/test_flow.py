"""The Prefect flow doing real work (issue 13, item 12) in a fresh project copy with tiny params.

- a flow run that trains: download, prepare, pretrain and train run as DVC stages and produce the models;
- a retried training task that resumes: its first attempt is SIGKILLed after a mid-epoch checkpoint, Prefect
  retries the task, and the retry resumes at that step and ends with the uninterrupted run's weights;
- a broken params value fails its stage, the task (after its retries) and the flow run.

Prefect runs against a local ephemeral server (``prefect_test_harness``), as in tests/test_pipeline_e2e.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import tiny_project
from huescale.training import checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

EPOCHS = 3


@pytest.fixture(scope="module")
def harness():
    """A local Prefect server for this module; MLflow's global tracking URI is reset afterwards."""
    import mlflow
    from prefect.testing.utilities import prefect_test_harness

    old = dict(os.environ)
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]
    try:
        with prefect_test_harness(server_startup_timeout=120):
            yield
    finally:
        os.environ.clear()
        os.environ.update(old)
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_data) -> Path:
    """A fresh git + DVC project copy with tiny params (conftest.tiny_project); nothing has run in it."""
    work = tiny_project(tmp_path_factory.mktemp("flow") / "project", shared_data)
    return work


def _runs(work: Path, parent: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("huescale")
    return client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")


def test_flow_run_trains_a_fresh_project(harness, project):
    """Nothing is up to date: every stage of the flow does its work and the models appear; the new colorizer
    is the first champion."""
    from mlflow.tracking import MlflowClient

    from huescale.pipeline.flow import retrain

    stages = ["download", "prepare", "features", "pretrain", "train"]
    for p in ("data/pairs", "models"):
        assert not (project / p).exists()
    out = retrain(project_dir=str(project), stages=stages)
    assert out["tasks"] == {s: "Completed" for s in stages}
    for p in ("data/raw.json", "data/pairs/manifest.json", "models/colorizer_pretrained.pt", "models/upscaler.pt",
              "models/colorizer.pt", "models/discriminator.pt", "metrics/train.csv", "dvc.lock"):
        assert (project / p).is_file(), p
    runs = {r.data.tags["stage"]: r for r in _runs(project, out["parent_run_id"])}
    assert set(runs) == set(stages) and all(r.info.status == "FINISHED" for r in runs.values())
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    hist = client.get_metric_history(runs["train"].info.run_id, "train/val_l1")
    assert [h.step for h in hist] == list(range(1, EPOCHS + 1))
    assert runs["train"].data.metrics["train_steps"] == EPOCHS * 11
    assert out["champion"]["promoted"] is True and out["champion"]["champion_val_l1"] is None
    shutil.copy(project / "models/colorizer.pt", project.parent / "uninterrupted_colorizer.pt")


def _kill_stage_after_mid_epoch_checkpoint(state: Path, script: str, done: threading.Event, seen: list) -> None:
    """Watch this test's child processes: once ``state`` holds a mid-epoch checkpoint, SIGKILL the stage
    process (``python stages/<script>``) that DVC started for the flow's task."""
    import psutil

    me = psutil.Process()
    deadline = time.time() + 600
    while time.time() < deadline and not done.is_set():
        if state.is_file():
            try:
                st = checkpoint.load(state)
            except checkpoint.CheckpointError:
                continue
            if st["batch_in_epoch"] > 0:
                for p in me.children(recursive=True):
                    try:
                        if script in " ".join(p.cmdline()):
                            p.send_signal(signal.SIGKILL)
                            seen.append((st["epoch"], st["step"]))
                    except psutil.NoSuchProcess:
                        pass
                if seen:
                    return
        time.sleep(0.01)


def test_retried_training_task_resumes_from_its_checkpoint(harness, project):
    """The first attempt of the train task is killed after a mid-epoch checkpoint; Prefect's retry resumes at
    that step (MLflow tag of its stage run) and ends with the weights of the uninterrupted run."""
    from huescale.pipeline.flow import retrain

    ref = project.parent / "uninterrupted_colorizer.pt"
    assert ref.is_file(), "runs after test_flow_run_trains_a_fresh_project"
    state = project / ".huescale/state/train.pt"
    assert not state.exists()
    done, seen = threading.Event(), []
    watcher = threading.Thread(target=_kill_stage_after_mid_epoch_checkpoint,
                               args=(state, "stages/train.py", done, seen), daemon=True)
    watcher.start()
    try:
        out = retrain(project_dir=str(project), stages=["train"], force=True, promote=False)
    finally:
        done.set()
        watcher.join(timeout=30)
    assert seen, "the first attempt was never killed"
    assert out["tasks"] == {"train": "Completed"}
    runs = [r for r in _runs(project, out["parent_run_id"]) if r.data.tags.get("stage") == "train"]
    assert len(runs) == 2, [(r.info.status, r.data.tags.get("resume.train")) for r in runs]  # killed + retried
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 1
    tag = finished[0].data.tags["resume.train"]
    epoch, step = seen[0]
    assert tag.startswith("resumed at epoch ") and "train.pt" in tag, tag
    got_epoch, got_step = (int(v) for v in tag.split(" from ")[0].removeprefix("resumed at epoch ").split(", step "))
    assert got_epoch == epoch and got_step >= step > 0
    a, b = checkpoint.load(ref), checkpoint.load(project / "models/colorizer.pt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert not state.exists()


def test_broken_params_value_fails_the_stage_and_the_flow_run(harness, project, tmp_path):
    """A content loss whose VGG weights file is missing (params that load, a stage that cannot run): the train
    stage exits 1 on every attempt, the flow run fails and its error names the stage, the file and the key."""
    from huescale.pipeline.flow import retrain

    work = tmp_path / "project"
    shutil.copytree(project, work, symlinks=True)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train"]["losses"]["vgg16_conv7"] = 1.0
    params["train"]["vgg_weights"] = str(tmp_path / "missing-vgg16.pth")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    state = retrain(project_dir=str(work), stages=["train"], promote=False, return_state=True)
    assert state.is_failed()
    with pytest.raises(RuntimeError, match="stage train failed") as exc:
        state.result()
    assert "missing-vgg16.pth" in str(exc.value) and "train.vgg_weights" in str(exc.value)
    runs = [r for r in _runs(work, _parent_of_last_flow(work)) if r.data.tags.get("stage") == "train"]
    assert len(runs) == 3 and all(r.info.status == "FAILED" for r in runs)  # the first try and 2 retries


def test_unknown_loss_name_fails_the_flow_run_before_any_stage(harness, project, tmp_path):
    """An unknown loss name in train.losses fails at load (issue 23 item 5): the flow run fails naming the key and
    the known losses; no stage runs, no parent run is opened."""
    from huescale.pipeline.flow import retrain

    work = tmp_path / "project"
    shutil.copytree(project, work, symlinks=True)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train"]["losses"]["l1_typo"] = 1.0
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = _parent_of_last_flow(work)
    state = retrain(project_dir=str(work), stages=["train"], promote=False, return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match=r"train\.losses\.l1_typo: unknown loss; known losses: .*\bl1\b"):
        state.result()
    assert _parent_of_last_flow(work) == before


def _parent_of_last_flow(work: Path) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("huescale")
    runs = client.search_runs([exp.experiment_id], "tags.`huescale.kind` = 'pipeline'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id
