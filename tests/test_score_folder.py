"""Colorization scoring on any folder of photographs (gray them, colorize, score, worst first)."""

from __future__ import annotations

import shutil

import numpy as np
from PIL import Image

from huescale import metrics
from huescale.atomic import write_csv
from huescale.evaluation.evaluate import score_folder, summarize_rows


def _gray_of(rgb: np.ndarray) -> np.ndarray:
    """The ab = 0 colorization: the photograph's own L, no colour (via the project's Lab)."""
    import torch

    from huescale.color import lab_normalized_to_rgb, rgb_to_uint8, uint8_to_lab_normalized

    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]
    L, ab = uint8_to_lab_normalized(x)
    return rgb_to_uint8(lab_normalized_to_rgb(L, torch.zeros_like(ab)))[0].permute(1, 2, 0).numpy()


def test_score_folder_known_answers_bad_and_gray_files(shared_data, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for f in sorted((shared_data / "benchmarks/Set5/GTmod12").iterdir()):
        shutil.copy(f, folder / f.name)
    Image.open(shared_data / "benchmarks/Set14/GTmod12/man.png").save(folder / "gray.png")  # R = G = B
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    files = sorted(folder.iterdir())

    rows, skipped = score_folder(files, _gray_of, max_side=200, progress=False)
    assert {s["file"].rsplit("/", 1)[-1] for s in skipped} == {"gray.png", "broken.jpg"}
    assert "broken.jpg" in next(s["reason"] for s in skipped if "broken" in s["file"])
    assert len(rows) == 5 and all(max(r["height"], r["width"]) <= 200 for r in rows)
    assert [r["mae"] for r in rows] == sorted((r["mae"] for r in rows), reverse=True)  # worst first
    for r in rows:  # an independent computation on the same resized image
        from huescale.data.images import read_image
        from huescale.resize import imresize

        rgb = read_image(folder / r["file"].rsplit("/", 1)[-1])
        k = 200 / max(rgb.shape[:2])
        small = imresize(rgb, (round(rgb.shape[0] * k), round(rgb.shape[1] * k)))
        assert abs(r["mae"] - metrics.mae(_gray_of(small), small)) < 1e-9
        assert r["colorfulness"] < 2 < r["colorfulness_truth"]  # gray output, colourful photographs

    perfect, _ = score_folder(files, lambda rgb: rgb, max_side=0, progress=False)
    assert all(r["mae"] == 0 and r["epsilon_accuracy"] == 100 for r in perfect)
    s = summarize_rows(rows)
    assert s["images"] == 5 and s["mae"] > 0 and s["psnr"] is not None
    write_csv(rows, tmp_path / "scores.csv")
    lines = (tmp_path / "scores.csv").read_text().splitlines()
    assert lines[0].startswith("file,height,width,mae") and len(lines) == 6
