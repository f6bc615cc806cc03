"""The shipped model: fp16 package data with a model card, loaded back as float32 modules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from huescale import models
from huescale.inference import shipped
from huescale.training import checkpoint


def test_ship_writes_fp16_weights_and_a_card_that_load_back(tmp_path):
    torch.manual_seed(0)
    col, up = models.build("unet", base_channels=8), models.build("espcn", scale=4)
    checkpoint.save_model(col, "unet", {"base_channels": 8}, tmp_path / "c.pt")
    checkpoint.save_model(up, "espcn", {"scale": 4}, tmp_path / "u.pt")
    card = {"summary": "test", "git_commit": "abc", "data": "photos", "retrain": "dvc repro",
            "holdout": {"set": {"colorization_64": {
                "model": {"colorfulness_ratio": 0.8, "delta_e2000": 9.0, "mae": 10.0, "psnr": 22.0},
                "gray_baseline": {"colorfulness_ratio": 0.0, "delta_e2000": 10.0, "mae": 12.0, "psnr": 21.0}}}}}
    res = shipped.ship(tmp_path / "c.pt", tmp_path / "u.pt", card, tmp_path / "assets")
    assert res["bytes"] < (tmp_path / "c.pt").stat().st_size + (tmp_path / "u.pt").stat().st_size  # half the size
    ck = checkpoint.load(tmp_path / "assets" / "colorizer.pt")
    assert ck["dtype"] == "float16" and all(v.dtype == torch.float16 for v in ck["state_dict"].values()
                                            if v.is_floating_point())
    assert json.loads((tmp_path / "assets" / "MODEL_CARD.json").read_text())["git_commit"] == "abc"
    md = (tmp_path / "assets" / "MODEL_CARD.md").read_text()
    # the metric table's columns, in its order (those the card has), then gray's CIEDE2000
    assert "| set | size | MAE (8-bit levels) ↓ | PSNR (dB) ↑ | ΔE2000 (Lab) ↓ | colourfulness / truth's | " \
           "gray's ΔE2000 |" in md
    assert "| set | 64 px | 10.00 | 22.00 | 9.00 | 0.80 | 10.00 |" in md and "dvc repro" in md
    loaded, _ = checkpoint.load_model(tmp_path / "assets" / "colorizer.pt")
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        ref, half = col.eval()(x), loaded.float()(x)
    assert (ref - half).abs().max() < 5e-3  # fp16 weights: the output changes by rounding only


def test_a_model_over_25_mb_is_refused(tmp_path):
    big = models.build("srresnet", features=192, n_blocks=16)  # 10.7 M parameters: 2 x 21 MB in float16
    checkpoint.save_model(big, "srresnet", {"features": 192, "n_blocks": 16}, tmp_path / "big.pt")
    with pytest.raises(ValueError, match="limit 25 MB"):
        shipped.ship(tmp_path / "big.pt", tmp_path / "big.pt", {}, tmp_path / "assets")
    assert not (tmp_path / "assets" / "colorizer.pt").exists()


def test_colorize_without_a_checkpoint_uses_the_shipped_model_and_beats_gray(shared_data, tmp_path):
    """`huescale colorize DIR --out OUT` with no checkpoint: the model installed with the package, on the 200
    photographs of BSDS500 test (held out from its training, see its card), brings back colour that gray lacks
    without a CIEDE2000 much above gray's (the shipped model's held-out targets: docs/colour.md)."""
    import numpy as np
    from PIL import Image

    from huescale.cli import main
    from huescale.data.images import read_image
    from huescale.data.tiers import _center_square
    from huescale.metrics import colorfulness, delta_e2000
    from huescale.resize import imresize

    if not shipped.available():
        pytest.fail(f"{shipped.assets_dir()}: the shipped model is missing from the package (huescale ship)")
    card = json.loads((shipped.assets_dir() / "MODEL_CARD.json").read_text())
    assert "bsds500_test" in card["holdout"], "the test's photographs must be held out from the shipped model"
    src = tmp_path / "in"
    src.mkdir()
    truth = []
    for f in sorted((shared_data / "bsds500" / "test").glob("*.jpg")):
        img = imresize(_center_square(read_image(f)), (64, 64))
        truth.append(img)
        Image.fromarray(img).save(src / f"{f.stem}.png")
    with pytest.raises(SystemExit) as done:
        main(["colorize", str(src), "--out", str(tmp_path / "out"), "--threads", "2"])
    assert done.value.code in (0, None)
    out = np.stack([np.asarray(Image.open(tmp_path / "out" / f"{Path(f).stem}.png").convert("RGB"))
                    for f in sorted(p.name for p in src.iterdir())])
    truth = np.stack(truth)
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(truth / 255.0)
    lab[..., 1:] = 0  # the do-nothing baseline: the photograph's own L, no colour
    gray = np.round(lab2rgb(lab) * 255).astype(np.uint8)
    assert colorfulness(gray) < 1
    assert colorfulness(out) > 0.5 * colorfulness(truth)
    assert delta_e2000(out, truth) < 1.1 * delta_e2000(gray, truth)


def test_bf16_colorize_stays_within_noise_of_float32(shared_data, tmp_path):
    """`--amp bf16` (the default `auto` on CPUs with AMX or AVX512-BF16) changes the 4x output of held-out
    photographs by rounding only: under a gray level on average, and its CIEDE2000 to the originals moves by under
    2 %; `--amp off` is the float32 path bit for bit. (The shipped colornet moved under 1 %; the pretrained-encoder
    colorizer, whose decoding amplifies the regression head x1.5, moved 1.2 % on these six photographs, 13.92 ->
    13.75, on an AVX512-BF16 host.)"""
    import numpy as np
    from PIL import Image

    from huescale.cli import main
    from huescale.data.images import read_image
    from huescale.inference.tiling import Colorizer
    from huescale.metrics import delta_e2000
    from huescale.resize import imresize

    src = tmp_path / "in"
    src.mkdir()
    truth = {}
    for f in sorted((shared_data / "bsds500" / "test").glob("*.jpg"))[:6]:
        hr = read_image(f)[:320, :320]
        truth[f.stem] = hr
        Image.fromarray(imresize(hr, (80, 80))).save(src / f"{f.stem}.png")
    outs = {}
    for amp in ("off", "bf16"):
        with pytest.raises(SystemExit) as done:
            main(["colorize", str(src), "--out", str(tmp_path / amp), "--scale", "4", "--amp", amp, "--threads", "2"])
        assert done.value.code in (0, None)
        outs[amp] = {k: np.asarray(Image.open(tmp_path / amp / f"{k}.png").convert("RGB")) for k in truth}
    col, up, _ = shipped.load("cpu")
    ref = Colorizer(col, up, scale=4)(np.asarray(Image.open(src / f"{next(iter(truth))}.png").convert("RGB")))
    assert np.array_equal(ref, outs["off"][next(iter(truth))])  # --amp off: the float32 path
    diff = np.mean([np.abs(outs["off"][k].astype(int) - outs["bf16"][k].astype(int)).mean() for k in truth])
    assert 0 < diff < 1.0  # bf16 did run (outputs differ) and by rounding only
    de = {amp: np.mean([delta_e2000(outs[amp][k], truth[k]) for k in truth]) for amp in outs}
    assert abs(de["bf16"] - de["off"]) < 0.02 * de["off"], de
