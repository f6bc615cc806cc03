"""The real `train` stage in a project copy: killed under `dvc repro` and resumed, and under `torchrun` (DDP).

Issue 13 items 9 and 15: not a purpose-built script but ``stages/train.py`` as DVC and torchrun start it, on
tiny params (a 60-image pair store of real photos, U-Net and PatchGAN with 8 base channels), after
``dvc repro pretrain``. One uninterrupted ``dvc repro train`` is the reference of both tests.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import project_env, run_checked, tiny_project
from huescale.training import checkpoint

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

BIN = Path(sys.executable).parent
STEPS_PER_EPOCH = 11  # tiny_project: 47 training images at batch 4 (drop_last)
EPOCHS = 3


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, shared_data) -> tuple[Path, dict]:
    """A git + DVC project copy with tiny params (conftest.tiny_project), prepared and pre-trained."""
    work = tiny_project(tmp_path_factory.mktemp("stage") / "project", shared_data)
    env = project_env()
    run_checked([BIN / "dvc", "repro", "pretrain"], work, env)
    manifest = json.loads((work / "data/pairs/manifest.json").read_text())
    assert manifest["counts"]["train"]["64"] // 4 == STEPS_PER_EPOCH
    return work, env


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


@pytest.fixture(scope="module")
def reference(pretrained, tmp_path_factory) -> Path:
    """A copy of the pre-trained project where ``dvc repro train`` ran once, uninterrupted, in one process."""
    work, env = pretrained
    ref = _copy(work, tmp_path_factory.mktemp("reference") / "project")
    log = run_checked([BIN / "dvc", "repro", "train"], ref, env)
    assert "Running stage 'train'" in log and "resumed" not in log
    return ref


def _descendants_then_kill(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc`` (which this test started) and every process it started (the stage under DVC)."""
    import psutil

    if proc.poll() is not None:  # it ended by itself
        return
    me = psutil.Process(proc.pid)
    family = me.children(recursive=True) + [me]
    for p in family:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=60)


def test_train_stage_killed_mid_epoch_under_dvc_repro_resumes_to_identical_weights(pretrained, reference, tmp_path):
    """SIGKILL `dvc repro train` (DVC and the stage process) after a mid-epoch checkpoint; the next `dvc repro`
    resumes from that step (its log says so) and ends with the weights of the uninterrupted run, bit for bit."""
    work, env = pretrained
    work = _copy(work, tmp_path / "project")
    state = work / ".huescale" / "state" / "train.pt"
    proc = subprocess.Popen([str(BIN / "dvc"), "repro", "train"], cwd=work, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    seen = None
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:
            if state.is_file():
                try:
                    st = checkpoint.load(state)
                except checkpoint.CheckpointError:  # being replaced: look again
                    continue
                if st["batch_in_epoch"] > 0:  # a mid-epoch checkpoint
                    seen = (st["epoch"], st["step"])
                    break
            time.sleep(0.01)
    finally:
        _descendants_then_kill(proc)
    assert seen is not None, "no mid-epoch checkpoint before the stage ended or the deadline"
    assert not (work / "metrics" / "train.json").exists(), "the stage finished before it could be killed"
    assert seen[1] < EPOCHS * STEPS_PER_EPOCH

    log = run_checked([BIN / "dvc", "repro", "train"], work, env)
    assert "Running stage 'train'" in log
    m = re.search(r"resumed from \S*train\.pt at epoch (\d+), step (\d+)", log)
    assert m, log[-3000:]
    assert int(m.group(2)) >= seen[1] > 0 and int(m.group(1)) == seen[0]
    assert "starting afresh" not in log

    for name in ("colorizer.pt", "discriminator.pt"):
        a, b = checkpoint.load(reference / "models" / name), checkpoint.load(work / "models" / name)
        assert a.keys() == b.keys()
        for k, v in a["state_dict"].items():
            assert torch.equal(v, b["state_dict"][k]), (name, k)
    assert checkpoint.load(work / "models/colorizer.pt")["val_l1"] == checkpoint.load(
        reference / "models/colorizer.pt")["val_l1"]
    assert (work / "metrics/train.csv").read_text() == (reference / "metrics/train.csv").read_text()
    done = json.loads((work / "metrics/train.json").read_text())
    assert done["train_steps"] == EPOCHS * STEPS_PER_EPOCH and done["train_epochs"] == EPOCHS
    assert not state.exists()  # a finished phase removes its resumable state


def test_train_stage_under_torchrun_two_gloo_ranks(pretrained, reference, tmp_path):
    """`torchrun --standalone --nproc_per_node=2 stages/train.py` (gloo, CPU): both ranks train, rank 0 alone
    writes the checkpoints and metrics, and the result is close to the single-process stage's."""
    work, env = pretrained
    work = _copy(work, tmp_path / "project")
    logs = tmp_path / "torchrun_logs"
    res = subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc_per_node=2", "--log-dir", str(logs),
                          "--tee", "3", "stages/train.py"], cwd=work, env={**env, "OMP_NUM_THREADS": "1"},
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    per_rank = {}
    for rank in (0, 1):
        files = list(logs.glob(f"**/attempt_0/{rank}/stderr.log"))
        assert len(files) == 1, list(logs.rglob("*"))
        per_rank[rank] = files[0].read_text()
    for rank, text in per_rank.items():  # every rank trained every epoch (the Trainer logs each one)
        assert [int(e) for e in re.findall(r"huescale\.training\.trainer INFO epoch (\d+):", text)] == list(
            range(1, EPOCHS + 1)), (rank, text[-2000:])
    assert "stage train done" in per_rank[0] and "stage train done" not in per_rank[1]
    for p in ("models/colorizer.pt", "models/discriminator.pt", "metrics/train.json", "metrics/train.csv"):
        assert (work / p).is_file(), p
    assert not list(work.glob("metrics/*.tmp")) and not list((work / "models").glob(".*tmp*"))
    ddp = json.loads((work / "metrics/train.json").read_text())
    one = json.loads((reference / "metrics/train.json").read_text())
    assert ddp["train_steps"] == one["train_steps"] == EPOCHS * STEPS_PER_EPOCH
    # U-Net and PatchGAN have BatchNorm, whose statistics each rank takes over its half of the batch: close, not equal
    assert ddp["train_best_val_l1"] == pytest.approx(one["train_best_val_l1"], rel=0.05)
    a, b = checkpoint.load(work / "models/colorizer.pt"), checkpoint.load(reference / "models/colorizer.pt")
    assert a["val_l1"] == pytest.approx(b["val_l1"], rel=0.05)
    assert not (work / ".huescale/state/train.pt").exists()
    # metrics/train.csv is rank 0's history: the values rank 0 logged to MLflow, its best = the checkpoint's
    import csv

    from mlflow.tracking import MlflowClient

    with open(work / "metrics/train.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    run = next(r for r in client.search_runs([client.get_experiment_by_name("huescale").experiment_id])
               if r.data.tags.get("stage") == "train")
    for key in ("val_l1", "loss_G_L1", "loss_D"):
        logged = [h.value for h in sorted(client.get_metric_history(run.info.run_id, f"train/{key}"),
                                          key=lambda h: h.step)]
        assert [float(r[key]) for r in rows] == pytest.approx(logged, rel=1e-5), key
    assert min(float(r["val_l1"]) for r in rows) == pytest.approx(a["val_l1"], rel=1e-5)
