"""The Markdown summary of a pipeline run that the Prefect flow publishes as an artifact: the test-split metrics of
``metrics.json`` in the metric table's columns, and the x4 super-resolution protocol's figures."""

from __future__ import annotations

from huescale.evaluation.tables import markdown_table


def metrics_markdown(metrics: dict) -> str:
    """The test-split metrics of ``metrics.json`` as Markdown tables (the metric table's columns; then the x4
    super-resolution protocol's Y-channel PSNR / SSIM)."""
    rows = [([section, method], m) for section in ("colorization_64", "two_step_256")
            for method, m in (metrics.get(section) or {}).items()]
    sr = [([method], m) for method, m in (metrics.get("sr_x4") or {}).items()]
    return markdown_table(["section", "method"], rows) + "\n\n" + markdown_table(
        ["sr_x4 (Y)"], sr, names=[], extra=(("psnr_y", "PSNR-Y (dB)", 2), ("ssim_y", "SSIM-Y", 4)))
