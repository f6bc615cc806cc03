"""The reports' metric tables: columns by the metric table (:mod:`huescale.metrics`), Markdown tables (the flow
summary, the shipped model's card), the test split's tables beside published numbers, the held-out sets."""

from __future__ import annotations

from typing import Any

from huescale import metrics as metrics_table
from huescale.evaluation import reference
from huescale.evaluation.charts import svg_scatter


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
