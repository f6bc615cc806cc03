"""Render self-contained HTML reports with Jinja2 (templates in ``reports/templates/``).

Images are inlined as base64 PNG data URIs and loss curves as inline SVG, so a
report opens from disk with no server and nothing loaded from the network.
"""

from __future__ import annotations

import base64
import csv
import html
import math
import os
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def data_uri(path: str | Path) -> str:
    """A ``data:image/png;base64,...`` URI of a PNG file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def read_history(path: str | Path) -> dict[str, list[float]]:
    """A history CSV written by :func:`huescale.train.write_history_csv` -> column -> values."""
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
        return Markup(f'<svg width="{width}" height="{height}" role="img"><text x="10" y="20">{esc(title)}: no data</text></svg>')
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
        parts.append(f'<text x="{width - pad_r - 4}" y="{pad_t + 12 + 12 * i}" text-anchor="end" '
                     f'font-size="10" fill="{c}">{esc(k)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def environment(template_dir: str | Path) -> Environment:
    """A Jinja2 environment with autoescape on for HTML and the report filters."""
    env = Environment(loader=FileSystemLoader(str(template_dir)), undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "j2", "html.j2"]))
    env.filters["fmt"] = lambda v, nd=3: "—" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))
    return env


def render(template_dir: str | Path, template: str, out: str | Path, **context: Any) -> Path:
    """Render ``template`` with ``context`` to ``out`` atomically; returns the path."""
    text = environment(template_dir).get_template(template).render(**context)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out
