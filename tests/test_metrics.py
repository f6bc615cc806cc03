"""Metrics against independent computations and hand-made cases with known answers."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from huescale import metrics
from huescale.evaluation import fid as fidmod


def test_identical_images(real_batch):
    m = metrics.compute(real_batch, real_batch, per="image")
    assert m["mae"] == 0 and m["epsilon_accuracy"] == 100.0 and m["ssim"] == 1.0 and m["psnr"] == float("inf")
    assert m["delta_e2000"] == 0.0 and m["colorfulness"] > 5


def test_colorfulness_and_delta_e_known_values(real_batch):
    from skimage.color import deltaE_ciede2000, rgb2lab

    gray = np.repeat(real_batch.mean(axis=-1, keepdims=True).astype(np.uint8), 3, axis=-1)
    assert metrics.colorfulness(gray) == 0.0
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 200  # rg = 200, yb = 100, no spread: M = 0.3 * sqrt(200^2 + 100^2)
    assert abs(metrics.colorfulness(red) - 0.3 * np.hypot(200, 100)) < 1e-9
    one = metrics.delta_e2000(gray[:1], real_batch[:1])
    ref = deltaE_ciede2000(rgb2lab(real_batch[0] / 255.0), rgb2lab(gray[0] / 255.0)).mean()
    assert one > 2.3 and abs(one - ref) < 1e-9


def test_constant_shift_of_13_levels(real_batch):
    target = np.clip(real_batch.astype(int), 0, 242).astype(np.uint8)
    pred = target.copy()
    pred[..., 1] += 13  # 13/255 > 5 %: no pixel within epsilon
    assert metrics.epsilon_accuracy(pred, target, 0.05) == 0.0
    assert abs(metrics.mae(pred, target) - 13 / 3) < 1e-9
    shifted12 = target.copy()
    shifted12[..., 1] += 12  # 12 <= 12.75: all within epsilon
    assert metrics.epsilon_accuracy(shifted12, target, 0.05) == 100.0


def test_psnr_and_ssim_match_skimage(real_batch):
    rng = np.random.default_rng(0)
    noisy = np.clip(real_batch + rng.normal(0, 8, real_batch.shape), 0, 255).astype(np.uint8)
    ref_psnr = np.mean([peak_signal_noise_ratio(t, p, data_range=255) for t, p in zip(real_batch, noisy)])
    ref_ssim = np.mean([structural_similarity(t, p, channel_axis=-1, data_range=255, gaussian_weights=True,
                                              sigma=1.5, use_sample_covariance=False)
                        for t, p in zip(real_batch, noisy)])
    assert abs(metrics.psnr(noisy, real_batch) - ref_psnr) < 1e-9
    assert abs(metrics.ssim(noisy, real_batch) - ref_ssim) < 1e-9


def test_y_channel_matches_bt601():
    rgb = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0]]], np.uint8)
    y = metrics.y_channel(rgb)
    assert np.allclose(y, [[235.0, 16.0, 16 + 65.481]])


def test_bicubic_x4_reproduces_published_sr_tables(shared_data):
    """The SR protocol is right before any model is scored: the bicubic rows of published x4 tables."""
    from huescale.evaluation import benchmark as bm
    from huescale.evaluation.reference import BICUBIC_X4

    for name, sub, tol_psnr in (("Set5", "GTmod12", 0.05), ("Set14", "GTmod12", 0.1), ("BSD100", "", 0.05)):
        folder = shared_data / "benchmarks" / name / sub
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))
        r = bm.sr_benchmark(files, scale=4)
        want_psnr, want_ssim = BICUBIC_X4[name]
        assert abs(r["psnr_y"] - want_psnr) <= tol_psnr, (name, r)
        assert abs(r["ssim_y"] - want_ssim) <= 0.005, (name, r)


def test_fid_real_statistics_cached_by_content_and_weights_from_a_path(real_batch, tmp_path):
    """The real pytorch-fid path with random weights given by path; the real set is embedded once."""
    from conftest import save_random_fid_weights

    weights = save_random_fid_weights(tmp_path / "th")
    assert fidmod.FID.available(weights) and not fidmod.FID.available(tmp_path / "none.pth")
    assert "evaluate.fid_weights" in fidmod.FID.missing_reason(tmp_path / "none.pth")
    fid = fidmod.FID("cpu", batch_size=8, weights=weights, cache_dir=tmp_path / "cache")
    real, fake = real_batch[:3], real_batch[3:6]
    mu, sigma = fid.real_statistics(real)
    assert mu.shape == (2048,) and sigma.shape == (2048, 2048) and fid.cache_hits == 0
    assert len(list((tmp_path / "cache").glob("fid_real_*.npz"))) == 1
    mu2, sigma2 = fid.real_statistics(real)
    assert fid.cache_hits == 1 and np.array_equal(mu, mu2) and np.array_equal(sigma, sigma2)
    changed = real.copy()
    changed[0, 0, 0, 0] ^= 1  # one bit of one pixel: another content hash
    fid.real_statistics(changed)
    assert len(list((tmp_path / "cache").glob("fid_real_*.npz"))) == 2 and fid.cache_hits == 1
    value = fid(fake, real)  # the real set's statistics come from the cache
    assert fid.cache_hits == 2 and np.isfinite(value) and value > 0


def test_fid_weights_from_a_path_leave_torch_hub_following_torch_home(real_batch, tmp_path, monkeypatch):
    """Loading FID weights from a path must not pin torch's hub folder: later TORCH_HOME changes (the VGG
    weights of the content losses) still count in the same process."""
    import torch

    from conftest import save_random_fid_weights

    weights = save_random_fid_weights(tmp_path / "th")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "before"))
    fidmod.FID("cpu", batch_size=8, weights=weights)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "after"))
    assert torch.hub.get_dir() == str(tmp_path / "after" / "hub")


def test_frechet_distance_equals_pytorch_fid(real_batch):
    """Our eigendecomposition form gives pytorch-fid's value (full-rank and singular covariances)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    x = real_batch.reshape(16, -1)[:, :48].astype(np.float64)  # real pixel features, 48-d
    rng = np.random.default_rng(0)
    for n in (200, 12):  # 200 samples: full rank; 12 samples: rank 11 < 48
        a = x[rng.integers(0, 16, n)] + rng.normal(0, 3, (n, 48))
        b = 0.8 * x[rng.integers(0, 16, n)] + rng.normal(5, 6, (n, 48))
        args = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
        ref = calculate_frechet_distance(*args)
        assert abs(fidmod.frechet_distance(*args) - ref) <= 1e-6 * abs(ref), n
    s = np.cov(x[:, :8], rowvar=False)
    assert abs(fidmod.frechet_distance(np.zeros(8), s, np.zeros(8), s)) < 1e-9 * np.trace(s)  # same Gaussian: 0


def test_colour_distribution_metrics_on_real_photos(real_batch):
    """Weight-free colour metrics: identical sets score perfectly; a gray set has no colour in common with the
    photographs beyond the gray bins, and its chroma EMD equals the photographs' mean chroma (all of it moved
    to 0); a uniform sepia tint scores badly although it is not gray."""
    from skimage.color import lab2rgb, rgb2lab

    from huescale.metrics import ab_histogram, chroma_emd, histogram_intersection

    def colour_distribution(pred, truth):
        return metrics.compute(pred, truth, per="set")

    photos = real_batch
    same = colour_distribution(photos, photos)
    assert same["hist_intersection"] == pytest.approx(1.0) and same["chroma_emd"] == pytest.approx(0.0, abs=1e-9)
    assert same["colorfulness_ratio"] == pytest.approx(1.0)
    lab = np.stack([rgb2lab(p) for p in photos])
    gray_lab = lab.copy()
    gray_lab[..., 1:] = 0
    gray = np.stack([np.round(lab2rgb(g) * 255).astype(np.uint8) for g in gray_lab])
    chroma = np.hypot(lab[..., 1], lab[..., 2]).mean()
    assert chroma_emd(gray, photos, max_pixels=10**9) == pytest.approx(chroma, rel=0.02)
    sepia_lab = gray_lab.copy()
    sepia_lab[..., 1], sepia_lab[..., 2] = 6.0, 18.0  # one brown-beige tint everywhere
    sepia = np.stack([np.round(lab2rgb(s) * 255).astype(np.uint8) for s in sepia_lab])
    tint = colour_distribution(sepia, photos)
    assert tint["hist_intersection"] < 0.5 * same["hist_intersection"]
    assert tint["colorfulness_ratio"] < 0.6 and tint["chroma_emd"] > 5
    h = ab_histogram(photos)
    assert h.shape == (22, 22) and h.sum() == pytest.approx(1.0)
    assert 0 < histogram_intersection(gray, photos) <= h[10:12, 10:12].sum() + 1e-9  # gray: mass in the 4 central bins

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula: implementation notes, supplementary test
# data, and mathematical observations", Color Res. Appl. 30(1), Table 1: L1 a1 b1 L2 a2 b2 and their Delta E00.
SHARMA_2005 = """
50.0000 2.6772 -79.7751 50.0000 0.0000 -82.7485 2.0425
50.0000 3.1571 -77.2803 50.0000 0.0000 -82.7485 2.8615
50.0000 2.8361 -74.0200 50.0000 0.0000 -82.7485 3.4412
50.0000 -1.3802 -84.2814 50.0000 0.0000 -82.7485 1.0000
50.0000 -1.1848 -84.8006 50.0000 0.0000 -82.7485 1.0000
50.0000 -0.9009 -85.5211 50.0000 0.0000 -82.7485 1.0000
50.0000 0.0000 0.0000 50.0000 -1.0000 2.0000 2.3669
50.0000 -1.0000 2.0000 50.0000 0.0000 0.0000 2.3669
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0009 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0010 7.1792
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0011 7.2195
50.0000 2.4900 -0.0010 50.0000 -2.4900 0.0012 7.2195
50.0000 -0.0010 2.4900 50.0000 0.0009 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0010 -2.4900 4.8045
50.0000 -0.0010 2.4900 50.0000 0.0011 -2.4900 4.7461
50.0000 2.5000 0.0000 50.0000 0.0000 -2.5000 4.3065
50.0000 2.5000 0.0000 73.0000 25.0000 -18.0000 27.1492
50.0000 2.5000 0.0000 61.0000 -5.0000 29.0000 22.8977
50.0000 2.5000 0.0000 56.0000 -27.0000 -3.0000 31.9030
50.0000 2.5000 0.0000 58.0000 24.0000 15.0000 19.4535
50.0000 2.5000 0.0000 50.0000 3.1736 0.5854 1.0000
50.0000 2.5000 0.0000 50.0000 3.2972 0.0000 1.0000
50.0000 2.5000 0.0000 50.0000 1.8634 0.5757 1.0000
50.0000 2.5000 0.0000 50.0000 3.2592 0.3350 1.0000
60.2574 -34.0099 36.2677 60.4626 -34.1751 39.4387 1.2644
63.0109 -31.0961 -5.8663 62.8187 -29.7946 -4.0864 1.2630
61.2901 3.7196 -5.3901 61.4292 2.2480 -4.9620 1.8731
35.0831 -44.1164 3.7933 35.0232 -40.0716 1.5901 1.8645
22.7233 20.0904 -46.6940 23.0331 14.9730 -42.5619 2.0373
36.4612 47.8580 18.3852 36.2715 50.5065 21.2231 1.4146
90.8027 -2.0831 1.4410 91.1528 -1.6435 0.0447 1.4441
90.9257 -0.5406 -0.9208 88.6381 -0.8985 -0.7239 1.5381
6.7747 -0.2908 -2.4247 5.8714 -0.0985 -2.2286 0.6377
2.0776 0.0795 -1.1350 0.9033 -0.0636 -0.5514 0.9082
"""


def test_delta_e2000_reproduces_the_34_published_pairs_of_sharma_2005():
    table = np.array([[float(v) for v in line.split()] for line in SHARMA_2005.strip().splitlines()])
    assert table.shape == (34, 7)
    for ref, lab in ((table[:, :3], table[:, 3:6]), (table[:, 3:6], table[:, :3])):  # both argument orders
        got = metrics.delta_e2000_lab(ref, lab)
        assert np.abs(got - table[:, 6]).max() < 5e-5  # the table's 4 decimals


def _ssim_wang2004(x: np.ndarray, y: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM of two 2-D images as Wang et al. 2004 define it (and their reference ssim_index.m computes it):
    an 11 x 11 Gaussian window with sigma 1.5 (normalised to sum 1), K1 = 0.01, K2 = 0.03, local statistics
    over the window at every position where it fits in the image ('valid'), the mean of the SSIM map.
    Independent of scikit-image: NumPy sliding windows only."""
    from numpy.lib.stride_tricks import sliding_window_view

    g = np.exp(-((np.arange(11) - 5) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g)
    w /= w.sum()

    def filt(img: np.ndarray) -> np.ndarray:
        return np.einsum("ijkl,kl->ij", sliding_window_view(img, (11, 11)), w)

    x, y = x.astype(np.float64), y.astype(np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = filt(x), filt(y)
    sxx, syy, sxy = filt(x * x) - mx**2, filt(y * y) - my**2, filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(s.mean())


def test_ssim_equals_an_independent_implementation_of_wang_2004(real_batch):
    """Colour SSIM is the mean of the per-channel SSIMs; both the colour and the one-channel (SR, Y) forms."""
    rng = np.random.default_rng(1)
    noisy = np.clip(real_batch + rng.normal(0, 12, real_batch.shape), 0, 255).astype(np.uint8)
    want = np.mean([np.mean([_ssim_wang2004(t[..., c], p[..., c]) for c in range(3)])
                    for p, t in zip(noisy, real_batch)])
    assert 0.3 < want < 0.95 and abs(metrics.ssim(noisy, real_batch) - want) < 1e-9
    y_noisy, y_true = metrics.y_channel(noisy, True), metrics.y_channel(real_batch, True)
    want_y = np.mean([_ssim_wang2004(t, p) for p, t in zip(y_noisy, y_true)])
    assert abs(metrics.ssim(y_noisy, y_true) - want_y) < 1e-9


def test_the_metric_table_selects_formats_and_lists_itself(real_batch, capsys):
    """The table computes what is asked (per image, per set, a subset), formats by its declaration, refuses an
    unknown name, and `huescale metrics` prints every row."""
    from huescale.cli import main

    sub = metrics.compute(real_batch, real_batch, ["psnr", "mae", "hist_intersection"])
    assert list(sub) == ["mae", "psnr", "hist_intersection"]  # the table's order, not the request's
    assert sub["mae"] == 0 and sub["hist_intersection"] == pytest.approx(1.0)
    per = metrics.per_image(real_batch[:3], real_batch[:3], ["ssim", "chroma_emd"])
    assert per == [{"ssim": 1.0}] * 3  # set metrics have no per-image value
    assert metrics.compute(real_batch, real_batch, ["fid"]) == {"fid": None}  # no network: never made up
    assert metrics.METRICS["psnr"].format(21.456) == "21.46" and metrics.METRICS["ssim"].format(None) == "—"
    assert metrics.METRICS["delta_e2000"].heading() == "ΔE2000 (Lab) ↓"
    with pytest.raises(KeyError, match="unknown metric.*sharpness"):
        metrics.select(["sharpness"])
    with pytest.raises(SystemExit) as done:
        main(["metrics"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in metrics.METRICS) and "Singh et al., eq. 5" in out


def test_one_formatter_for_every_table():
    """Reports, Markdown tables and the model card show a value the same way: None / NaN / inf as a dash,
    integers and strings as they are, NumPy and Python floats with the metric's digits."""
    from huescale.evaluation.tables import markdown_table
    from huescale.metrics import METRICS, format_value
    from huescale.pipeline.summary import metrics_markdown
    assert [format_value(v, 2) for v in (None, float("nan"), float("inf"), 3, "x", 0.12345, np.float32(0.5))] == \
        ["\u2014", "\u2014", "\u2014", "3", "x", "0.12", "0.50"]
    assert METRICS["psnr"].format(np.float32(21.456)) == "21.46"
    table = markdown_table(["m"], [(["a"], {"psnr": 21.456, "ssim": float("nan")})], names=["psnr", "ssim"])
    assert table.splitlines()[2] == "| a | 21.46 | \u2014 |"
    md = metrics_markdown({"sr_x4": {"bicubic": {"psnr_y": 27.5612}}})  # SSIM-Y missing: a dash, never 0
    assert "| bicubic | 27.56 | \u2014 |" in md.splitlines()
