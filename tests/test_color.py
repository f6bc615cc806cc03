"""Lab conversion against scikit-image on real photographs (docs/architecture.md)."""

import numpy as np
import torch
from skimage.color import lab2rgb, rgb2lab

from huescale import color
from huescale.data.images import read_image


def test_rgb_to_lab_matches_skimage_on_photos(photos):
    for f in photos[:6]:
        rgb = read_image(f)[:200, :200]
        ref = rgb2lab(rgb)  # float64, L in [0, 100]
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        lab = color.rgb_to_lab(color.uint8_to_rgb(x))[0].permute(1, 2, 0).numpy()
        err = np.abs(lab - ref).reshape(-1, 3).max(axis=0)
        assert err.max() < 1e-3, f"{f.name}: max |dL|, |da|, |db| = {err}"


def test_lab_to_rgb_matches_skimage_and_round_trips(photos):
    rgb = read_image(photos[0])[:128, :128]
    lab = rgb2lab(rgb)
    ours = color.lab_to_rgb(torch.from_numpy(lab).float().permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - lab2rgb(lab)).max() < 1e-3
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    L, ab = color.uint8_to_lab_normalized(x)
    assert L.min() >= -1 and L.max() <= 1 and ab.abs().max() <= 1
    back = color.rgb_to_uint8(color.lab_normalized_to_rgb(L, ab))
    assert (back.int() - x.int()).abs().max() <= 1


def test_shape_errors_are_clear():
    import pytest

    with pytest.raises(ValueError, match="N x 3"):
        color.rgb_to_lab(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="differ"):
        color.lab_normalized_to_rgb(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 8, 8))
