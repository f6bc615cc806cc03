"""`huescale ablate`: a tiny grid end to end on real photos, rows as nested MLflow runs, champion registered."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from conftest import browser_check, copy_project, default_params_text, project_env, run_checked
from huescale.errors import ConfigError

# whole `dvc repro` runs: minutes on a quiet machine, much longer on a busy one (pytest-timeout's default is 600 s)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

ROOT = Path(__file__).resolve().parents[1]

TINY = {  # every row: 1 epoch of 1 batch, small widths, CPU
    "runtime.device": "cpu", "runtime.amp": "off", "evaluate.batch_size": 8,  # fp32: values compared exactly
    "pretrain.colorizer": {"epochs": 1, "batch_size": 4, "lr": 0.001, "betas": [0.9, 0.999], "max_batches": 1},
    "pretrain.upscaler": {"epochs": 1, "batch_size": 4, "lr": 0.001, "betas": [0.9, 0.999], "max_batches": 1},
    "train.epochs": 1, "train.batch_size": 4, "train.max_batches": 1, "train.losses": {"l1": 100.0, "gan": 1.0},
    "model.colorizer": {"name": "unet", "kwargs": {"depth": 3, "base_channels": 4}},
    "model.discriminator": {"name": "patchgan", "kwargs": {"base_channels": 4, "n_layers": 3}},
    "model.upscaler": {"name": "espcn", "kwargs": {"scale": 4, "features": 8}},
    "model.joint": {"name": "joint", "kwargs": {"base_channels": 4, "n_blocks": 3, "n_up_blocks": 1}},
}


@pytest.fixture(scope="module")
def pairs(shared_data, tmp_path_factory) -> Path:
    from huescale.config import DataConfig
    from huescale.data.source_base import FolderSource
    from huescale.data.sources import list_images
    from huescale.data.store_build import build_pair_store

    out = tmp_path_factory.mktemp("grid") / "pairs"
    refs = list_images(FolderSource([shared_data / "coco128" / "train2017"]))
    cfg = DataConfig(source="folder", folders=["x"], n_images=20, workers=1,
                     splits={"train": 0.6, "val": 0.2, "test": 0.2})
    build_pair_store(refs, cfg, out, progress=False)
    return out


def _grid(tmp_path: Path, pairs: Path, rows: list[dict]) -> Path:
    (tmp_path / "params.yaml").write_text(default_params_text())  # the committed defaults, never a profile
    grid = {"name": "tiny", "base": "params.yaml", "pairs": str(pairs), "out": "ablations",
            "metrics": "metrics/ablations.json", "report": "reports/ablations.html",
            "set": TINY, "rows": rows}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    return tmp_path / "grid.yaml"


def test_tiny_grid_end_to_end_with_nested_mlflow_runs(pairs, tmp_path, monkeypatch, vgg_home, shared_data):
    """Every row of the Singh et al. grid (grids/table7.yaml) at tiny widths: nested MLflow runs, metrics,
    benchmark scores, champion, report in a browser."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from huescale.cli import main

    monkeypatch.chdir(tmp_path)
    # the rows of grids/table7.yaml (Singh et al.'s Table 7, the SR rows, two-step vs joint) at tiny widths
    rows = [
        {"name": "U-Net + L1", "kind": "colorizer", "set": {"train.init": "scratch"}},
        {"name": "U-Net + Perceptual", "kind": "colorizer", "set": {
            "train.init": "scratch", "train.losses": {"vgg16_conv13": 10.0, "gan": 1.0}}},
        {"name": "U-Net + Perceptual + L1", "kind": "colorizer", "set": {
            "train.init": "scratch", "train.losses": {"l1": 100.0, "vgg16_conv7": 10.0, "gan": 1.0}}},
        {"name": "Residual Generator + L1", "kind": "colorizer", "set": {
            "train.init": "scratch", "model.colorizer": {"name": "residual", "kwargs": {"features": 8, "n_blocks": 2}}}},
        {"name": "Residual U-Net + L1", "kind": "colorizer", "set": {
            "train.init": "scratch", "model.colorizer": {"name": "resunet", "kwargs": {"base_channels": 4}}}},
        {"name": "Residual U-Net + L1 (Upsampling)", "kind": "joint", "set": {"model.joint": {
            "name": "resunet", "kwargs": {"base_channels": 4, "out_channels": 3, "upsample": True, "n_up_blocks": 1}}}},
        {"name": "Pre-trained U-Net + L1", "kind": "colorizer"},
        {"name": "bicubic", "kind": "upscaler", "set": {"model.upscaler.name": "bicubic"}},
        {"name": "ESPCN", "kind": "upscaler"},
        {"name": "SRResNet", "kind": "upscaler", "set": {"model.upscaler": {
            "name": "srresnet", "kwargs": {"scale": 4, "features": 8, "n_blocks": 2, "residual": True}}}},
        {"name": "SRGAN", "kind": "upscaler", "adversarial": True, "set": {
            "model.upscaler": {"name": "srresnet", "kwargs": {"scale": 4, "features": 8, "n_blocks": 2, "residual": True}},
            "model.discriminator": {"name": "srgan", "kwargs": {"base_channels": 4}},
            "train.losses": {"vgg19": 1.0, "gan": 0.001}, "train.d_conditional": False}},
        {"name": "two-step", "kind": "two_step"},
        {"name": "joint", "kind": "joint", "set": {"train.losses": {"l1": 100.0, "rgb_l1": 10.0, "gan": 1.0}}},
    ]
    monkeypatch.setenv("TORCH_HOME", str(vgg_home))  # random VGG16/VGG19 weights for the content losses
    grid = _grid(tmp_path, pairs, rows)
    g = yaml.safe_load(grid.read_text())
    g["set"]["benchmark.sets"] = {"Set5": str(shared_data / "benchmarks/Set5/GTmod12")}
    grid.write_text(yaml.safe_dump(g, sort_keys=False))
    with pytest.raises(SystemExit) as done:
        main(["ablate", str(grid)])
    assert done.value.code == 0

    summary = json.loads((tmp_path / "metrics" / "ablations.json").read_text())
    assert [r["name"] for r in summary["rows"]] == [r["name"] for r in rows]
    by = {r["name"]: r for r in summary["rows"]}
    for r in summary["rows"]:  # no NaN anywhere: each row trained and scored
        assert all(math.isfinite(v) for k, v in r.items() if isinstance(v, float)), r["name"]
        assert r["test"]["n_test"] > 0 and r["test"]["fps"] > 0 and Path(r["sample"]).is_file()
    assert by["joint"]["test"]["psnr_y"] > 10 and by["ESPCN"]["test"]["psnr_y"] > 10
    # bicubic and ESPCN see the same test images; the untrained residual ESPCN starts at bicubic
    assert by["ESPCN"]["test"]["n_test"] == by["bicubic"]["test"]["n_test"]
    # upscaler rows are also scored on the SR benchmark protocol; bicubic reproduces the published Set5 row
    for name in ("bicubic", "ESPCN"):
        b = by[name]["benchmark"]["Set5"]
        assert b["images"] == 5 and b["bicubic_psnr_y"] == pytest.approx(28.42, abs=0.05)
    assert by["bicubic"]["benchmark"]["Set5"]["psnr_y"] == by["bicubic"]["benchmark"]["Set5"]["bicubic_psnr_y"]
    assert by["joint"]["benchmark"] == {} and by["U-Net + L1"]["benchmark"] == {}

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient()
    exp = client.get_experiment_by_name("huescale")
    parent = client.get_run(summary["parent_run_id"])
    assert parent.data.tags["huescale.kind"] == "ablation"
    children = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(c.data.tags["row"] for c in children) == sorted(r["name"] for r in rows)
    unet = next(c for c in children if c.data.tags["row"] == "U-Net + L1")
    assert {"test/mae", "test/psnr", "test/fps", "train_colorizer/loss_D", "train_colorizer/val_l1"} <= set(unet.data.metrics)
    assert unet.data.params["train.init"] == "scratch" and unet.data.params["model.colorizer.name"] == "unet"
    hist = client.get_metric_history(unet.info.run_id, "train_colorizer/loss_G_L1")
    assert len(hist) == 1 and hist[0].step == 1
    arts = {a.path for a in client.list_artifacts(unet.info.run_id)}
    assert {"samples", "checkpoints", "params.yaml"} <= arts

    champ = summary["champion"]
    colorizers = [r for r in summary["rows"] if r["kind"] == "colorizer"]
    # the best row by the champion rule's own score (decoded val L1), not by each phase's objective (a
    # perceptual row's objective is a VGG distance): recomputed here from each row's checkpoint
    from huescale.data.dataset import PairDataset
    from huescale.data.store import PairStore
    from huescale.training import checkpoint
    from huescale.training.tasks import COLORIZATION
    from huescale.training.scoring import mean_l1
    val = PairDataset(PairStore(pairs), "val", "64")
    for r in colorizers:
        assert r["val_l1"] == pytest.approx(mean_l1(checkpoint.load_model(r["checkpoint"])[0], COLORIZATION, val),
                                            rel=1e-6)
    assert champ["row"] == min(colorizers, key=lambda r: r["val_l1"])["name"]
    assert champ["val_l1"] == champ["new_val_l1"] == min(r["val_l1"] for r in colorizers)
    mv = client.get_model_version_by_alias("huescale-colorizer", "champion")
    assert mv.run_id == champ["run_id"]

    html = (tmp_path / "reports" / "ablations.html").read_text()
    for r in rows:
        assert r["name"] in html
    assert "Table 7" in html and "data:image/png;base64," in html
    assert "Upscalers on the SR benchmarks" in html
    assert html.count("<polyline") >= len(rows) - 1  # validation curves of every trained row
    page = browser_check(tmp_path / "reports" / "ablations.html", tmp_path / "ablations_report.png")
    assert page["images"] == len(rows) and not page["broken"] and not page["errors"], page


def test_row_params_and_grid_uploaded_to_mlflow_have_secrets_masked(pairs, tmp_path, monkeypatch):
    """Issue 23 item 3: a row's params.yaml (uploaded to its MLflow run) kept a URL's user:password@, ?token= and
    signed-URL parameters in clear. The artifacts' content is checked: the row's params.yaml, the grid file on the
    parent run, and the row's MLflow params; the local record holds no secret either, the row still runs."""
    from mlflow.tracking import MlflowClient

    from huescale.pipeline.ablation import run_grid

    monkeypatch.chdir(tmp_path)
    secrets = ("hunter2", "TOKEN123", "AKIAXYZ", "SIGSIG", "SASSIG", "grid-secret")
    grid = _grid(tmp_path, pairs, [{"name": "bicubic", "kind": "upscaler", "set": {
        "model.upscaler.name": "bicubic",
        "data.voc.url": "https://carol:grid-secret@voc.example.org/VOCtrainval.tar"}}])
    base = yaml.safe_load((tmp_path / "params.yaml").read_text())
    base["data"]["imagenette"].update(url="https://alice:hunter2@mirror.example.org/imagenette2-320.tgz?token=TOKEN123",
                                      md5="0" * 32)
    base["data"]["coco"]["base_url"] = ("https://bucket.s3.amazonaws.com/zips?X-Amz-Credential=AKIAXYZ"
                                        "&X-Amz-Signature=SIGSIG&v=2")
    base["benchmark"]["archive_url"] = "https://h.blob.core.windows.net/c/benchmark.tar?sv=2020&sig=SASSIG"
    base["tracking"]["uri"] = "sqlite:///mlflow.db"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(base, sort_keys=False))
    g = yaml.safe_load(grid.read_text())
    g.update(benchmark=False, register_champion=False, report="")
    grid.write_text(yaml.safe_dump(g, sort_keys=False))
    summary = run_grid(grid)
    assert summary["rows"][0]["test"]["n_test"] > 0  # the row ran with the real values

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    row = client.get_run(summary["rows"][0]["run_id"])
    uploaded = Path(client.download_artifacts(row.info.run_id, "params.yaml", str(tmp_path / "dl"))).read_text()
    grid_art = Path(client.download_artifacts(summary["parent_run_id"], "grid.yaml", str(tmp_path / "dl2"))).read_text()
    local = (tmp_path / "ablations" / "bicubic" / "params.yaml").read_text()
    for text in (uploaded, grid_art, local, str(row.data.params)):
        assert not [s for s in secrets if s in text], text
    masked = yaml.safe_load(uploaded)
    assert masked["data"]["imagenette"]["url"] == ("https://alice:***@mirror.example.org/imagenette2-320.tgz"
                                                   "?token=***")
    assert masked["data"]["coco"]["base_url"].endswith("X-Amz-Credential=***&X-Amz-Signature=***&v=2")
    assert masked["benchmark"]["archive_url"].endswith("?sv=2020&sig=***")
    assert masked["data"]["voc"]["url"] == "https://carol:***@voc.example.org/VOCtrainval.tar"
    assert masked["model"]["upscaler"]["name"] == "bicubic" and masked["runtime"]["device"] == "cpu"  # all else kept
    assert "carol:***@voc.example.org" in grid_art


def test_bad_grid_is_named_before_any_training(pairs, tmp_path, monkeypatch):
    from huescale.pipeline.ablation import run_grid

    monkeypatch.chdir(tmp_path)
    path = _grid(tmp_path, pairs, [{"name": "a", "kind": "colorizer", "set": {"train.lambda_l2": 1}}])
    with pytest.raises(ConfigError, match="train.lambda_l2"):
        run_grid(path)
    path = _grid(tmp_path, pairs, [{"name": "a", "kind": "painter"}])
    with pytest.raises(ConfigError, match="kind must be one of"):
        run_grid(path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no_weights"))  # a content-loss row, no VGG weights
    path = _grid(tmp_path, pairs, [{"name": "ok", "kind": "colorizer"}, {"name": "vgg", "kind": "colorizer", "set": {
        "train.losses": {"l1": 100.0, "vgg16_conv7": 10.0, "gan": 1.0}}}])
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        run_grid(path)
    assert not (tmp_path / "mlflow.db").exists()


def test_shipped_grid_rows_are_valid_params(tmp_path):
    """grids/table7.yaml: Singh et al.'s seven Table 7 rows, the four SR rows, two-step and joint; every row's params load."""
    from huescale.evaluation import reference
    from huescale.pipeline.grid import load_grid, row_config, slug

    grid = load_grid(ROOT / "grids" / "table7.yaml")
    (tmp_path / "base.yaml").write_text(default_params_text())
    grid["base"] = str(tmp_path / "base.yaml")
    names = [r["name"] for r in grid["rows"]]
    assert {m for m, *_ in reference.SINGH_TABLE7["rows"]} <= set(names)
    assert {"bicubic", "ESPCN", "SRResNet", "SRGAN"} <= set(names)
    assert {r["kind"] for r in grid["rows"]} == {"colorizer", "upscaler", "joint", "two_step"}
    for r in grid["rows"]:
        row_config(grid, r, tmp_path / slug(r["name"]))


def test_grid_rows_as_dvc_experiments(shared_data, tmp_path):
    """`huescale ablate GRID --dvc`: each row a DVC experiment (dvc exp show) and a nested MLflow run."""
    import sys

    from mlflow.tracking import MlflowClient

    work = copy_project(tmp_path / "project")
    params = yaml.safe_load((work / "params.yaml").read_text())  # the pair store made by the pipeline itself
    params["data"].update(source="folder", folders=[str(shared_data / "coco128" / "train2017")], n_images=20,
                          workers=1, splits={"train": 0.6, "val": 0.2, "test": 0.2})
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rows = [{"name": "U-Net + L1", "kind": "colorizer", "set": {"train.init": "scratch"}},
            {"name": "bicubic", "kind": "upscaler", "set": {"model.upscaler.name": "bicubic"}}]
    grid = {"name": "tiny", "base": "params.yaml", "pairs": "data/pairs", "out": "ablations",
            "metrics": "metrics/ablations.json", "report": "reports/ablations.html",
            "benchmark": False, "set": TINY, "rows": rows}
    (work / "grids").mkdir(exist_ok=True)
    (work / "grids" / "tiny.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    bindir = str(Path(sys.executable).parent)
    env = project_env()

    def run(*cmd: str) -> str:
        return run_checked(list(cmd), work, env, timeout=600)

    run("git", "init", "-q")
    run(f"{bindir}/dvc", "repro", "prepare")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "project + prepared pairs (dvc.lock)")
    params_before = (work / "params.yaml").read_text()
    run(f"{bindir}/huescale", "ablate", "grids/tiny.yaml", "--dvc")
    assert (work / "params.yaml").read_text() == params_before  # -S edits are undone

    shown = json.loads(run(f"{bindir}/dvc", "exp", "show", "--json"))
    exps = {e["name"]: e for commit in shown for e in (commit.get("experiments") or [])
            for e in [e["revs"][0]] if e.get("name")}
    assert set(exps) == {"tiny-u-net-l1", "tiny-bicubic"}, exps.keys()
    for name, row in (("tiny-u-net-l1", 0), ("tiny-bicubic", 1)):
        data = exps[name]["data"]
        assert data["params"]["params.yaml"]["data"]["ablation"]["row"] == row
        m = data["metrics"]["metrics/ablate_row.json"]["data"]
        assert m["row"] == rows[row]["name"] and m["test_n_test"] > 0 and m["test_mae"] > 0

    summary = json.loads((work / "metrics" / "ablations.json").read_text())
    assert summary["runner"] == "dvc experiments" and [r["name"] for r in summary["rows"]] == ["U-Net + L1", "bicubic"]
    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("huescale")
    children = client.search_runs([exp.experiment_id],
                                  f"tags.`mlflow.parentRunId` = '{summary['parent_run_id']}'")
    assert sorted(c.data.tags["row"] for c in children) == ["U-Net + L1", "bicubic"]
    assert client.get_model_version_by_alias("huescale-colorizer", "champion").run_id == summary["rows"][0]["run_id"]


def test_ablate_does_not_replace_a_better_champion(pairs, tmp_path, monkeypatch):
    """`huescale ablate` obeys the champion rule of the flow: its best colorizer row is registered only if it
    beats the current champion on the same validation split; here the champion (ab = 0, the gray image) is
    better than a 1-batch row, so the alias stays where it was."""
    import mlflow
    import torch
    from mlflow.tracking import MlflowClient

    from huescale import models, tracking
    from huescale.data.dataset import PairDataset
    from huescale.data.store import PairStore
    from huescale.pipeline import champion
    from huescale.pipeline.ablation import run_grid
    from huescale.training import checkpoint
    from huescale.training.scoring import mean_l1
    from huescale.training.tasks import COLORIZATION

    monkeypatch.chdir(tmp_path)
    kwargs = {"depth": 3, "base_channels": 4}
    gray = models.build("unet", **kwargs)
    with torch.no_grad():
        for p in gray.head.parameters():
            p.zero_()
    checkpoint.save_model(gray, "unet", kwargs, tmp_path / "gray.pt")
    gray_l1 = mean_l1(gray, COLORIZATION, PairDataset(PairStore(pairs), "val", "64"))
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")  # the grid's tracking.uri (relative to cwd)
    try:
        mlflow.set_experiment("huescale")
        with mlflow.start_run() as run:
            pass
        version = champion.register(tmp_path / "gray.pt", run.info.run_id, gray_l1)
        path = _grid(tmp_path, pairs, [{"name": "U-Net + L1", "kind": "colorizer", "set": {"train.init": "scratch"}}])
        g = yaml.safe_load(path.read_text())
        g.update(benchmark=False, report="")
        path.write_text(yaml.safe_dump(g, sort_keys=False))
        summary = run_grid(path)
        row = summary["rows"][0]
        assert row["val_l1"] > gray_l1, "test setup: the row must be worse than the champion"
        client = MlflowClient()
        assert client.get_model_version_by_alias("huescale-colorizer", "champion").version == version
        assert len(client.search_model_versions("name='huescale-colorizer'")) == 1
        champ = summary["champion"]
        assert champ["row"] == "U-Net + L1" and champ["promoted"] is False and champ["version"] is None
        assert champ["champion_val_l1"] == pytest.approx(gray_l1, abs=1e-7)
        assert champ["new_val_l1"] == row["val_l1"]
        assert "champion_row" not in client.get_run(summary["parent_run_id"]).data.tags
    finally:
        mlflow.set_tracking_uri(None)
