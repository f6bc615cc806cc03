"""Colour classification (Zhang et al. 2016): gamut bins, the rebalancing prior, the rebalanced soft
cross-entropy, ColorNet and its decodings, the decoding calibration, and a short real training run that
must leave the sepia of L1 regression behind."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from huescale import models
from huescale.abbins import SOFT_K, SOFT_SIGMA, ABBins, gamut_centers, rebalanced_cross_entropy
from huescale.color import AB_SCALE, uint8_to_lab_normalized
from huescale.config import Config, DataConfig
from huescale.data.source_base import FolderSource
from huescale.data.sources import list_images
from huescale.data.store import PairStore
from huescale.data.store_build import build_pair_store
from huescale.metrics import colorfulness
from huescale.models.pipelines import lab_to_uint8
from huescale.training import calibrate, checkpoint, recipe
from huescale.training.colour_losses import HeadL1Loss, RebalancedCELoss
from huescale.training.loss_registry import LossContext, LossInput
from huescale.training.tasks import COLORIZATION

SMALL = {"depth": 4, "base_channels": 8, "convs": 1, "global_dim": 16, "head_stride": 2}


def _lab(batch: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return uint8_to_lab_normalized(torch.from_numpy(batch).permute(0, 3, 1, 2))


def test_gamut_bins_cover_every_real_pixel_and_only_reachable_cells(real_batch):
    """The bins are the 10-unit a*b* cells sRGB reaches (Zhang et al.: 313 in theory, ~260 at this sampling):
    every pixel of real photographs lies within half a cell diagonal of a centre, and no centre is far out."""
    c = gamut_centers()
    assert 200 < len(c) < 330 and c.abs().max() <= 1.0
    bins = ABBins()
    _, ab = _lab(real_batch)
    _, d2 = bins.nearest(ab)
    assert d2.sqrt().max() <= 10 * math.sqrt(2) / 2 + 1e-3  # inside its cell
    raw = c * AB_SCALE
    assert torch.allclose(raw / 10, torch.round(raw / 10), atol=1e-4)  # centres on the grid


def test_prior_and_rebalancing_weights_from_real_photographs(real_batch):
    """Zhang et al. eq. 4: the prior sums to 1, E_prior[w] = 1, the commonest (near-gray) colours weigh less than
    1 and rare saturated ones more; the counts are exact, so batching does not change anything."""
    _, ab = _lab(real_batch)
    one, two = ABBins(), ABBins()
    one.fit([ab])
    two.fit([ab[:5], ab[5:11], ab[11:]])
    assert torch.equal(one.prior, two.prior) and torch.equal(one.weights, two.weights) and bool(one.fitted)
    assert one.prior.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert (one.prior * one.weights).sum().item() == pytest.approx(1.0, abs=1e-4)
    gray = one.nearest(torch.zeros(1, 2, 1, 1))[0].item()
    assert one.weights[gray] < 1 < one.weights.max()
    chroma = one.centers.norm(dim=1)
    assert one.weights[chroma > 0.5].mean() > 3 * one.weights[gray]
    with pytest.raises(ValueError, match="no training pixels"):
        ABBins().fit([])


def test_rebalanced_cross_entropy_equals_the_dense_soft_encoding(real_batch):
    """The sparse k-nearest soft CE equals the formula computed densely (all Q bins, Gaussian of sigma 5 over the
    5 nearest), with and without the rebalancing weights; a coarser head gets the target average-pooled."""
    _, ab = _lab(real_batch[:4])
    bins = ABBins()
    bins.fit([ab])
    torch.manual_seed(0)
    logits = torch.randn(4, bins.n_bins, 64, 64)
    x = ab.permute(0, 2, 3, 1).reshape(-1, 2) * AB_SCALE
    d2 = torch.cdist(x.double(), bins.centers.double() * AB_SCALE).pow(2)
    near = d2.topk(SOFT_K, largest=False)
    target = torch.zeros_like(d2).scatter_(1, near.indices, torch.softmax(-near.values / (2 * SOFT_SIGMA**2), 1))
    logp = torch.log_softmax(logits.double(), 1).permute(0, 2, 3, 1).reshape(-1, bins.n_bins)
    ce = -(target * logp).sum(1)
    w = bins.weights.double()[near.indices[:, 0]]
    assert rebalanced_cross_entropy(logits, ab, bins.centers, None).item() == pytest.approx(ce.mean().item(), rel=1e-4)
    assert rebalanced_cross_entropy(logits, ab, bins.centers, bins.weights).item() == \
        pytest.approx((w * ce).mean().item(), rel=1e-4)
    coarse = rebalanced_cross_entropy(logits[..., ::2, ::2], ab, bins.centers, bins.weights)
    pooled = torch.nn.functional.avg_pool2d(ab, 2)
    assert coarse.item() == pytest.approx(
        rebalanced_cross_entropy(logits[..., ::2, ::2], pooled, bins.centers, bins.weights).item(), rel=1e-6)
    with pytest.raises(ValueError, match="logits for"):
        rebalanced_cross_entropy(logits[:, :10], ab, bins.centers, None)


def test_colornet_outputs_decodings_and_checkpoint_round_trip(real_batch, tmp_path):
    """forward gives ab in [-1, 1] at the input size; return_aux adds the heads at stride 2 and the bins; the three
    decodings differ; the chosen decoding and the fitted prior survive save_model / load_model."""
    L, ab = _lab(real_batch[:4])
    net = models.build("colornet", **SMALL).eval()
    net.bins.fit([ab])
    out, aux = net(L, return_aux=True)
    assert out.shape == (4, 2, 64, 64) and out.abs().max() <= 1
    assert aux["logits"].shape == (4, net.bins.n_bins, 32, 32) and aux["reg"].shape == (4, 2, 32, 32)
    assert aux["bin_centers"] is net.bins.centers and aux["bin_weights"] is net.bins.weights
    a, r, b = (net.decode(aux, m, 0.38, 1.0, 0.5) for m in ("annealed", "regression", "blend"))
    assert not torch.allclose(a, r) and torch.allclose(b, (0.5 * (a + r)).clamp(-1, 1), atol=1e-5)
    net.set_decoding("regression", gain=2.0)
    assert net.decoding == {"mode": "regression", "T": pytest.approx(0.38), "gain": 2.0, "alpha": 1.0}
    checkpoint.save_model(net, "colornet", SMALL, tmp_path / "c.pt")
    back, _ = checkpoint.load_model(tmp_path / "c.pt")
    assert back.decoding["mode"] == "regression" and torch.equal(back.bins.weights, net.bins.weights)
    assert torch.allclose(back(L), net(L))
    with pytest.raises(ValueError, match="multiple of 16"):
        net(L[..., :40, :40])
    with pytest.raises(ValueError, match="decoding"):
        net.set_decoding("mode", T=0.38)


def test_the_head_losses_need_a_classification_colorizer(real_batch):
    L, ab = _lab(real_batch[:2])
    unet = models.build("unet", depth=2, base_channels=8)
    inp = LossInput(L, unet(L), ab, COLORIZATION, {})
    for loss in (RebalancedCELoss, HeadL1Loss):
        with pytest.raises(ValueError, match="colornet"):
            loss(LossContext(COLORIZATION))(inp)


def test_calibration_rule():
    """Among decodings at least min_colourfulness as colourful as the photographs, the lowest CIEDE2000; none
    there: the most colourful; gray is never chosen."""
    table = {"gray": {"colourfulness_ratio": 0.0, "delta_e2000": 1.0},
             "a": {"colourfulness_ratio": 0.5, "delta_e2000": 2.0},
             "b": {"colourfulness_ratio": 0.85, "delta_e2000": 4.0},
             "c": {"colourfulness_ratio": 1.1, "delta_e2000": 3.5}}
    assert calibrate.choose(table, 0.8) == "c"
    assert calibrate.choose(table, 1.2) == "c"
    assert calibrate.choose({k: v for k, v in table.items() if k != "c"}, 0.8) == "b"
    assert calibrate.choose({k: v for k, v in table.items() if k != "c"}, 0.9) == "b"  # the most colourful
    assert calibrate.choose(table, 0.0) == "a"
    # a garish decoding (e.g. an untrained regression head) never qualifies: the most colourful under the ceiling
    garish = {**table, "b": {"colourfulness_ratio": 0.79, "delta_e2000": 4.0},
              "c": {"colourfulness_ratio": 2.6, "delta_e2000": 28.0}}
    assert calibrate.choose(garish, 0.8) == "b"
    assert calibrate.choose({"gray": table["gray"], "c": garish["c"]}, 0.8) == "c"


@pytest.fixture(scope="module")
def bsds_store(shared_data, tmp_path_factory) -> PairStore:
    out = tmp_path_factory.mktemp("bsds") / "pairs"
    refs = list_images(FolderSource([shared_data / "bsds500" / "train"]))
    build_pair_store(refs, DataConfig(source="folder", folders=["x"], n_images=200, workers=1), out, progress=False)
    return PairStore(out)


def test_short_training_fits_the_prior_and_calibration_makes_colour(bsds_store, tmp_path):
    """A real (short) run of the recipe with ab_ce + reg_l1 on BSDS500 photographs: run_phase fits the prior
    from the training split before the first step, the losses fall, and the calibrated decoding is more
    colourful on validation photographs than the mean-seeking T = 1 decoding and than gray."""
    cfg = Config()
    cfg.runtime.amp, cfg.runtime.channels_last = "off", False
    cfg.model.colorizer.name, cfg.model.colorizer.kwargs = "colornet", dict(SMALL)
    o = cfg.pretrain.colorizer
    o.epochs, o.batch_size, o.lr, o.max_batches, o.lr_schedule = 3, 16, 3e-3, 8, "cosine"
    o.losses = {"ab_ce": 1.0, "reg_l1": 5.0}
    r = recipe.build(cfg, "colorizer", "pretrain")
    assert not bool(r.netG.bins.fitted)
    res = recipe.run_phase(r, bsds_store, "pretrain_colorizer", tmp_path / "best.pt", tmp_path / "h.csv",
                           tmp_path / "state.pt", progress=False)
    first, last = res.history[0].values, res.history[-1].values
    assert last["loss_G_CE"] < first["loss_G_CE"] and last["loss_G_reg_L1"] < first["loss_G_reg_L1"]
    # the best epoch is the one with the lowest validation objective, not the lowest decoded L1
    assert res.best_val == min(h.values["val_objective"] for h in res.history)
    assert checkpoint.load(tmp_path / "best.pt")["val_selected"] == res.best_val
    net = res.load()
    assert bool(net.bins.fitted) and net.bins.weights.max() > 1
    images = bsds_store.images("val", "gt64")
    cal = calibrate.calibrate_checkpoint(tmp_path / "best.pt", images, 0.8)
    table, chosen = cal["table"], cal["chosen"]
    assert table["gray"]["colourfulness_ratio"] < 0.05
    assert table[chosen]["colourfulness_ratio"] > table["annealed_T1"]["colourfulness_ratio"]
    back = res.load()
    assert calibrate.candidate_name(*[back.decoding[k] for k in ("mode", "T", "gain", "alpha")]) == chosen
    L, _ = _lab(images[:16])
    with torch.no_grad():
        out = lab_to_uint8(L, back(L)).permute(0, 2, 3, 1).numpy()
    assert colorfulness(out) > 0.3 * colorfulness(images[:16])


def test_recipe_check_refuses_head_losses_on_a_plain_regressor():
    cfg = Config()
    cfg.pretrain.colorizer.losses = {"ab_ce": 1.0}
    with pytest.raises(ValueError, match="pretrain.colorizer.losses.ab_ce.*colornet"):
        recipe.check(cfg, ("colorizer",), adversarial=False)
