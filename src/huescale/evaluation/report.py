"""Render self-contained HTML reports with Jinja2 (templates: package data in ``huescale/templates/``,
:data:`TEMPLATES`, so reports render from any directory with the installed package): each page's context,
the run metadata every report shows, the rendering. The charts are :mod:`huescale.evaluation.charts`, the
metric tables :mod:`huescale.evaluation.tables`.

Images are inlined as base64 PNG data URIs and loss curves as inline SVG, so a
report opens from disk with no server and nothing loaded from the network.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from PIL import Image

from huescale import (
    TEMPLATES,  # noqa: F401  (re-exported: the default templates folder)
    tracking,
)
from huescale import metrics as metrics_table
from huescale.atomic import write_text
from huescale.config_io import to_flat_dict
from huescale.evaluation import reference
from huescale.evaluation.benchmark import zoom_box
from huescale.evaluation.charts import loss_charts, read_history, svg_line_chart, svg_scatter
from huescale.evaluation.tables import holdout_context, metric_columns, test_split_tables
from huescale.redact import redact


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
