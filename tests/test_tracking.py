"""huescale.tracking: the experiment is marked as model training; MLFLOW_TRACKING_URI wins over params."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from huescale import tracking
from huescale.config import Config


def test_setup_marks_the_experiment_as_model_training_and_honours_mlflow_tracking_uri(tmp_path, monkeypatch):
    cfg = Config()
    cfg.tracking.uri = "sqlite:///params.db"  # relative to the project root: not used below
    server_db = f"sqlite:///{tmp_path / 'server.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server_db)
    assert tracking.tracking_uri(cfg, tmp_path) == server_db
    exp_id = tracking.setup(cfg, tmp_path)
    exp = MlflowClient(tracking_uri=server_db).get_experiment(exp_id)
    assert exp.name == "huescale" and exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert not (tmp_path / "params.db").exists()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.tracking_uri(cfg, tmp_path) == f"sqlite:///{(tmp_path / 'params.db').resolve()}"


def test_ui_links_open_the_model_training_view():
    assert tracking.ui_url("http://h:5000/", "3") == "http://h:5000/#/experiments/3?workflowType=machine_learning"
    run = tracking.ui_url("http://h:5000", "3", "abc")
    assert run == "http://h:5000/#/experiments/3/runs/abc?workflowType=machine_learning"
