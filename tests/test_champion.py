"""The champion decision (issue 13, item 10): one rule for the Prefect flow and `huescale ablate`, tested with a
real MLflow registry (SQLite) and real checkpoints whose validation L1 is measured on a real pair store.

Rule: a candidate becomes ``huescale-colorizer@champion`` only if there is no champion, or it scores a strictly
lower L1 than the champion on the same validation split. Only "not found" means "no champion": a registry that
cannot be read is an error, never a reason to promote.
"""

from __future__ import annotations

import socket
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from huescale import models, tracking
from huescale.data.dataset import PairDataset
from huescale.data.store import PairStore
from huescale.pipeline import champion
from huescale.training import checkpoint
from huescale.training.scoring import mean_l1
from huescale.training.tasks import COLORIZATION

KWARGS = {"depth": 3, "base_channels": 4}


@pytest.fixture(scope="module")
def val_set(shared_data, tmp_path_factory) -> PairDataset:
    """The validation split (tier 64) of a pair store of 20 real photographs."""
    from huescale.config import DataConfig
    from huescale.data.source_base import FolderSource
    from huescale.data.sources import list_images
    from huescale.data.store_build import build_pair_store

    out = tmp_path_factory.mktemp("champ") / "pairs"
    refs = list_images(FolderSource([shared_data / "coco128" / "train2017"]))
    build_pair_store(refs, DataConfig(source="folder", folders=["x"], n_images=20, workers=1,
                                      splits={"train": 0.6, "val": 0.2, "test": 0.2}), out, progress=False)
    val = PairDataset(PairStore(out), "val", "64")
    assert len(val) >= 2
    return val


@pytest.fixture(scope="module")
def two_checkpoints(val_set, tmp_path_factory) -> tuple[tuple[Path, float], tuple[Path, float]]:
    """``(better, worse)``: two real colorizer checkpoints with their measured validation L1 (better < worse).

    One predicts ab = 0 (its head's weights are zero: the gray image), the other is a seeded random U-Net.
    """
    d = tmp_path_factory.mktemp("ckpts")
    torch.manual_seed(0)
    noisy = models.build("unet", **KWARGS)
    gray = models.build("unet", **KWARGS)
    with torch.no_grad():
        for p in gray.head.parameters():
            p.zero_()
    out = []
    for name, net in (("gray.pt", gray), ("noisy.pt", noisy)):
        checkpoint.save_model(net, "unet", KWARGS, d / name)
        out.append((d / name, mean_l1(checkpoint.load_model(d / name)[0], COLORIZATION, val_set)))
    better, worse = sorted(out, key=lambda c: c[1])
    assert better[1] < worse[1] - 1e-4, out  # distinct, known validation L1
    return better, worse


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A fresh MLflow tracking/registry database; yields a function that makes a run id."""
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = mlflow.create_experiment("champ", artifact_location=(tmp_path / "artifacts").as_uri())

    def new_run() -> str:
        with mlflow.start_run(experiment_id=exp) as run:
            return run.info.run_id

    yield new_run
    mlflow.set_tracking_uri(None)


def _alias_version() -> str:
    return MlflowClient().get_model_version_by_alias("huescale-colorizer", "champion").version


def test_champion_rule_none_better_worse_equal(registry, val_set, two_checkpoints):
    """No champion -> promote; better -> promote; worse -> keep; equal -> keep (scores on the same split)."""
    from huescale.pipeline.champion import decide as decide_champion

    (better, better_l1), (worse, worse_l1) = two_checkpoints
    first = decide_champion(worse, registry(), val_set)
    assert first["promoted"] and first["champion_val_l1"] is None
    assert first["new_val_l1"] == pytest.approx(worse_l1, abs=1e-7) and _alias_version() == first["version"]

    up = decide_champion(better, registry(), val_set)
    assert up["promoted"] and up["version"] != first["version"] and _alias_version() == up["version"]
    assert up["champion_val_l1"] == pytest.approx(worse_l1, abs=1e-7)  # the champion re-scored on this split
    assert up["new_val_l1"] == pytest.approx(better_l1, abs=1e-7)

    down = decide_champion(worse, registry(), val_set)
    assert not down["promoted"] and down["version"] is None and _alias_version() == up["version"]
    assert down["champion_val_l1"] == pytest.approx(better_l1, abs=1e-7) and down["new_val_l1"] > better_l1

    same = decide_champion(better, registry(), val_set)
    assert not same["promoted"] and same["champion_val_l1"] == same["new_val_l1"]
    assert _alias_version() == up["version"]
    assert len(MlflowClient().search_model_versions("name='huescale-colorizer'")) == 2  # nothing else registered


def test_no_registered_model_or_no_alias_is_no_champion(registry):
    assert champion.current() is None  # no registered model at all
    MlflowClient().create_registered_model("huescale-colorizer")
    assert champion.current() is None  # the model exists, its alias does not


def test_unreadable_registry_database_is_an_error_not_no_champion(tmp_path):
    bad = tmp_path / "mlflow.db"
    bad.write_bytes(b"this is not an SQLite database " * 64)
    mlflow.set_tracking_uri(f"sqlite:///{bad}")
    try:
        with pytest.raises(champion.RegistryError, match="mlflow.db") as exc:
            champion.current()
        assert "cannot read the MLflow model registry" in str(exc.value)
    finally:
        mlflow.set_tracking_uri(None)


def test_unreachable_tracking_server_is_an_error_not_no_champion(monkeypatch, val_set, two_checkpoints):
    """An MLflow error other than "not found" (here: nothing listens at the server's port) must not promote."""
    from huescale.pipeline.champion import decide as decide_champion

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    mlflow.set_tracking_uri(f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(champion.RegistryError, match=f"127.0.0.1:{port}"):
            champion.current()
        with pytest.raises(champion.RegistryError):
            decide_champion(two_checkpoints[0][0], "no-run", val_set)
    finally:
        mlflow.set_tracking_uri(None)
