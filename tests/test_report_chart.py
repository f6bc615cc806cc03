"""The report's colourfulness-vs-CIEDE2000 scatter: labels of close points do not overlap."""

from __future__ import annotations

import re

from huescale.evaluation.charts import svg_scatter


def _labels(svg: str) -> dict[str, tuple[float, float]]:
    return {m[3]: (float(m[1]), float(m[2])) for m in re.finditer(r'<text x="([\d.]+)" y="([\d.]+)" font-size="10" '
                                                                  r'fill="#[0-9a-f]+">([^<]+)</text>', svg)}


def test_close_points_get_separate_label_lines_and_far_ones_stay_beside_their_marker():
    # the held-out chart of a real run: model at 64 and 256 px nearly on top of each other, gray likewise
    points = [{"label": "ground truth", "x": 0.0, "y": 1.0, "kind": "truth"},
              {"label": "model, 64 px", "x": 12.55, "y": 0.79, "kind": "model"},
              {"label": "model, 256 px", "x": 13.68, "y": 0.78, "kind": "model"},
              {"label": "gray, 64 px", "x": 13.13, "y": 0.0, "kind": "baseline"},
              {"label": "gray, 256 px", "x": 14.19, "y": 0.0, "kind": "baseline"}]
    labels = _labels(str(svg_scatter(points, "t", "x", "y", hline=0.75)))
    target = labels.pop("target 0.75")
    assert len(labels) == 5
    assert all(abs(y - target[1]) >= 11 or x > target[0] + 60 or x + 80 < target[0] for x, y in labels.values())
    for a, b in (("model, 64 px", "model, 256 px"), ("gray, 64 px", "gray, 256 px")):
        assert abs(labels[a][1] - labels[b][1]) >= 11, labels  # one text line apart at least
    alone = _labels(str(svg_scatter(points[:2], "t", "x", "y")))
    circles = re.findall(r'<circle cx="([\d.]+)" cy="([\d.]+)"', str(svg_scatter(points[:2], "t", "x", "y")))
    assert alone["model, 64 px"] == (float(circles[1][0]) + 7, float(circles[1][1]) + 4)  # not moved


def test_every_logged_loss_gets_a_curve_named_by_the_registry(tmp_path):
    """The report draws every term a phase's history holds, titled with the loss registry's name, with no list of
    curves in report.py: colourfulness (a loss no report code names) shows up as soon as a phase logs it."""
    from huescale.evaluation.charts import loss_charts
    from huescale.training.losses import logged_names

    assert logged_names()["loss_G_colourfulness"] == "colourfulness" and logged_names()["loss_G_CE"] == "ab_ce"
    (tmp_path / "pretrain_colorizer.csv").write_text(
        "epoch,step,loss_G_CE,loss_G_colourfulness,val_objective\n1,10,3.1,0.8,3.3\n2,20,2.9,0.7,3.2\n")
    (tmp_path / "train.csv").write_text("epoch,step,d_collapse,loss_D,loss_D_real,loss_G_GAN,val_l1\n"
                                        "1,5,1,0.0001,0.0002,0.9,0.2\n")
    charts, warnings = loss_charts(tmp_path)
    text = "".join(charts)
    assert "colorizer pre-training: colourfulness (loss_G_colourfulness, train)" in text
    assert "colorizer pre-training: ab_ce (loss_G_CE, train)" in text and "adversarial: gan (loss_G_GAN" in text
    assert "adversarial: discriminator" in text and sum(": validation" in c for c in charts) == 2 and len(charts) == 6
    assert warnings and "collapse" in warnings[0]
