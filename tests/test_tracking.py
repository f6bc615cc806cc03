"""huescale.tracking: the experiment is marked as model training; MLFLOW_TRACKING_URI wins over params."""

from __future__ import annotations

import pytest
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


def test_stage_with_params_file_other_than_params_yaml(shared_data, tmp_path, monkeypatch, capsys):
    """Issue 23 item 4: `huescale stage download --params other/x.yaml` failed with "No such file ...
    other/params.yaml" (the parent run hashed the default path). The given file is read, hashed into the
    pipeline key and logged; a ./params.yaml beside it is not used."""
    import yaml

    from huescale.cli import main

    monkeypatch.chdir(tmp_path)
    folder = shared_data / "benchmarks" / "Set5" / "GTmod12"
    raw = {"data": {"source": "folder", "folders": [str(folder)], "n_images": 7},
           "tracking": {"uri": "sqlite:///mlflow.db", "experiment": "other-params"}}
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.yaml").write_text(yaml.safe_dump(raw))
    decoy = {**raw, "data": {**raw["data"], "n_images": 99}}  # a different ./params.yaml: must not be read
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(decoy))
    with pytest.raises(SystemExit) as done:
        main(["stage", "download", "--params", "other/x.yaml"])
    assert done.value.code == 0, capsys.readouterr().err
    assert (tmp_path / "data" / "raw.json").is_file() and (tmp_path / "metrics" / "download.json").is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.get_experiment_by_name("other-params")
    runs = client.search_runs([exp.experiment_id])
    parent = next(r for r in runs if r.data.tags.get(tracking.KIND_TAG) == "pipeline")
    stage = next(r for r in runs if r.data.tags.get("stage") == "download")
    assert parent.data.tags[tracking.PIPELINE_TAG] == tracking.pipeline_key("other/x.yaml")
    assert stage.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert stage.data.params["data.n_images"] == "7" and parent.data.params["data.n_images"] == "7"
    assert not (tmp_path / "other" / "mlflow.db").exists()  # the project's database, not one beside the file
