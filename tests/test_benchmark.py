"""The x4 SR benchmark protocol on the real Set5 / Set14 images, and its report in a browser."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ROOT, browser_check
from huescale import TEMPLATES
from huescale.evaluation import benchmark as bm


def assert_benchmark_page_shows(html: str, result: dict) -> dict[str, str]:
    """The benchmark page shows what the run produced, not the template's text: every set's PSNR-Y / SSIM-Y of
    every method from ``result`` (``result.json``), every skipped set with its reason, and for each set with a
    published bicubic row, the protocol row with our bicubic figures, their differences to the published ones and
    the verdict those numbers give (within the tolerance: ``matches``, else ``differs``). Returns set -> verdict."""
    from huescale.evaluation import reference as ref

    for name, s in result["sets"].items():
        for method, v in s.items():
            assert f"{v['psnr_y']:.2f} / {v['ssim_y']:.4f}</td>" in html, (name, method, v)
    for name, why in result.get("skipped", {}).items():
        assert f"{name} ({why})" in html, name
    verdicts = {}
    for name, s in result["sets"].items():
        if name not in ref.BICUBIC_X4:
            continue
        b, (want_p, want_s), (tol_p, tol_s) = s["bicubic"], ref.BICUBIC_X4[name], ref.BICUBIC_TOLERANCE[name]
        row = re.search(rf'<tr><td class="l">{name}</td><td>(\d+)</td><td>([\d.]+)</td><td>([\d.]+)</td>'
                        rf'<td>([-+][\d.]+)</td>\s*<td>([\d.]+)</td><td>([\d.]+)</td><td>([-+][\d.]+)</td>'
                        rf'\s*<td class="l"><span class="(\w+)">(\w+)</span>', html)
        assert row, f"no protocol row for {name}"
        images, psnr, ref_psnr, d_psnr, ssim, ref_ssim, d_ssim, cls, verdict = row.groups()
        assert (int(images), psnr, ssim) == (b["images"], f"{b['psnr_y']:.2f}", f"{b['ssim_y']:.4f}"), name
        assert (ref_psnr, ref_ssim) == (f"{want_p:.2f}", f"{want_s:.4f}"), name
        assert (d_psnr, d_ssim) == (f"{b['psnr_y'] - want_p:+.2f}", f"{b['ssim_y'] - want_s:+.4f}"), name
        ok = abs(b["psnr_y"] - want_p) <= tol_p and abs(b["ssim_y"] - want_s) <= tol_s
        assert (cls, verdict) == (("pass", "matches") if ok else ("fail", "differs")), (name, b)
        verdicts[name] = verdict
    return verdicts


def test_our_bicubic_reproduces_the_provided_lr_images(shared_data):
    """MATLAB-compatible bicubic: every LRbicx4 pixel within one gray level (almost all equal)."""
    for name in ("Set5", "Set14"):
        c = bm.check_lr(shared_data / "benchmarks" / name / "GTmod12", shared_data / "benchmarks" / name / "LRbicx4")
        assert c["images"] == {"Set5": 5, "Set14": 14}[name]
        assert c["max_abs_diff"] <= 1, c
        assert c["share_exact"] > 0.999, c


def test_gray_images_of_set14_and_both_conventions(shared_data):
    files = bm.hr_files(shared_data / "benchmarks" / "Set14" / "GTmod12")
    summary, rows, _ = bm.score_set(files, {"bicubic": bm.bicubic_upscaler(4)}, 4, progress=False)
    gray = sorted(r["image"] for r in rows if r["gray"])
    assert gray == ["bridge.png", "man.png"]
    s = summary["bicubic"]
    # scored as RGB vs gray-as-Y: the published 26.00 lies between (one of them stored single-channel)
    assert s["psnr_y_gray_single_channel"] < 26.00 < s["psnr_y"]
    for r in rows:  # the single-channel convention only changes the gray images
        assert (r["psnr_y_gray_single_channel"] == r["psnr_y"]) != r["gray"]


def test_benchmark_run_report_and_browser(shared_data, tmp_path):
    """run() with an untrained residual ESPCN (= bicubic on L) and the benchmark page in Chromium."""
    import torch

    from huescale import models
    from huescale.evaluation.report import benchmark_context, render

    torch.manual_seed(0)
    net = models.build("espcn", scale=4, residual=True)  # zero-initialised last layer: bicubic on L
    sets = {"Set5": str(shared_data / "benchmarks" / "Set5" / "GTmod12"), "Nowhere": str(tmp_path / "missing")}
    result, rows = bm.run(sets, {"espcn": net}, 4, {"Set5": str(shared_data / "benchmarks" / "Set5" / "LRbicx4")},
                          tmp_path / "samples", keep=2, progress=False)
    assert "Nowhere" in result["skipped"] and "not found" in result["skipped"]["Nowhere"]
    s5 = result["sets"]["Set5"]
    assert s5["bicubic"]["images"] == 5 and len(rows) == 10
    # bicubic on L with ab bicubic is bicubic on RGB up to the Lab round trip
    assert abs(s5["espcn"]["psnr_y"] - s5["bicubic"]["psnr_y"]) < 0.15, s5
    assert result["lr_check"]["Set5"]["max_abs_diff"] <= 1
    assert len(result["samples"]) == 2 and json.loads((tmp_path / "samples/index.json").read_text())
    ctx = benchmark_context(result, tmp_path / "samples")
    assert [p["set"] for p in ctx["protocol"]] == ["Set5"] and ctx["protocol"][0]["ok"]
    meta = {"generated": "now", "git_commit": "0" * 40, "device": "cpu", "mlflow": {}, "wall_times": {}}
    out = render(TEMPLATES, "benchmark.html.j2", tmp_path / "benchmark.html", page="benchmark.html",
                 result=result, meta=meta, params=[], method_labels={}, per_image_csv="x.csv", **ctx)
    html = out.read_text()
    assert assert_benchmark_page_shows(html, result) == {"Set5": "matches"}  # the run's numbers, not template text
    assert "Nowhere" in result["skipped"] and f"Nowhere ({result['skipped']['Nowhere']})" in html
    page = browser_check(out, tmp_path / "benchmark.png")
    assert page["images"] == 2 * (1 + 4) and not page["broken"] and not page["errors"], page


def test_benchmark_sr_command_on_any_hr_folder(shared_data, tmp_path, capsys):
    """`huescale benchmark-sr`: any HR folders + an upscaler checkpoint -> JSON, CSV and HTML report."""
    import csv

    import torch

    from huescale import models
    from huescale.cli import main
    from huescale.training import checkpoint

    torch.manual_seed(0)
    ck = tmp_path / "espcn.pt"
    checkpoint.save_model(models.build("espcn", scale=4, residual=True), "espcn", {"scale": 4, "residual": True}, ck)
    out = tmp_path / "bench"
    with pytest.raises(SystemExit) as done:
        main(["benchmark-sr", str(shared_data / "benchmarks/Set5/GTmod12"), "--lr",
              str(shared_data / "benchmarks/Set5/LRbicx4"), "--upscaler", str(ck), "--samples", "1",
              "--out", str(out), "--device", "cpu"])
    assert done.value.code == 0
    result = json.loads((out / "result.json").read_text())
    assert set(result["sets"]) == {"Set5"} and set(result["sets"]["Set5"]) == {"bicubic", "espcn:espcn"}
    assert result["sets"]["Set5"]["bicubic"]["psnr_y"] == pytest.approx(28.42, abs=0.05)
    with open(out / "per_image.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 10
    assert assert_benchmark_page_shows((out / "benchmark.html").read_text(), result) == {"Set5": "matches"}
    capsys.readouterr()
    with pytest.raises(SystemExit) as failed:
        main(["benchmark-sr", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert failed.value.code == 1 and "huescale benchmark-sr: error:" in err and "nowhere" in err and "not found" in err


def test_upscaler_scores_are_the_models_never_bicubic_in_its_place(shared_data, monkeypatch):
    """An ablation row's benchmark figures are its upscaler's: a real ESPCN scores differently from bicubic on
    Set5, and a set scored without the model's row is an error, never bicubic reported as the model."""
    import torch

    from huescale import models

    torch.manual_seed(0)
    net = models.build("espcn", scale=4, features=8)
    torch.nn.init.normal_(net.body[4].weight, std=0.05)  # away from the zero start (= bicubic)
    sets = {"Set5": str(shared_data / "benchmarks" / "Set5" / "GTmod12")}
    scores = bm.upscaler_scores(sets, net.eval(), 4)["Set5"]
    assert scores["images"] == 5 and scores["bicubic_psnr_y"] == pytest.approx(28.42, abs=0.05)
    assert abs(scores["psnr_y"] - scores["bicubic_psnr_y"]) > 0.01

    real_run = bm.run

    def run_without_the_model(*args, **kwargs):
        result, rows = real_run(*args, **kwargs)
        for methods in result["sets"].values():
            methods.pop("model", None)
        return result, rows

    monkeypatch.setattr(bm, "run", run_without_the_model)
    with pytest.raises(RuntimeError, match="Set5"):
        bm.upscaler_scores(sets, net, 4)
