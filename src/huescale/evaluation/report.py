"""Render self-contained HTML reports with Jinja2 (templates: package data in ``huescale/templates/``,
:data:`TEMPLATES`, so reports render from any directory with the installed package).

Images are inlined as base64 PNG data URIs and loss curves as inline SVG, so a
report opens from disk with no server and nothing loaded from the network.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from PIL import Image

from huescale import (
    TEMPLATES,  # noqa: F401  (re-exported: the default templates folder)
    tracking,
)
from huescale import metrics as metrics_table
from huescale.atomic import write_text
from huescale.config import to_flat_dict
from huescale.evaluation import reference
from huescale.evaluation.benchmark import zoom_box
from huescale.redact import redact
from huescale.training.losses import logged_names

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def data_uri(path: str | Path) -> str:
    """A ``data:image/png;base64,...`` URI of a PNG file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def png_uri(rgb) -> str:
    """A PNG data URI of a uint8 ``H x W x 3`` (or ``H x W``) NumPy array."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def zoomed_crops(paths: dict[str, str | Path], reference: str, size: int = 64) -> dict[str, str]:
    """Data URIs of the same ``size`` x ``size`` region of same-sized PNGs, chosen on ``reference``.

    The region is the most detailed one of the reference image (see
    :func:`huescale.evaluation.benchmark.zoom_box`), so every crop shows the same edges.
    """
    arrays = {k: np.asarray(Image.open(p).convert("RGB")) for k, p in paths.items()}
    t, l, b, r = zoom_box(arrays[reference], size)
    return {k: png_uri(a[t:b, l:r]) for k, a in arrays.items()}


def benchmark_context(result: dict, samples_dir: str | Path) -> dict[str, Any]:
    """Template variables of ``benchmark.html.j2`` from the SR benchmark result (``benchmark.run``).

    Returns ``protocol`` (bicubic vs published rows with tolerances and verdicts),
    ``samples`` (crops as data URIs), ``published`` (published SR networks) and ``reference``.
    """
    protocol = []
    for name, s in result.get("sets", {}).items():
        if name not in reference.BICUBIC_X4 or "bicubic" not in s:
            continue
        want_p, want_s = reference.BICUBIC_X4[name]
        tol_p, tol_s = reference.BICUBIC_TOLERANCE[name]
        got_p, got_s = s["bicubic"]["psnr_y"], s["bicubic"]["ssim_y"]
        protocol.append({"set": name, "images": s["bicubic"]["images"], "psnr": got_p, "ref_psnr": want_p,
                         "d_psnr": got_p - want_p, "ssim": got_s, "ref_ssim": want_s, "d_ssim": got_s - want_s,
                         "tol_psnr": tol_p, "tol_ssim": tol_s,
                         "ok": abs(got_p - want_p) <= tol_p and abs(got_s - want_s) <= tol_s})
    samples_dir = Path(samples_dir)
    samples = []
    for e in result.get("samples", []):
        folder = samples_dir / e["set"]
        crops = []
        for label, fn in e["crops"].items():
            score = e.get("psnr_y", {}).get(label)
            crops.append((f"{label} ({score:.2f} dB)" if score is not None else label, data_uri(folder / fn)))
        samples.append({"set": e["set"], "image": e["image"], "full": data_uri(folder / e["full"]),
                        "caption": "HR (red box: the zoomed region)", "crops": crops})
    return {"protocol": protocol, "samples": samples, "published": reference.SR_PUBLISHED_X4["rows"],
            "reference": {"source": f"{reference.BICUBIC_X4['source']}; "
                                    f"networks: {reference.SR_PUBLISHED_X4['source']}"}}


def read_history(path: str | Path) -> dict[str, list[float]]:
    """A history CSV written by :func:`huescale.training.history.write_history_csv` -> column -> values."""
    p = Path(path)
    if not p.is_file():
        return {}
    with open(p, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0].keys() if rows else [])}


def svg_line_chart(series: dict[str, list[float]], x: list[float], title: str, width: int = 460,
                   height: int = 240, log_y: bool = False) -> Markup:
    """An inline SVG line chart of several series over ``x`` (escaped labels, no scripts)."""
    pad_l, pad_r, pad_t, pad_b = 56, 12, 26, 34
    pts = [(k, [(xi, yi) for xi, yi in zip(x, ys) if math.isfinite(yi) and (yi > 0 or not log_y)])
           for k, ys in series.items()]
    pts = [(k, p) for k, p in pts if p]
    esc = html.escape
    if not pts:
        return Markup(f'<svg width="{width}" height="{height}" role="img">'
                      f'<text x="10" y="20">{esc(title)}: no data</text></svg>')
    f = (lambda v: math.log10(v)) if log_y else (lambda v: v)
    xs = [p[0] for _, ps in pts for p in ps]
    ys = [f(p[1]) for _, ps in pts for p in ps]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    sx = lambda v: pad_l + (v - x0) / (x1 - x0) * (width - pad_l - pad_r)  # noqa: E731
    sy = lambda v: height - pad_b - (f(v) - y0) / (y1 - y0) * (height - pad_t - pad_b)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{esc(title)}" class="chart">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-weight="bold">{esc(title)}</text>',
             f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" stroke="#888"/>',
             f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{height - pad_b}" stroke="#888"/>']
    for t in range(5):
        yv = y0 + (y1 - y0) * t / 4
        yy = height - pad_b - (yv - y0) / (y1 - y0) * (height - pad_t - pad_b)
        label = 10**yv if log_y else yv
        parts.append(f'<text x="{pad_l - 4}" y="{yy + 4:.1f}" text-anchor="end" font-size="10">{label:.3g}</text>')
    parts.append(f'<text x="{pad_l}" y="{height - 18}" font-size="10">{x0:g}</text>'
                 f'<text x="{width - pad_r}" y="{height - 18}" text-anchor="end" font-size="10">{x1:g}</text>'
                 f'<text x="{(pad_l + width) / 2}" y="{height - 4}" text-anchor="middle" font-size="10">epoch</text>')
    for i, (k, ps) in enumerate(pts):
        c = PALETTE[i % len(PALETTE)]
        path = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in ps)
        parts.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{path}"/>')
        if len(ps) <= 30:  # markers: a one-epoch run is a point, not an invisible line
            parts += [f'<circle cx="{sx(a):.1f}" cy="{sy(b):.1f}" r="3" fill="{c}"/>' for a, b in ps]
        parts.append(f'<text x="{width - pad_r - 4}" y="{pad_t + 12 + 12 * i}" text-anchor="end" '
                     f'font-size="10" fill="{c}">{esc(k)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def svg_scatter(points: list[dict], title: str, x_label: str, y_label: str, width: int = 460, height: int = 300,
                hline: float | None = None) -> Markup:
    """An inline SVG scatter plot: each point ``{"label", "x", "y", "kind"}`` (``kind``: ``model``, ``baseline``,
    ``truth`` or ``row`` picks the marker colour), labelled beside its marker (a label that would overlap one
    already placed moves down a line, so close points stay readable); ``hline`` draws a dashed target line (e.g.
    colourfulness ratio 0.75). Labels are escaped; no scripts."""
    esc = html.escape
    pts = [p for p in points if p.get("x") is not None and p.get("y") is not None
           and math.isfinite(p["x"]) and math.isfinite(p["y"])]
    if not pts:
        return Markup(f'<svg width="{width}" height="{height}" role="img">'
                      f'<text x="10" y="20">{esc(title)}: no data</text></svg>')
    pad_l, pad_r, pad_t, pad_b = 56, 150, 26, 38
    xs, ys = [p["x"] for p in pts], [p["y"] for p in pts] + ([hline] if hline is not None else [])
    x0, x1 = 0.0, max(xs) * 1.1 or 1.0
    y0, y1 = 0.0, max(max(ys) * 1.1, 1.05)
    sx = lambda v: pad_l + (v - x0) / (x1 - x0) * (width - pad_l - pad_r)  # noqa: E731
    sy = lambda v: height - pad_b - (v - y0) / (y1 - y0) * (height - pad_t - pad_b)  # noqa: E731
    colours = {"model": "#1f77b4", "baseline": "#7f7f7f", "truth": "#2ca02c", "row": "#ff7f0e"}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{esc(title)}" class="chart">',
             f'<text x="6" y="16" text-anchor="start" font-weight="bold" font-size="12">'
             f'{esc(title)}</text>',
             f'<line x1="{pad_l}" y1="{height - pad_b}" x2="{width - pad_r}" y2="{height - pad_b}" stroke="#888"/>',
             f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{height - pad_b}" stroke="#888"/>',
             f'<text x="{(pad_l + width - pad_r) / 2}" y="{height - 6}" text-anchor="middle" font-size="11">'
             f'{esc(x_label)}</text>',
             f'<text x="14" y="{(pad_t + height - pad_b) / 2}" text-anchor="middle" font-size="11" '
             f'transform="rotate(-90 14 {(pad_t + height - pad_b) / 2})">{esc(y_label)}</text>']
    for t in range(5):
        xv, yv = x0 + (x1 - x0) * t / 4, y0 + (y1 - y0) * t / 4
        parts.append(f'<text x="{sx(xv):.1f}" y="{height - pad_b + 13}" text-anchor="middle" font-size="10">'
                     f'{xv:.3g}</text>')
        parts.append(f'<text x="{pad_l - 4}" y="{sy(yv) + 4:.1f}" text-anchor="end" font-size="10">{yv:.3g}</text>')
    if hline is not None:
        parts.append(f'<line x1="{pad_l}" y1="{sy(hline):.1f}" x2="{width - pad_r}" y2="{sy(hline):.1f}" '
                     f'stroke="#b3261e" stroke-dasharray="4 3"/><text x="{width - pad_r + 4}" y="{sy(hline) + 4:.1f}" '
                     f'font-size="10" fill="#b3261e">target {hline:g}</text>')
    placed: list[tuple[float, float, float]] = []  # (x, right end, baseline y) of the labels so far
    if hline is not None:
        placed.append((width - pad_r + 4, width - pad_r + 4 + 5.5 * len(f"target {hline:g}"), sy(hline) + 4))
    for p in pts:
        c = colours.get(p.get("kind", "model"), "#1f77b4")
        lx, ly = sx(p["x"]) + 7, sy(p["y"]) + 4
        right = lx + 5.5 * len(str(p["label"]))  # ~5.5 px per character at font-size 10
        while any(abs(ly - y) < 11 and lx < r and right > x for x, r, y in placed):
            ly += 11
        placed.append((lx, right, ly))
        parts.append(f'<circle cx="{sx(p["x"]):.1f}" cy="{sy(p["y"]):.1f}" r="5" fill="{c}"/>'
                     f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="10" fill="{c}">{esc(p["label"])}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def metric_columns(rows: list[dict], names: list[str] | None = None, de_ratio: bool = False,
                   extra: tuple[tuple[str, str, int], ...] = ()) -> list[dict[str, Any]]:
    """The columns of a metrics table, from the metric table (:data:`huescale.metrics.METRICS`): every metric of
    ``names`` (None: all) that some row of ``rows`` has a value for, in the table's order, each
    ``{"key", "heading", "decimals"}``; with ``de_ratio`` the ratio of CIEDE2000 to the gray baseline's after
    ``delta_e2000``; then ``extra`` columns ``(key, heading, decimals)``. A metric registered and computed shows
    up in every report without a template edit."""
    cols: list[dict[str, Any]] = []
    for m in metrics_table.select(names):
        if not any(r.get(m.name) is not None for r in rows):
            continue
        cols.append({"key": m.name, "heading": m.heading(), "decimals": m.decimals})
        if de_ratio and m.name == "delta_e2000":
            cols.append({"key": "de_ratio", "heading": "ΔE2000 / gray's ↓", "decimals": 3})
    return cols + [{"key": k, "heading": h, "decimals": d} for k, h, d in extra]


def markdown_table(lead: list[str], rows: list[tuple[list[str], dict]], names: list[str] | None = None,
                   extra: tuple[tuple[str, str, int], ...] = ()) -> str:
    """A Markdown table of metric rows (MLflow descriptions, the model card): ``lead`` headings with each row's
    leading cells, then the :func:`metric_columns` of the values (the metric table's labels and formats)."""
    cols = metric_columns([v for _, v in rows], names, extra=extra)

    out = ["| " + " | ".join([*lead, *(c["heading"] for c in cols)]) + " |", "|" + "---|" * (len(lead) + len(cols))]
    fmt = metrics_table.format_value
    out += ["| " + " | ".join([*cells, *(fmt(v.get(c["key"]), c["decimals"]) for c in cols)]) + " |"
            for cells, v in rows]
    return "\n".join(out)


def test_split_tables(metrics: dict, meta: dict, names: list[str] | None) -> list[dict]:
    """The run report's two test-split tables (64 px colorization; 64 gray -> 256 two-step), rows and columns:
    the model, its gray baseline and the published rows (Singh et al.'s Table 7 at 64 px, Brescia et al.'s SSIM
    at 256 px) mapped onto the metric table's names."""
    fps = (metrics.get("fps") or {}).get("colorizer_batch1")
    c64, c256 = metrics.get("colorization_64") or {}, metrics.get("two_step_256") or {}
    rows64 = [{"label": f"{meta['colorizer']} (this run: pre-training + adversarial)", "data": meta["data_name"],
               "kind": "model", **(c64.get("model") or {}), "fps": fps},
              {"label": "gray baseline (ab = 0)", "data": meta["data_name"], "kind": "baseline",
               **(c64.get("gray_baseline") or {})}]
    rows64 += [{"label": f"{m} (published)", "data": d, "kind": "ref", "fid": fid, "epsilon_accuracy": eps, "mae": mae,
                "psnr": psnr, "fps": f} for m, d, fid, eps, mae, psnr, f in reference.SINGH_TABLE7["rows"]]
    rows256 = [{"label": f"two-step: {meta['colorizer']} at 64, {meta['upscaler']} ×4 on L, bicubic ab "
                         "(Frison et al. 2025)", "kind": "model", **(c256.get("model") or {})},
               {"label": "gray + bicubic ×4 baseline", "kind": "baseline", **(c256.get("gray_bicubic_baseline") or {})},
               {"label": "Brescia et al. chained pix2pix + SRGAN (published, single images)", "kind": "ref",
                "ssim": ", ".join(str(v) for v in reference.BRESCIA_SSIM_EXAMPLES["ssim"])}]
    n = metrics.get("n_test") or {}
    return [{"title": f"Colorization at 64 px (test split, {n.get('tier_64', '?')} images)", "rows": rows64,
             "columns": metric_columns(rows64, names, extra=(("fps", "FPS", 0),)), "data": True},
            {"title": f"64 gray → 256 colour, two-step pipeline (test split, {n.get('tier_256', '?')} images)",
             "rows": rows256, "columns": metric_columns(rows256, names), "data": False}]


def holdout_context(holdout: dict, names: list[str] | None = None) -> list[dict]:
    """Per held-out set: its table rows and its colourfulness-vs-Delta-E2000 scatter (the model, the gray
    baseline at colourfulness 0, the ground truth at ratio 1 and Delta-E 0; dashed: the 0.75 target)."""
    out = []
    for name, res in holdout.items():
        rows, points = [], [{"label": "ground truth", "x": 0.0, "y": 1.0, "kind": "truth"}]
        for section, size, base_key in (("colorization_64", 64, "gray_baseline"),
                                        ("two_step_256", 256, "gray_bicubic_baseline")):
            sec = res.get(section) or {}
            if not sec:
                continue
            m, g = sec["model"], sec[base_key]
            for label, vals, kind in ((f"model, {size} px", m, "model"), (f"gray, {size} px", g, "baseline")):
                de_ratio = vals["delta_e2000"] / g["delta_e2000"] if g.get("delta_e2000") else None
                rows.append({"label": label, "kind": kind, "de_ratio": de_ratio, **vals})
                points.append({"label": label, "x": vals["delta_e2000"], "y": vals.get("colorfulness_ratio") or 0.0,
                               "kind": kind})
        chart = svg_scatter(points, f"{name}: colourfulness vs colour error", "ΔE2000 (lower is better)",
                            "colourfulness / truth's", hline=0.75)
        out.append({"name": name, "n": res.get("n", {}), "rows": rows, "chart": chart,
                    "columns": metric_columns(rows, names, de_ratio=True)})
    return out


def run_metadata(device: str, wall_times: dict[str, float] | None = None,
                 parent_run_id: str | None = None) -> dict[str, Any]:
    """The run metadata every report shows: time, git commit, device, MLflow run (with a UI link), wall times.

    Args:
        device: ``cpu`` / ``cuda``.
        wall_times: seconds per stage or per row, shown with their total.
        parent_run_id: the MLflow parent run (default: the active run's parent).
    """
    info = tracking.active_run_info()
    if parent_run_id:
        info["parent_run_id"] = parent_run_id
    if info.get("experiment_id") and info.get("parent_run_id"):
        info["url"] = f"http://127.0.0.1:5000/#/experiments/{info['experiment_id']}/runs/{info['parent_run_id']}"
    return {"generated": dt.datetime.now().isoformat(timespec="seconds"), "git_commit": tracking.git_commit(),
            "device": device, "mlflow": info, "wall_times": dict(wall_times or {})}


def stage_wall_times(metrics_dir: str | Path, stages: tuple[str, ...]) -> dict[str, float]:
    """``wall_s`` of each stage from ``<metrics_dir>/<stage>.json`` (stages that have not run are left out)."""
    out = {}
    for stage in stages:
        p = Path(metrics_dir) / f"{stage}.json"
        if p.is_file():
            out[stage] = json.loads(p.read_text()).get("wall_s", 0.0)
    return out


PHASE_TITLES = {"pretrain_colorizer": "colorizer pre-training", "finetune_colorizer": "colorizer fine-tuning",
                "pretrain_upscaler": "upscaler pre-training", "train": "adversarial"}


def loss_charts(history_dir: str | Path, phases: dict[str, str] = PHASE_TITLES) -> tuple[list[Markup], list[str]]:
    """A chart for every loss each phase's objective logged (the history CSV's columns, named by the loss
    registry: :func:`huescale.training.losses.logged_names`), one per term as their scales differ, the discriminator's
    terms together, and each validation value; plus warnings (a discriminator collapse). A newly registered loss
    shows up without an edit here.

    Args:
        history_dir: the folder of ``<phase>.csv`` (``metrics/``).
        phases: phase file stem -> its title.
    """
    names, charts, warnings = logged_names(), [], []
    for phase, title in phases.items():
        h = read_history(Path(history_dir) / f"{phase}.csv")
        if not h or not h.get("epoch"):
            continue
        x = h["epoch"]
        generator = [k for k in h if k.startswith("loss_G")]
        for k in generator:
            charts.append(svg_line_chart({k: h[k]}, x, f"{title}: {names.get(k, k)} ({k}, train)"))
        disc = {k: h[k] for k in h if k.startswith("loss_D")}
        if disc:
            charts.append(svg_line_chart(disc, x, f"{title}: discriminator"))
        for k in (k for k in h if k.startswith("val_")):  # apart too: L1 and the objective differ in scale
            charts.append(svg_line_chart({k: h[k]}, x, f"{title}: validation ({k})"))
        if any(h.get("d_collapse", [])):
            warnings.append(f"{title}: discriminator collapse: loss_D stayed near 0 (see train.collapse_steps)")
    return charts, warnings


def run_report(cfg, metrics: dict, manifest: dict, samples_dir: str | Path, history_dir: str | Path,
               meta: dict, templates: str | Path, out: str | Path, holdout_dir: str | Path | None = None) -> Path:
    """Render the run report (``index.html.j2``): metrics against the baselines and Singh et al.'s Table 7,
    the sample grid (gray input / two-step / gray + bicubic / truth, with zoomed crops), loss curves,
    data counts, run metadata and all params.

    Args:
        cfg: the run's :class:`huescale.config.Config`.
        metrics: ``metrics.json``; manifest: the pair store's manifest.
        samples_dir: ``eval/samples`` (PNG files and ``index.json``); history_dir: the per-epoch CSVs;
        holdout_dir: ``eval/holdout`` (the held-out sets' sample grids), if any.
        meta: :func:`run_metadata`.

    Raises:
        FileNotFoundError: the sample index is missing (names the stage to run).
    """
    samples_dir, history_dir = Path(samples_dir), Path(history_dir)
    holdout_dir = Path(holdout_dir) if holdout_dir is not None else None
    held_rows = []
    if holdout_dir is not None and (holdout_dir / "index.json").is_file():
        for r in json.loads((holdout_dir / "index.json").read_text())["rows"]:
            held_rows.append({k: (v if k in ("set", "size") else data_uri(holdout_dir / v)) for k, v in r.items()})
    index = samples_dir / "index.json"
    if not index.is_file():
        raise FileNotFoundError(f"{index}: not found; run the evaluate stage first (dvc repro evaluate)")
    samples = []
    for r in json.loads(index.read_text())["rows"]:
        row = {k: (v if k == "key" else data_uri(samples_dir / v)) for k, v in r.items()}
        zoom = zoomed_crops({"two_step": samples_dir / r["two_step"], "ground_truth": samples_dir / r["ground_truth"]},
                            reference="ground_truth")
        row.update({f"zoom_{k}": v for k, v in zoom.items()})
        samples.append(row)
    charts, warnings = loss_charts(history_dir)
    m = cfg.model
    meta = {**meta, "colorizer": f"{m.colorizer.name} {m.colorizer.kwargs}",
            "upscaler": f"{m.upscaler.name} {m.upscaler.kwargs}",
            "data_name": cfg.data.source if cfg.data.source != "folder"
            else ", ".join("/".join(Path(f).parts[-2:]) for f in cfg.data.folders)}
    return render(templates, "index.html.j2", out, page="index.html", metrics=metrics, manifest=manifest,
                  samples=samples, charts=charts, warnings=warnings, meta=meta,
                  holdout=holdout_context(metrics.get("holdout") or {}, cfg.evaluate.metrics),
                  tables=test_split_tables(metrics, meta, cfg.evaluate.metrics), holdout_samples=held_rows,
                  params=sorted(to_flat_dict(cfg).items()),
                  reference=reference.SINGH_TABLE7, brescia=reference.BRESCIA_SSIM_EXAMPLES)


def benchmark_report(result: dict, samples_dir: str | Path, labels: dict[str, str], meta: dict,
                     per_image_csv: str | Path, templates: str | Path, out: str | Path) -> Path:
    """Render the SR benchmark report (``benchmark.html.j2``) of :func:`huescale.evaluation.benchmark.run`'s result:
    the bicubic protocol check, the methods per set, published networks, zoomed crops.

    Args:
        labels: method name -> the label shown (e.g. the checkpoint it came from).
    """
    return render(templates, "benchmark.html.j2", out, page="benchmark.html", result=result, meta=meta,
                  params=[], method_labels=labels, per_image_csv=str(per_image_csv),
                  **benchmark_context(result, samples_dir))


def ablation_holdout(summary: dict) -> list[dict]:
    """Per held-out set: every colorizing row's held-out scores beside the gray baseline of its size, and the
    colourfulness-vs-Delta-E2000 scatter of all of them (ground truth at ratio 1, Delta-E 0)."""
    out = []
    for name, base in (summary.get("holdout_baselines") or {}).items():
        rows, points = [], [{"label": "ground truth", "x": 0.0, "y": 1.0, "kind": "truth"}]
        for kind, label in (("colorizer", "gray, 64 px"), ("two_step", "gray + bicubic, 256 px")):
            if base.get(kind, {}).get("n_test"):
                rows.append({"label": label, "kind": "baseline", **base[kind]})
                points.append({"label": label, "x": base[kind]["delta_e2000"], "y": 0.0, "kind": "baseline"})
        for r in summary["rows"]:
            m = (r.get("holdout") or {}).get(name)
            if not m or not m.get("n_test"):
                continue
            gray = base.get("colorizer" if r["kind"] == "colorizer" else "two_step", {})
            de = m["delta_e2000"] / gray["delta_e2000"] if gray.get("delta_e2000") else None
            size = 64 if r["kind"] == "colorizer" else 256
            rows.append({"label": f"{r['name']} ({size} px)", "kind": "row", "de_ratio": de, **m})
            points.append({"label": r["name"], "x": m["delta_e2000"], "y": m.get("colorfulness_ratio") or 0.0,
                           "kind": "row"})
        chart = svg_scatter(points, f"{name}: colourfulness vs colour error", "ΔE2000 (lower is better)",
                            "colourfulness / truth's", width=620, height=340, hline=0.75)
        out.append({"name": name, "rows": rows, "chart": chart,
                    "columns": metric_columns(rows, de_ratio=True, extra=(("n_test", "images", 0),))})
    return out


def ablation_report(summary: dict, out: str | Path, templates: str | Path) -> Path:
    """Render ``ablations.html.j2``: the grid's rows next to Singh et al.'s Table 7 (with FPS) and Brescia
    et al.'s SSIM figures (:mod:`huescale.evaluation.reference`), each row's sample, the rows' validation-L1 curves
    and the run metadata (git commit, device, MLflow parent run).

    Args:
        summary: the grid's result (:func:`huescale.pipeline.ablation.run_grid`): ``rows`` (each with ``name``,
            ``sample`` path, ...), ``parent_run_id``, ``device``.
    """
    published = {name.lower(): (eps, mae, psnr, fid, fps)
                 for name, data, fid, eps, mae, psnr, fps in reference.SINGH_TABLE7["rows"] if data == "ImageNet"}
    rows = []
    curves: dict[str, dict[str, list[float]]] = {}
    for r in summary["rows"]:
        sample = Path(r["sample"]) if r.get("sample") else None
        rows.append({**r, "sample_uri": data_uri(sample) if sample and sample.is_file() else None,
                     "table7": published.get(r["name"].lower())})
        for phase in ("train_colorizer", "pretrain_colorizer", "train_joint", "pretrain_joint",
                      "pretrain_upscaler", "train_upscaler"):
            h = read_history(sample.parent / f"{phase}.csv") if sample else {}
            if h.get("val_l1"):
                group = "colorizers" if "colorizer" in phase else "256 px models"
                curves.setdefault(group, {})[r["name"]] = h["val_l1"]
                break
    charts = [svg_line_chart(series, list(range(1, max(len(v) for v in series.values()) + 1)),
                             f"validation L1 per epoch: {group}", width=560, height=260)
              for group, series in curves.items()]
    meta = run_metadata(summary.get("device", "?"), {r["name"]: r.get("wall_s", 0.0) for r in summary["rows"]},
                        summary.get("parent_run_id"))
    tests = [r["test"] for r in rows]
    return render(templates, "ablations.html.j2", out, page="ablations.html", summary=summary, rows=rows,
                  charts=charts, meta=meta, params=[], holdout=ablation_holdout(summary),
                  test_columns=metric_columns(tests, extra=(("fps", "FPS", 1),)),
                  table7=reference.SINGH_TABLE7,
                  brescia=reference.BRESCIA_SSIM_EXAMPLES)


def environment(template_dir: str | Path) -> Environment:
    """A Jinja2 environment with autoescape on for HTML and the report filters."""
    env = Environment(loader=FileSystemLoader(str(template_dir)), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "j2", "html.j2"]))
    env.filters["fmt"] = lambda v, nd=3: metrics_table.format_value(v, nd)
    return env


def render(template_dir: str | Path, template: str, out: str | Path, **context: Any) -> Path:
    """Render ``template`` with ``context`` to ``out`` atomically and durably; returns the path.

    Credentials, tokens and signatures in URLs and URIs anywhere in the page (params such as
    ``tracking.uri`` or a signed ``data.imagenette.url``, MLflow run info) are masked with
    :func:`huescale.redact.redact` before the file is written. The file goes through
    :func:`huescale.atomic.write_text` (process-private temporary, fsync, ``os.replace``).
    """
    text = environment(template_dir).get_template(template).render(**context)
    return write_text(redact(text), out)
