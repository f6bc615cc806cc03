"""The reports' charts as inline SVG (no script, nothing loaded from the network): line charts, scatter plots,
and the loss curves of every training phase from its history CSV."""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path

from markupsafe import Markup

from huescale.training.losses import logged_names

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


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
