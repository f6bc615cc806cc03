"""`huescale colorize` and `huescale export-onnx` on real photographs (../shared/data/benchmarks).

Models are freshly initialised (seeded) and saved with checkpoint.save_model:
speed and correctness of the inference code do not depend on training. The
ESPCN's last layer is re-initialised away from zero so the upscaler differs from
bicubic and the tiling test sees a real receptive field.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from huescale import models
from huescale.cli import main
from huescale.color import L_SCALE
from huescale.data.images import read_image
from huescale.inference.tiling import Colorizer, l_normalized, receptive_radius
from huescale.inference.writer import colorize_to_file
from huescale.resize import imresize
from huescale.training import checkpoint

JOINT_KWARGS = {"base_channels": 4, "n_blocks": 2, "n_up_blocks": 1}  # the real `joint` model, tiny


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    """Seeded, untrained colorizer / upscaler / joint checkpoints (save_model -> load_model path)."""
    d = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    col = models.build("unet", depth=3, base_channels=8)
    up = models.build("espcn", scale=4, features=16)
    nn.init.normal_(up.body[4].weight, std=0.05)
    with torch.no_grad():  # moderate colours (|ab| <~ 30), so gamut clipping rarely moves L
        col.head[0].weight.mul_(0.3)
        col.head[0].bias.zero_()
    joint = models.build("joint", **JOINT_KWARGS)
    paths = {"colorizer": d / "colorizer.pt", "upscaler": d / "upscaler.pt", "joint": d / "joint.pt"}
    checkpoint.save_model(col, "unet", {"depth": 3, "base_channels": 8}, paths["colorizer"])
    checkpoint.save_model(up, "espcn", {"scale": 4, "features": 16}, paths["upscaler"])
    checkpoint.save_model(joint, "joint", JOINT_KWARGS, paths["joint"])
    return paths


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for these small images: on the shared 2-core CI, two OpenMP threads under
    load spend 10-50x longer at barriers than the work takes (measured on kornia's Lab conversion)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cli(capsys, *argv: str) -> tuple[int, str]:
    """Run `huescale ...` in process; returns (exit status, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    code = exc.value.code
    err = capsys.readouterr().err
    if isinstance(code, str):  # sys.exit("message")
        return 1, err + code
    return int(code or 0), err


def _lab_L(rgb: np.ndarray) -> np.ndarray:
    """L in [0, 100] of an H x W x 3 uint8 image."""
    return ((l_normalized(rgb)[0, 0] + 1) * L_SCALE).numpy()


def test_colorize_every_benchmark_photo_at_scale_1(ckpts, shared_data, tmp_path, capsys):
    """All of Set5, Set14 (GTmod12 and LRbicx4) and BSD100: same size, L kept, colour added, tree kept."""
    bench = shared_data / "benchmarks"
    inputs = sorted(f for f in bench.rglob("*") if f.suffix.lower() in (".png", ".jpg"))
    assert len(inputs) >= 100 + 10 + 28
    code, err = _cli(capsys, "colorize", bench, "--out", tmp_path, "--checkpoint", ckpts["colorizer"],
                     "--device", "cpu")
    assert code == 0, err
    for f in inputs:
        out = tmp_path / f.relative_to(bench)  # same-named Set14 GTmod12 / LRbicx4 photos both kept
        a, b = read_image(f), np.asarray(Image.open(out))
        assert b.shape == a.shape, f
        # the DDColor recipe keeps the input's L: only gamut clipping and 8-bit rounding move it
        assert np.abs(_lab_L(a) - _lab_L(b)).mean() < 1.0, f
    spread = np.ptp(np.asarray(Image.open(tmp_path / "Set5/GTmod12/butterfly.png")).astype(int), axis=2)
    assert spread.mean() > 1.0  # colour was added to the gray input
    assert not list(tmp_path.rglob(".*.tmp"))


def test_colorize_scale_4_bad_files_among_good(ckpts, shared_data, tmp_path, capsys):
    """x4 on a few LR photos next to broken, empty and truncated files and a missing path: each named, rest done."""
    src = tmp_path / "in"
    src.mkdir()
    good = sorted((shared_data / "benchmarks/Set5/LRbicx4").glob("*.png"))[:3]
    for f in good:
        shutil.copy(f, src / f.name)
    (src / "broken.jpg").write_text("not an image")
    (src / "empty.png").write_bytes(b"")
    data = good[0].read_bytes()
    (src / "truncated.png").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    code, err = _cli(capsys, "colorize", src, tmp_path / "missing.jpg", "--out", out, "--scale", "4",
                     "--checkpoint", ckpts["colorizer"], "--upscaler", ckpts["upscaler"], "--format", "jpg")
    assert code == 1
    for name in ("broken.jpg", "empty.png", "truncated.png", "missing.jpg"):
        assert name in err
    assert "4 input(s) failed" in err
    for f in good:
        a, b = read_image(f), np.asarray(Image.open(out / (f.stem + ".jpg")))
        assert b.shape == (a.shape[0] * 4, a.shape[1] * 4, 3)
        # the output L follows the input L (upscaled): correlation with a bicubic x4 of the input
        ref = imresize(_lab_L(a), b.shape[:2])
        assert np.corrcoef(ref.ravel(), _lab_L(b).ravel())[0, 1] > 0.9
    assert sorted(p.name for p in out.iterdir()) == sorted(f.stem + ".jpg" for f in good)
    code, err = _cli(capsys, "colorize", *good, "--out", tmp_path / "one.png", "--checkpoint", ckpts["colorizer"])
    assert code == 1 and "names one file but 3 images" in err and not (tmp_path / "one.png").exists()


def test_tiled_equals_untiled_on_a_real_photo(ckpts, shared_data, tmp_path):
    """Tiles with the measured overlap reproduce the one-piece result; without overlap they do not."""
    col, _ = checkpoint.load_model(ckpts["colorizer"])
    up, _ = checkpoint.load_model(ckpts["upscaler"])
    assert receptive_radius(up, 4) == 4  # conv5x5 + conv3x3 + conv3x3 at LR: 2 + 1 + 1
    rgb = read_image(shared_data / "benchmarks/Set14/GTmod12/baboon.png")[:150, :133]  # odd sizes: edge tiles
    for scale, u in ((4, up), (1, None)):
        whole = Colorizer(col, u, scale=scale, tile=4096)(rgb)
        tiled = Colorizer(col, u, scale=scale, tile=32)
        assert tiled.n_tiles(*rgb.shape[:2]) > 1
        got = tiled(rgb)
        assert got.shape == (150 * scale, 133 * scale, 3)
        assert np.abs(got.astype(int) - whole).max() <= 1
        colorize_to_file(tiled, rgb, tmp_path / f"x{scale}.png")  # the streamed PNG writer
        assert np.array_equal(np.asarray(Image.open(tmp_path / f"x{scale}.png")), got)
    seams = Colorizer(col, up, scale=4, tile=32, margin=0)(rgb)
    assert np.abs(seams.astype(int) - Colorizer(col, up, scale=4, tile=4096)(rgb)).max() > 2


def test_16bit_rgba_exif_and_single_output_file(ckpts, shared_data, tmp_path, capsys):
    """16-bit gray PNG, RGBA with a transparent hole (white), EXIF-rotated JPEG; --out FILE picks the format."""
    rgb = read_image(shared_data / "benchmarks/Set5/GTmod12/bird.png")
    gray16 = (np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(gray16).save(tmp_path / "gray16.png")
    assert Image.open(tmp_path / "gray16.png").mode.startswith("I")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:40, :40, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(rgb[:, :200]).save(tmp_path / "rotated.jpg", exif=exif)
    for name, fmt in (("gray16.png", ".webp"), ("rgba.png", ".png"), ("rotated.jpg", ".tif")):
        dest = tmp_path / f"out_{Path(name).stem}{fmt}"
        code, err = _cli(capsys, "colorize", tmp_path / name, "--out", dest, "--checkpoint", ckpts["colorizer"])
        assert code == 0, err
        a, b = read_image(tmp_path / name), np.asarray(Image.open(dest).convert("RGB"))
        assert Image.open(dest).format == {".webp": "WEBP", ".png": "PNG", ".tif": "TIFF"}[fmt]
        assert b.shape == a.shape
        tol = 2.0 if fmt == ".webp" else 1.0  # WebP is lossy
        assert np.abs(_lab_L(a) - _lab_L(b)).mean() < tol
    assert _lab_L(np.asarray(Image.open(tmp_path / "out_rgba.png")))[:40, :40].min() > 95  # white under alpha 0
    assert np.asarray(Image.open(tmp_path / "out_rotated.tif")).shape[:2] == (200, rgb.shape[0])  # EXIF applied


def test_model_champion_from_a_real_mlflow_registry(ckpts, shared_data, tmp_path, capsys, monkeypatch):
    """--model champion loads what register_champion registered (same output as --checkpoint); clear errors."""
    import mlflow

    from huescale import tracking
    from huescale.pipeline import champion

    photo = shared_data / "benchmarks/Set5/GTmod12/head.png"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    code, err = _cli(capsys, "colorize", photo, "--out", tmp_path / "none", "--model", "champion",
                     "--tracking-uri", f"sqlite:///{tmp_path / 'absent.db'}")
    assert code == 1 and "absent.db" in err and "not found" in err
    exp = mlflow.create_experiment("infer-test", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        pass
    code, err = _cli(capsys, "colorize", photo, "--out", tmp_path / "none", "--model", "champion", "--tracking-uri", uri)
    assert code == 1 and "no MLflow model 'huescale-colorizer' with alias 'champion'" in err
    champion.register(ckpts["colorizer"], run.info.run_id, 0.123)
    params = tmp_path / "params.yaml"  # tracking.uri from a params file, relative to it
    from conftest import default_params_text

    params.write_text(default_params_text())
    params.write_text(params.read_text().replace("uri: sqlite:///mlflow.db", "uri: sqlite:///mlflow.db  # test"))
    code, err = _cli(capsys, "colorize", photo, "--out", tmp_path / "champ.png", "--model", "champion",
                     "--params", params)
    assert code == 0, err
    code, err = _cli(capsys, "colorize", photo, "--out", tmp_path / "ckpt.png", "--checkpoint", ckpts["colorizer"])
    assert code == 0, err
    assert np.array_equal(np.asarray(Image.open(tmp_path / "champ.png")), np.asarray(Image.open(tmp_path / "ckpt.png")))


def test_joint_pipeline_contract(ckpts, shared_data, tmp_path, capsys):
    """--pipeline joint: ab from the joint model at 256 resized to any size; its own L for a 64 x 64 input."""
    joint, _ = checkpoint.load_model(ckpts["joint"])
    photo = tmp_path / "butterfly64.png"  # 64 x 64: exactly the joint model's task
    Image.fromarray(imresize(read_image(shared_data / "benchmarks/Set5/GTmod12/butterfly.png"), (64, 64))).save(photo)
    rgb = read_image(photo)
    code, err = _cli(capsys, "colorize", photo, "--out", tmp_path / "j4.png", "--pipeline", "joint", "--scale", "4",
                     "--checkpoint", ckpts["joint"])
    assert code == 0, err
    with torch.no_grad():
        lab = joint(l_normalized(rgb))
    from huescale.color import lab_normalized_to_rgb, rgb_to_uint8

    expected = rgb_to_uint8(lab_normalized_to_rgb(lab[:, :1], lab[:, 1:]))[0].permute(1, 2, 0).numpy()
    assert np.abs(np.asarray(Image.open(tmp_path / "j4.png")).astype(int) - expected).max() <= 1
    big = shared_data / "benchmarks/Set14/GTmod12/comic.png"  # any size: L bicubic x4 (or --upscaler), ab resized
    for scale in ("1", "4"):
        code, err = _cli(capsys, "colorize", big, "--out", tmp_path / f"c{scale}.png", "--pipeline", "joint",
                         "--scale", scale, "--checkpoint", ckpts["joint"], "--tile", "64")
        assert code == 0, err
        a, b = read_image(big), np.asarray(Image.open(tmp_path / f"c{scale}.png"))
        assert b.shape == (a.shape[0] * int(scale), a.shape[1] * int(scale), 3)
    code, err = _cli(capsys, "colorize", big, "--out", tmp_path / "u4.png", "--pipeline", "joint", "--scale", "4",
                     "--checkpoint", ckpts["joint"], "--upscaler", ckpts["upscaler"])  # L from the upscaler
    assert code == 0, err
    u4, c4 = np.asarray(Image.open(tmp_path / "u4.png")), np.asarray(Image.open(tmp_path / "c4.png"))
    assert u4.shape == c4.shape and not np.array_equal(u4, c4)
    code, err = _cli(capsys, "colorize", big, "--out", tmp_path / "bad.png", "--pipeline", "joint",
                     "--checkpoint", ckpts["colorizer"])
    assert code == 1 and "not a joint generator" in err


def test_export_onnx_matches_pytorch_on_real_photos(ckpts, shared_data, tmp_path, capsys):
    """export-onnx: both models, dynamic batch and spatial axes, onnxruntime == PyTorch on real photos."""
    from huescale.inference.export import BicubicUpsample

    L = l_normalized(read_image(shared_data / "benchmarks/Set14/LRbicx4/zebra.png"))
    assert (BicubicUpsample(4)(L) - imresize(L, (L.shape[-2] * 4, L.shape[-1] * 4))).abs().max() < 1e-5
    with pytest.raises(SystemExit) as exc:
        main(["export-onnx", "--checkpoint", str(ckpts["colorizer"]), "--upscaler", str(ckpts["upscaler"]),
              "--out", str(tmp_path), "--images", str(shared_data / "benchmarks/Set5/LRbicx4"),
              str(shared_data / "benchmarks/Set14/LRbicx4/zebra.png")])
    report = json.loads(capsys.readouterr().out)  # stdout is the JSON report only
    assert exc.value.code == 0 and report["ok"]
    for name in ("colorizer", "upscaler"):
        assert (tmp_path / f"{name}.onnx").is_file()
        assert 0 <= report[name]["max_abs_diff"] <= 1e-4
    assert len(set(report["upscaler"]["checked_shapes"])) >= 3  # several spatial sizes through one graph
    assert report["colorizer"]["checked_shapes"] == ["6x1x64x64"]  # batch 6 through a graph exported at 2
    assert report["colorizer"]["exported_with"] == "2x1x64x64"
    assert "2x1x" + report["upscaler"]["exported_with"].split("x", 2)[2] in report["upscaler"]["checked_shapes"]
    code, err = _cli(capsys, "export-onnx", "--checkpoint", tmp_path / "nope.pt", "--out", tmp_path)
    assert code == 1 and "nope.pt" in err
