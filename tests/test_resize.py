"""MATLAB-compatible bicubic: reproduces the published LRbicx4 images of Set5 and Set14."""

import numpy as np
import torch
from PIL import Image

from huescale.resize import imresize, resize_matrix


def test_reproduces_matlab_lrbicx4_set5(shared_data):
    hr_dir = shared_data / "benchmarks" / "Set5" / "GTmod12"
    lr_dir = shared_data / "benchmarks" / "Set5" / "LRbicx4"
    files = sorted(hr_dir.glob("*.png"))
    assert len(files) == 5
    for f in files:
        hr = np.asarray(Image.open(f).convert("RGB"))
        lr_ref = np.asarray(Image.open(lr_dir / f.name).convert("RGB"))
        lr = imresize(hr, (hr.shape[0] // 4, hr.shape[1] // 4))
        diff = np.abs(lr.astype(int) - lr_ref.astype(int))
        assert diff.max() <= 1, f"{f.name}: max difference {diff.max()} gray levels"


def test_torch_and_numpy_agree_and_rows_sum_to_one(photos):
    a = np.asarray(Image.open(photos[0]).convert("RGB"))[:96, :128].astype(np.float64)
    n = imresize(a, (24, 32))
    t = imresize(torch.from_numpy(a).permute(2, 0, 1).double(), (24, 32)).permute(1, 2, 0).numpy()
    assert np.abs(n - t).max() < 1e-9
    for i, o in ((64, 256), (256, 64), (320, 256)):
        assert np.allclose(resize_matrix(i, o).sum(axis=1), 1.0)


def test_constant_image_stays_constant():
    x = np.full((40, 60, 3), 77, np.uint8)
    assert (imresize(x, (10, 15)) == 77).all() and (imresize(x, (160, 240)) == 77).all()


def test_store_downscale_equals_imresize(photos):
    """The pair store's sparse MATLAB bicubic 256 -> 64 gives exactly imresize's output (uint8)."""
    from huescale.data.images import read_image
    from huescale.data.tiers import _center_square, matlab_downscale

    for f in photos[:6]:
        a = np.ascontiguousarray(_center_square(read_image(f))[:256, :256])
        assert np.array_equal(matlab_downscale(a, (64, 64)), imresize(a, (64, 64)))
