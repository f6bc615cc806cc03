"""Render self-contained HTML reports with Jinja2 (templates in ``reports/templates/``).

Images are inlined as base64 PNG data URIs and loss curves as inline SVG, so a
report opens from disk with no server and nothing loaded from the network.
"""

from __future__ import annotations

import base64
import csv
import html
import math
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def data_uri(path: str | Path) -> str:
    """A ``data:image/png;base64,...`` URI of a PNG file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def png_uri(rgb) -> str:
    """A PNG data URI of a uint8 ``H x W x 3`` (or ``H x W``) NumPy array."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def zoomed_crops(paths: dict[str, str | Path], reference: str, size: int = 64) -> dict[str, str]:
    """Data URIs of the same ``size`` x ``size`` region of same-sized PNGs, chosen on ``reference``.

    The region is the most detailed one of the reference image (see
    :func:`huescale.benchmark.zoom_box`), so every crop shows the same edges.
    """
    import numpy as np
    from PIL import Image

    from huescale.benchmark import zoom_box

    arrays = {k: np.asarray(Image.open(p).convert("RGB")) for k, p in paths.items()}
    t, l, b, r = zoom_box(arrays[reference], size)
    return {k: png_uri(a[t:b, l:r]) for k, a in arrays.items()}


def benchmark_context(result: dict, samples_dir: str | Path) -> dict[str, Any]:
    """Template variables of ``benchmark.html.j2`` from the SR benchmark result (``benchmark.run``).

    Returns ``protocol`` (bicubic vs published rows with tolerances and verdicts),
    ``samples`` (crops as data URIs), ``published`` (published SR networks) and ``reference``.
    """
    from huescale import reference as ref

    protocol = []
    for name, s in result.get("sets", {}).items():
        if name not in ref.BICUBIC_X4 or "bicubic" not in s:
            continue
        want_p, want_s = ref.BICUBIC_X4[name]
        tol_p, tol_s = ref.BICUBIC_TOLERANCE[name]
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
    return {"protocol": protocol, "samples": samples, "published": ref.SR_PUBLISHED_X4["rows"],
            "reference": {"source": f"{ref.BICUBIC_X4['source']}; networks: {ref.SR_PUBLISHED_X4['source']}"}}


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
        if len(ps) <= 30:  # markers: a one-epoch run is a point, not an invisible line
            parts += [f'<circle cx="{sx(a):.1f}" cy="{sy(b):.1f}" r="3" fill="{c}"/>' for a, b in ps]
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
    """Render ``template`` with ``context`` to ``out`` atomically and durably; returns the path.

    Credentials, tokens and signatures in URLs and URIs anywhere in the page (params such as
    ``tracking.uri`` or a signed ``data.imagenette.url``, MLflow run info) are masked with
    :func:`huescale.redact.redact` before the file is written. The file goes through
    :func:`huescale.atomic.write_text` (process-private temporary, fsync, ``os.replace``).
    """
    from huescale.atomic import write_text
    from huescale.redact import redact

    text = environment(template_dir).get_template(template).render(**context)
    return write_text(redact(text), out)
