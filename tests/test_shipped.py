"""The shipped model: fp16 package data with a model card, loaded back as float32 modules."""

from __future__ import annotations

import json

import pytest
import torch

from huescale import checkpoint, models, shipped


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
    assert "| set | 64 px | 0.80 | 9.00 | 10.00 |" in md and "dvc repro" in md
    loaded, _ = checkpoint.load_model(tmp_path / "assets" / "colorizer.pt")
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        ref, half = col.eval()(x), loaded.float()(x)
    assert (ref - half).abs().max() < 5e-3  # fp16 weights: the output changes by rounding only


def test_a_model_over_8_mb_is_refused(tmp_path):
    big = models.build("srresnet", features=128, n_blocks=16)
    checkpoint.save_model(big, "srresnet", {"features": 128, "n_blocks": 16}, tmp_path / "big.pt")
    with pytest.raises(ValueError, match="limit 8 MB"):
        shipped.ship(tmp_path / "big.pt", tmp_path / "big.pt", {}, tmp_path / "assets")
    assert not (tmp_path / "assets" / "colorizer.pt").exists()
