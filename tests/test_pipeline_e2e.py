"""End to end: the real `dvc repro` on real photographs, in a copy of the project.

Runs every stage with the `folder` source on a few hundred images of
``../shared/data/imagenet_sample`` and tiny epoch counts, with FID computed
by the real pytorch-fid code path on randomly initialised Inception weights
saved into a temporary TORCH_HOME (nothing can be downloaded here), then
checks outputs, metric ranges, the report and the MLflow record.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, browser_check, copy_project, project_env, run_checked, save_random_fid_weights

# whole `dvc repro` runs: minutes on a quiet machine, much longer on a busy one; the first test also runs the
# fixture's `dvc repro`
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]
N_IMAGES = 240
HOLDOUT = 24  # held-out photographs (bsds500/test, never in training)
EPOCHS = {"colorizer": 2, "upscaler": 2, "train": 2}


_run = run_checked


@pytest.fixture(scope="module")
def project(tmp_path_factory, shared_data):
    """A fresh git + DVC copy of the project, with the pipeline run once."""
    work = tmp_path_factory.mktemp("e2e") / "huescale"
    copy_project(work)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["data"].update(source="folder", folders=[str(shared_data / "imagenet_sample")], n_images=N_IMAGES,
                          holdout={"bsds500_test": str(shared_data / "bsds500" / "test")}, holdout_images=HOLDOUT)
    params["pretrain"]["colorizer"].update(epochs=EPOCHS["colorizer"], max_batches=6)
    params["pretrain"]["upscaler"].update(epochs=EPOCHS["upscaler"], max_batches=6)
    params["pretrain"]["finetune"].update(max_batches=6)
    # the default colorizer (ImageNet-pretrained encoder, cached features, fine-tuning) at its smallest working size
    params["model"]["colorizer"]["kwargs"].update(size=64, decoder_channels=[32, 24, 16, 16], convs=1, global_dim=16)
    params["train"].update(epochs=EPOCHS["train"], max_batches=6)
    params["evaluate"].update(fid_batch_size=16, fid_cache=str(work.parent / "fid_cache"))
    bench = shared_data / "benchmarks"
    params["benchmark"] = {"sets": {"Set5": str(bench / "Set5/GTmod12"), "Set14": str(bench / "Set14/GTmod12")},
                           "lr_check": {"Set5": str(bench / "Set5/LRbicx4")}, "samples": 1}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    torch_home = work.parent / "torch_home"
    save_random_fid_weights(torch_home)
    bindir = str(Path(sys.executable).parent)
    env = project_env(TORCH_HOME=str(torch_home))
    _run(["git", "init", "-q"], work, env)
    _run(["git", "add", "-A"], work, env)
    _run(["git", "commit", "-qm", "copy"], work, env)
    log = _run([f"{bindir}/dvc", "repro"], work, env)
    return work, env, log


def test_every_stage_ran_and_wrote_its_outputs(project):
    work, _, log = project
    for stage in ("download", "prepare", "features", "pretrain", "train", "evaluate", "benchmark", "report"):
        assert f"Running stage '{stage}'" in log
    for p in ("data/raw.json", "data/pairs/manifest.json", "data/features/manifest.json",
              "metrics/finetune_colorizer.csv", "models/colorizer_pretrained.pt", "models/upscaler.pt",
              "models/colorizer.pt", "models/discriminator.pt", "metrics.json", "reports/index.html",
              "metrics/pretrain_colorizer.csv", "metrics/train.csv", "dvc.lock", "metrics/benchmark.json",
              "eval/benchmark/result.json", "eval/benchmark_per_image.csv", "reports/benchmark.html"):
        assert (work / p).is_file(), p
    manifest = json.loads((work / "data/pairs/manifest.json").read_text())
    assert manifest["usable"] == N_IMAGES
    assert sum(manifest["excluded"].values()) == manifest["candidates_seen"] - N_IMAGES


def test_metrics_are_finite_and_in_range(project):
    work, _, _ = project
    m = json.loads((work / "metrics.json").read_text())
    for section in ("colorization_64", "two_step_256"):  # MAE / epsilon-accuracy: checked against
        for method, vals in m[section].items():          # independent computations below
            assert math.isfinite(vals["mae"]) and math.isfinite(vals["epsilon_accuracy"]), (section, method)
            assert 5 < vals["psnr"] < 60
            assert 0 < vals["ssim"] <= 1
            assert vals["fid"] is not None and math.isfinite(vals["fid"]) and vals["fid"] >= 0
    for method in ("model", "bicubic_baseline"):
        assert 15 < m["sr_x4"][method]["psnr_y"] < 50 and 0 < m["sr_x4"][method]["ssim_y"] <= 1
    assert m["fid_note"] is None
    assert m["n_test"]["tier_64"] > 0 and m["n_test"]["tier_256"] > 0
    assert m["fps"]["colorizer_batch1"] > 0


def test_held_out_photographs_are_scored_beside_gray(project):
    """evaluate scores the colorizer on data.holdout (never trained on) at 64 px and through the two-step pipeline
    at 256 px, with colourfulness of output and truth, histogram intersection and chroma EMD, beside gray."""
    work, _, _ = project
    h = json.loads((work / "metrics.json").read_text())["holdout"]["bsds500_test"]
    assert h["n"] == {"tier_64": HOLDOUT, "tier_256": HOLDOUT}  # 481 x 321 photographs: both tiers
    listing = json.loads((work / "data/holdout/bsds500_test.json").read_text())
    train_keys = {r["key"] for r in json.loads((work / "data/raw.json").read_text())["images"]}
    assert listing["count"] == 200 and not train_keys & {r["key"] for r in listing["images"]}
    for section, base in (("colorization_64", "gray_baseline"), ("two_step_256", "gray_bicubic_baseline")):
        model, gray = h[section]["model"], h[section][base]
        assert model["colorfulness_truth"] == gray["colorfulness_truth"] > 15  # the same photographs
        assert gray["colorfulness_ratio"] < 0.01 and gray["chroma_emd"] > 5
        assert model["colorfulness"] > gray["colorfulness"]  # even a tiny model adds some colour
        assert 0 < model["hist_intersection"] <= 1
    html = (work / "reports/index.html").read_text()
    assert "Held-out photographs" in html and "bsds500_test: colourfulness vs colour error" in html
    rows = json.loads((work / "eval/holdout/index.json").read_text())["rows"]
    assert len(rows) == 6 and all((work / "eval/holdout" / r["output"]).is_file() for r in rows)

def test_gray_baseline_equals_an_independent_computation(project):
    """The gray baseline (L kept, ab = 0) recomputed from the test images with scikit-image's rgb2lab/lab2rgb
    (not huescale's kornia conversion): its MAE, epsilon-accuracy and PSNR equal metrics.json's."""
    import numpy as np
    from skimage.color import lab2rgb, rgb2lab

    from huescale.data.store import PairStore

    work, _, _ = project
    m = json.loads((work / "metrics.json").read_text())
    truth = PairStore(work / "data" / "pairs").images("test", "gt64")
    assert len(truth) == m["n_test"]["tier_64"] > 0

    def gray(img: np.ndarray) -> np.ndarray:
        lab = rgb2lab(img / 255.0)
        lab[..., 1:] = 0
        return np.clip(np.round(lab2rgb(lab) * 255), 0, 255).astype(np.uint8)

    pred = np.stack([gray(t) for t in truth]).astype(np.float64)
    err = np.abs(pred - truth)
    psnr = np.mean([10 * np.log10(255.0**2 / ((p - t) ** 2).mean()) for p, t in zip(pred, truth.astype(np.float64))])
    got = m["colorization_64"]["gray_baseline"]
    assert got["mae"] == pytest.approx(err.mean(), abs=0.01)  # 8-bit levels
    assert got["epsilon_accuracy"] == pytest.approx((err <= 0.05 * 255).all(-1).mean() * 100, abs=0.1)
    assert got["psnr"] == pytest.approx(psnr, abs=0.01)
    assert 2 < got["mae"] < 60  # a colour test set is not gray


def test_model_metrics_are_the_means_of_the_per_image_csv(project):
    """metrics.json's model figures are the means of eval/per_image.csv's rows (written with 4 decimals)."""
    import csv

    import numpy as np

    work, _, _ = project
    m = json.loads((work / "metrics.json").read_text())
    with open(work / "eval/per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for method, section, tier in (("colorizer_64", "colorization_64", "tier_64"),
                                  ("two_step_256", "two_step_256", "tier_256")):
        mine = [r for r in rows if r["method"] == method]
        assert len(mine) == m["n_test"][tier] > 0, method
        for key in ("mae", "epsilon_accuracy", "psnr", "ssim", "delta_e2000", "colorfulness"):
            assert m[section]["model"][key] == pytest.approx(np.mean([float(r[key]) for r in mine]), abs=1e-4), \
                (method, key)
    assert m["colorization_64"]["model"]["mae"] != m["colorization_64"]["gray_baseline"]["mae"]


def test_a_registered_metric_reaches_the_csv_metrics_json_mlflow_and_the_report(project, tmp_path, monkeypatch):
    """Adding a metric is one function and its declaration (docs/architecture.md): a metric registered here, with
    no other edit, is computed by the evaluate stage and shows in eval/per_image.csv, metrics.json, the stage's
    MLflow run and the rendered report (run in-process on a copy of the finished project)."""
    import csv
    import shutil

    import numpy as np
    from mlflow.tracking import MlflowClient

    from huescale import metrics
    from huescale.pipeline.stages import evaluate, report
    from huescale.pipeline.stages.runner import run_stage

    work, env, _ = project
    copy = tmp_path / "huescale"
    shutil.copytree(work, copy, symlinks=True)
    name = "mean_abs_l_test"

    @metrics.register_metric(name, per="image", better="lower", decimals=3, label="mean |ΔL| (test)", unit="L*",
                             source="tests/test_pipeline_e2e.py")
    def mean_abs_l(pred, target):
        from skimage.color import rgb2lab

        return float(np.mean([np.abs(rgb2lab(p)[..., 0] - rgb2lab(t)[..., 0]).mean() for p, t in zip(pred, target)]))

    try:
        monkeypatch.chdir(copy)
        monkeypatch.setenv("TORCH_HOME", env["TORCH_HOME"])
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        run_stage("evaluate", evaluate.run)
        run_stage("report", report.run)
    finally:
        del metrics.METRICS[name]
    m = json.loads((copy / "metrics.json").read_text())
    value = m["colorization_64"]["model"][name]
    assert 0 <= value < 100 and m["holdout"]["bsds500_test"]["two_step_256"]["model"][name] >= 0
    with open(copy / "eval/per_image.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == "colorizer_64"]
    assert value == pytest.approx(np.mean([float(r[name]) for r in rows]), abs=1e-4)
    client = MlflowClient(tracking_uri=f"sqlite:///{copy / 'mlflow.db'}")
    exp = client.get_experiment_by_name("huescale")
    run = client.search_runs([exp.experiment_id], "tags.stage = 'evaluate'", order_by=["attributes.start_time DESC"])[0]
    assert run.data.metrics[f"colorization_64.model.{name}"] == pytest.approx(value)
    html = (copy / "reports/index.html").read_text()
    assert "mean |ΔL| (test) (L*) ↓" in html and f"<td>{value:.3f}</td>" in html


def test_a_registered_model_and_loss_train_evaluate_and_show_in_the_report(project, tmp_path, monkeypatch):
    """Adding a model is one registered class and adding a loss is one registered class, plus their params entries
    (docs/architecture.md, "How to"): a tiny colorizer and a total-variation loss registered here, with no other
    edit, are pre-trained and adversarially trained by the stages, evaluated, logged to MLflow under the loss's
    own name, and drawn in the report's loss curves (run in-process on a copy of the finished project)."""
    import shutil

    import torch
    from mlflow.tracking import MlflowClient
    from torch import nn

    from huescale import models
    from huescale.models import registry
    from huescale.pipeline.stages import evaluate, pretrain, report, train
    from huescale.pipeline.stages.runner import run_stage
    from huescale.training import checkpoint, loss_registry

    work, env, _ = project
    copy = tmp_path / "huescale"
    shutil.copytree(work, copy, symlinks=True)

    @models.register("test_tiny_colorizer")
    class TinyColorizer(nn.Module):
        """Two convolutions, L -> ab (a test model, tests/test_pipeline_e2e.py)."""

        def __init__(self, width: int = 8):
            super().__init__()
            self.net = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 2, 3, padding=1),
                                     nn.Tanh())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)

    @loss_registry.register("test_tv")
    class TotalVariation(loss_registry.Loss):
        """Total variation of the output ab (a test loss)."""

        metric = "loss_G_test_tv"

        def forward(self, inp):
            out = inp.out
            return (out[..., 1:, :] - out[..., :-1, :]).abs().mean() + (out[..., 1:] - out[..., :-1]).abs().mean()

    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["model"]["colorizer"] = {"name": "test_tiny_colorizer", "kwargs": {"width": 6}}
    params["pretrain"]["colorizer"]["losses"] = {"l1": 1.0, "test_tv": 0.1}
    params["train"]["losses"] = {"l1": 100.0, "gan": 1.0, "test_tv": 10.0}
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        monkeypatch.chdir(copy)
        monkeypatch.setenv("TORCH_HOME", env["TORCH_HOME"])
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        for name, stage in (("pretrain", pretrain.run), ("train", train.run), ("evaluate", evaluate.run),
                            ("report", report.run)):
            run_stage(name, stage)
        model, meta = checkpoint.load_model(copy / "models/colorizer.pt")
        assert type(model).__name__ == "TinyColorizer"
    finally:
        registry._REGISTRY.pop("test_tiny_colorizer", None)
        loss_registry._REGISTRY.pop("test_tv", None)
    for phase in ("pretrain_colorizer", "train"):  # the loss's own column in each phase's history
        header = (copy / "metrics" / f"{phase}.csv").read_text().splitlines()[0].split(",")
        assert "loss_G_test_tv" in header, (phase, header)
    m = json.loads((copy / "metrics.json").read_text())["colorization_64"]
    assert m["model"]["mae"] != m["gray_baseline"]["mae"]
    client = MlflowClient(tracking_uri=f"sqlite:///{copy / 'mlflow.db'}")
    exp = client.get_experiment_by_name("huescale")
    run = client.search_runs([exp.experiment_id], "tags.stage = 'pretrain'", order_by=["attributes.start_time DESC"])[0]
    assert any(k.endswith("loss_G_test_tv") for k in run.data.metrics), sorted(run.data.metrics)
    html = (copy / "reports/index.html").read_text()
    assert "colorizer pre-training: test_tv (loss_G_test_tv, train)" in html
    assert "adversarial: test_tv (loss_G_test_tv, train)" in html


def test_ship_cards_the_held_out_figures_of_the_checkpoints_it_ships(project, tmp_path):
    """`huescale ship` scores the checkpoints it ships on the run's held-out sets: shipping models/colorizer.pt
    gives evaluate's own figures (metrics.json), shipping the pre-trained colorizer gives that model's, not the
    adversarial one's (the card describes the weights in the package)."""
    from huescale.cli import main

    work, _, _ = project
    m = json.loads((work / "metrics.json").read_text())["holdout"]["bsds500_test"]
    cards = {}
    for name in ("colorizer.pt", "colorizer_pretrained.pt"):
        out = tmp_path / name
        with pytest.raises(SystemExit) as done:
            main(["ship", "--project", str(work), "--colorizer", f"models/{name}", "--out", str(out)])
        assert done.value.code in (0, None)
        cards[name] = json.loads((out / "MODEL_CARD.json").read_text())
        assert cards[name]["checkpoints"]["colorizer"] == f"models/{name}"
        assert f"`models/{name}`" in (out / "MODEL_CARD.md").read_text()
    for section in ("colorization_64", "two_step_256"):
        same = cards["colorizer.pt"]["holdout"]["bsds500_test"][section]
        for key in ("delta_e2000", "colorfulness_ratio", "psnr"):
            assert same["model"][key] == pytest.approx(m[section]["model"][key], rel=1e-6), (section, key)
    pre = cards["colorizer_pretrained.pt"]["holdout"]["bsds500_test"]["colorization_64"]["model"]
    assert pre["delta_e2000"] != pytest.approx(m["colorization_64"]["model"]["delta_e2000"], rel=1e-6)


def test_report_has_tables_images_and_curves(project):
    """The run report and the benchmark page show the numbers this run produced (metrics.json, result.json),
    not only the template's constant text."""
    from test_benchmark import assert_benchmark_page_shows

    work, _, _ = project
    html = (work / "reports/index.html").read_text()
    assert "Table 7" in html and "U-Net + L1" in html  # Singh et al.'s published rows, cited
    m = json.loads((work / "metrics.json").read_text())
    sr, bic = m["sr_x4"]["model"], m["sr_x4"]["bicubic_baseline"]
    row = re.search(r'<tr class="ours"><td class="l">[^<]* on L \(ab bicubic\)</td><td>([^<]*)</td><td>([^<]*)</td>',
                    html)
    assert row and row.groups() == (f"{sr['psnr_y']:.2f}", f"{sr['ssim_y']:.4f}"), row
    assert f"(MATLAB-compatible)</td><td>{bic['psnr_y']:.2f}</td><td>{bic['ssim_y']:.4f}</td>" in html
    assert f"The upscaler is {sr['psnr_y'] - bic['psnr_y']:+.2f} dB against bicubic" in html
    from huescale.metrics import METRICS

    for section in ("colorization_64", "two_step_256"):  # every metric of the run, in the metric table's order
        c = m[section]["model"]
        cells = "".join(f"<td>{spec.format(c[name])}</td>" for name, spec in METRICS.items() if name in c)
        assert {"mae", "epsilon_accuracy", "psnr", "ssim", "fid", "colorfulness_ratio"} <= set(c)
        assert cells in html, (section, cells)
    result = json.loads((work / "eval/benchmark/result.json").read_text())
    verdicts = assert_benchmark_page_shows((work / "reports/benchmark.html").read_text(), result)
    assert verdicts["Set5"] == "matches"  # our bicubic reproduces the published Set5 row
    imgs = re.findall(r'<img [^>]*src="data:image/png;base64,', html)
    assert len(imgs) >= 8 * 4
    assert html.count("<svg") >= 3 and "<polyline" in html
    assert not re.search(r'(src|href)="https?://(?!127\.0\.0\.1)', html)  # self-contained: nothing fetched


def test_reports_render_in_a_real_browser(project, tmp_path):
    """Run and benchmark reports in headless Chromium: every image loads, no console errors."""
    work, _, _ = project
    run = browser_check(work / "reports/index.html", tmp_path / "run_report.png")
    assert not run["broken"] and not run["errors"], run
    assert run["images"] >= 8 * 6 + 6 * 3 and run["svgs"] >= 6 and run["height"] > 2000
    bench = browser_check(work / "reports/benchmark.html", tmp_path / "benchmark_report.png")
    assert not bench["broken"] and not bench["errors"], bench
    assert bench["images"] == 2 * 5  # Set5 and Set14: one image each, full + LR + 2 methods + HR
    result = json.loads((work / "eval/benchmark/result.json").read_text())
    assert set(result["sets"]) == {"Set5", "Set14"} and result["lr_check"]["Set5"]["max_abs_diff"] <= 1
    assert result["sets"]["Set5"]["bicubic"]["psnr_y"] == pytest.approx(28.42, abs=0.05)  # published bicubic


def test_per_image_scores_and_escaped_file_names(project):
    """Per-image CSV of every test image; a hostile file name is shown escaped in the report."""
    import csv

    work, env, _ = project
    m = json.loads((work / "metrics.json").read_text())
    with open(work / "eval/per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == m["n_test"]["tier_64"] + m["n_test"]["tier_256"]
    col = [float(r["mae"]) for r in rows if r["method"] == "colorizer_64"]
    assert col == sorted(col, reverse=True)  # worst first
    index = work / "eval/samples/index.json"
    original = index.read_text()
    samples = json.loads(original)
    samples["rows"][0]["key"] = "<script>alert(1)</script>.jpg"
    index.write_text(json.dumps(samples))
    report = work / "reports/index.html"
    outs = [report, work / "reports/benchmark.html"]  # the report stage rewrites both: restored below
    before = [p.read_text() for p in outs]
    try:
        res = subprocess.run([str(Path(sys.executable).parent / "huescale"), "stage", "report"], cwd=work, env=env,
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        html = report.read_text()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;.jpg" in html and "<script>alert(1)" not in html
    finally:
        index.write_text(original)
        for p, text in zip(outs, before):
            p.write_text(text)


def test_mlflow_holds_parent_stage_runs_and_epoch_metrics(project):
    work, _, _ = project
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    exp = client.get_experiment_by_name("huescale")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("huescale.kind") == "pipeline"]
    assert len(parents) == 1
    stages = {r.data.tags["stage"]: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id}
    assert set(stages) == {"download", "prepare", "features", "pretrain", "train", "evaluate", "benchmark", "report"}
    assert all(r.info.status == "FINISHED" for r in stages.values())
    hist = client.get_metric_history(stages["train"].info.run_id, "train/val_l1")
    assert [h.step for h in hist] == list(range(1, EPOCHS["train"] + 1))
    hist = client.get_metric_history(stages["pretrain"].info.run_id, "pretrain_colorizer/loss_G_L1")
    assert len(hist) == EPOCHS["colorizer"]
    assert stages["train"].data.params["train.losses.ab_ce"] == "1.0"
    arts = [a.path for a in client.list_artifacts(stages["report"].info.run_id, "report")]
    assert {"report/index.html", "report/benchmark.html"} <= set(arts)
    del mlflow


def test_second_repro_reruns_nothing_and_dvc_reads_metrics(project):
    work, env, _ = project
    bindir = str(Path(sys.executable).parent)
    log = _run([f"{bindir}/dvc", "repro"], work, env)
    for stage in ("prepare", "features", "pretrain", "train", "evaluate", "benchmark", "report"):
        assert f"Stage '{stage}' didn't change, skipping" in log
    shown = _run([f"{bindir}/dvc", "metrics", "show", "--json"], work, env)
    assert "psnr_y" in shown


def _dvc_status(work: Path, env: dict) -> dict:
    bindir = str(Path(sys.executable).parent)
    return json.loads(_run([f"{bindir}/dvc", "status", "--json"], work, env) or "{}")


def test_editing_a_module_reruns_exactly_the_stages_that_run_it(project):
    """dvc.yaml's deps are the code each stage imports: an edit changes those stages and no other."""
    work, env, _ = project
    cases = {  # module -> the stages whose code imports it
        "src/huescale/pipeline/stages/evaluate.py": {"evaluate"},
        # load_config checks loss names and evaluate.metrics against the loss registry and the metric table at
        # start-up, so every stage that loads params imports both
        "src/huescale/metrics.py": {"prepare", "features", "pretrain", "train", "evaluate", "benchmark", "ablate_row",
                                    "report"},
        "src/huescale/training/losses.py": {"prepare", "features", "pretrain", "train", "evaluate", "benchmark",
                                            "ablate_row", "report"},
    }
    assert set(_dvc_status(work, env)) <= {"download"}  # only the always-changed listing
    for module, stages in cases.items():
        path = work / module
        original = path.read_text()
        path.write_text(original + "\n# an edit\n")
        try:
            changed = set(_dvc_status(work, env)) - {"download"}
        finally:
            path.write_text(original)
        assert changed == stages, (module, changed)
    assert set(_dvc_status(work, env)) <= {"download"}


def test_an_ablation_row_without_overrides_trains_the_weights_of_dvc_repro(project, tmp_path):
    """One recipe: a grid row with no overrides, on the same pair store, gives bit-identical pre-trained and
    adversarially trained colorizers to the pretrain and train stages."""
    import torch

    from huescale.training import checkpoint

    work, env, _ = project
    grid = {"name": "same", "base": str(work / "params.yaml"), "pairs": str(work / "data" / "pairs"),
            "out": str(tmp_path / "rows"), "metrics": str(tmp_path / "ablations.json"), "report": "",
            "register_champion": False, "benchmark": False, "rows": [{"name": "default", "kind": "colorizer"}]}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    _run([str(Path(sys.executable).parent / "huescale"), "ablate", str(tmp_path / "grid.yaml")], tmp_path, env)
    # the default colorizer has a pretrained encoder: a frozen-encoder phase on the cached features, then fine-tuning
    for row_file, stage_file in (("pretrain_colorizer.pt", ".huescale/colorizer_frozen.pt"),
                                 ("finetune_colorizer.pt", "models/colorizer_pretrained.pt"),
                                 ("train_colorizer.pt", "models/colorizer.pt")):
        row = checkpoint.load(tmp_path / "rows" / "default" / row_file)["state_dict"]
        stage = checkpoint.load(work / stage_file)["state_dict"]
        assert row.keys() == stage.keys()
        for k in row:
            assert torch.equal(row[k], stage[k]), (row_file, k)


def test_an_unconditional_discriminator_trains_under_dvc_repro(project, tmp_path):
    """train.d_conditional: false: D sees ab alone (2 channels); `dvc repro` trains it (it fed 2 channels to a
    3-channel PatchGAN before the one recipe)."""
    from huescale.training import checkpoint

    work, env, _ = project
    copy = tmp_path / "project"
    shutil.copytree(work, copy, symlinks=True)
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["train"]["d_conditional"] = False
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    log = _run([str(Path(sys.executable).parent / "dvc"), "repro", "train"], copy, env)
    assert "Running stage 'train'" in log and "Running stage 'pretrain'" not in log
    d = checkpoint.load(copy / "models" / "discriminator.pt")
    assert d["kwargs"]["in_channels"] == 2 and d["state_dict"]["net.0.weight"].shape[1] == 2
    train = json.loads((copy / "metrics" / "train.json").read_text())
    assert math.isfinite(train["train_best_val_l1"]) and train["train_steps"] > 0


def test_colorize_command_on_benchmark_photos(project, shared_data, tmp_path):
    """`huescale colorize` with the trained checkpoints: x4 output, bad files reported, others done."""
    import numpy as np
    from PIL import Image

    work, env, _ = project
    src = tmp_path / "in"
    src.mkdir()
    for f in sorted((shared_data / "benchmarks" / "Set5" / "LRbicx4").glob("*.png"))[:3]:
        shutil.copy(f, src / f.name)
    (src / "broken.jpg").write_text("not an image")
    bindir = Path(sys.executable).parent
    res = subprocess.run([str(bindir / "huescale"), "colorize", str(src), "--out", str(tmp_path / "out"),
                          "--scale", "4", "--colorizer", str(work / "models/colorizer.pt"),
                          "--upscaler", str(work / "models/upscaler.pt")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "broken.jpg" in res.stderr
    for f in sorted(src.glob("*.png")):
        a, b = np.asarray(Image.open(f)), np.asarray(Image.open(tmp_path / "out" / f.name))
        assert b.shape == (a.shape[0] * 4, a.shape[1] * 4, 3)


def test_prefect_flow_runs_stages_and_decides_champion_both_ways(project):
    """The Prefect flow on the trained copy: stages as tasks, artifacts, champion promoted once only."""
    from mlflow.tracking import MlflowClient
    from prefect.testing.utilities import prefect_test_harness

    from huescale.pipeline.flow import retrain

    work, env, _ = project
    old = dict(os.environ)
    os.environ.update({k: env[k] for k in ("PATH", "TORCH_HOME")})
    try:
        with prefect_test_harness(server_startup_timeout=120):  # a local server, stopped before pytest exits
            first = retrain(project_dir=str(work), stages=["evaluate", "report"])
            second = retrain(project_dir=str(work), stages=["evaluate", "report"])
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert first["tasks"] == {"evaluate": "Completed", "report": "Completed"}
    assert first["champion"]["promoted"] is True and first["champion"]["champion_val_l1"] is None
    assert second["champion"]["promoted"] is False  # same model: not strictly better than the champion
    assert second["champion"]["champion_val_l1"] == pytest.approx(second["champion"]["new_val_l1"])
    assert first["metrics"]["sr_x4"]["model"]["psnr_y"] > 0 and first["report"].endswith("index.html")
    client = MlflowClient(tracking_uri=f"sqlite:///{work / 'mlflow.db'}")
    mv = client.get_model_version_by_alias("huescale-colorizer", "champion")
    assert mv.version == first["champion"]["version"] and mv.run_id == first["parent_run_id"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_served_deployment_runs_when_triggered(project, tmp_path):
    """`flows/retrain.py serve` against a real Prefect server on 127.0.0.1; one triggered run completes."""
    import time
    import urllib.request

    work, env, _ = project
    bindir = Path(sys.executable).parent
    port = _free_port()
    penv = {**env, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    logs = tmp_path / "logs"
    logs.mkdir()
    server = subprocess.Popen([str(bindir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=penv, stdout=open(logs / "server.log", "w"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    serve = None
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except OSError:
                assert time.time() < deadline and server.poll() is None, (logs / "server.log").read_text()[-2000:]
                time.sleep(1)
        serve = subprocess.Popen([sys.executable, str(ROOT / "flows" / "retrain.py"), "serve", "--project", str(work),
                                  "--stages", "report", "--name", "e2e", "--cron", "0 3 * * *"],
                                 env=penv, cwd=work, stdout=open(logs / "serve.log", "w"), stderr=subprocess.STDOUT,
                                 start_new_session=True)
        deadline = time.time() + 120
        while True:  # the deployment exists once `serve` has registered it
            res = subprocess.run([str(bindir / "prefect"), "deployment", "inspect", "huescale-retrain/e2e"],
                                 env=penv, capture_output=True, text=True, timeout=60)
            if res.returncode == 0:
                break
            assert time.time() < deadline and serve.poll() is None, (logs / "serve.log").read_text()[-2000:]
            time.sleep(2)
        assert "0 3 * * *" in res.stdout  # the cron schedule is attached
        run = subprocess.run([str(bindir / "prefect"), "deployment", "run", "huescale-retrain/e2e", "--watch",
                              "--watch-timeout", "300"], env=penv, capture_output=True, text=True, timeout=360)
        assert run.returncode == 0 and "Completed" in run.stdout, run.stdout[-2000:] + (logs / "serve.log").read_text()[-3000:]
        # a deployment to a GPU work pool (a process pool here): registered with its pool and schedule
        subprocess.run([str(bindir / "prefect"), "work-pool", "create", "gpu", "--type", "process"], env=penv,
                       check=True, capture_output=True, timeout=60)
        subprocess.run([sys.executable, str(ROOT / "flows" / "retrain.py"), "deploy", "--pool", "gpu", "--project",
                        str(work), "--name", "nightly-gpu"], env=penv, cwd=work, check=True, capture_output=True,
                       timeout=120)
        res = subprocess.run([str(bindir / "prefect"), "deployment", "inspect", "huescale-retrain/nightly-gpu"],
                             env=penv, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and "'work_pool_name': 'gpu'" in res.stdout, res.stdout[-2000:]
    finally:
        if serve is not None:
            _stop(serve)  # the serving process first, then the server (ENVIRONMENT.md)
        _stop(server)
