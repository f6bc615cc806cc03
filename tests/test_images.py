"""The one image reader on bad and odd input, each file made by the test from a real photograph."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from huescale.data.images import ImageError, is_grayscale, read_image


@pytest.fixture
def photo(photos) -> Image.Image:
    return Image.open(photos[1]).convert("RGB")


def test_reads_real_photo(photos):
    a = read_image(photos[0])
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3


@pytest.mark.parametrize("reason,make", [
    ("empty", lambda p, im: p.write_bytes(b"")),
    ("not_an_image", lambda p, im: p.write_text("this is text, not a JPEG")),
    ("truncated", lambda p, im: (im.save(p, "JPEG"), p.write_bytes(p.read_bytes()[: p.stat().st_size // 3]))),
])
def test_unusable_files_raise_with_reason_and_name(tmp_path, photo, reason, make):
    p = tmp_path / "bad.jpg"
    make(p, photo)
    with pytest.raises(ImageError) as e:
        read_image(p)
    assert e.value.reason == reason and "bad.jpg" in str(e.value)


def test_decompression_bomb_guard(tmp_path, photo):
    p = tmp_path / "big.png"
    photo.save(p)
    with pytest.raises(ImageError, match="decompression-bomb") as e:
        read_image(p, max_pixels=1000)
    assert e.value.reason == "too_large"


def test_modes_are_converted(tmp_path, photo):
    ref = np.asarray(photo)
    photo.convert("CMYK").save(tmp_path / "cmyk.jpg")
    assert read_image(tmp_path / "cmyk.jpg").shape == ref.shape
    rgba = photo.convert("RGBA")
    rgba.putalpha(0)  # fully transparent -> white
    rgba.save(tmp_path / "rgba.png")
    assert (read_image(tmp_path / "rgba.png") == 255).all()
    g16 = (np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    a = read_image(tmp_path / "g16.png")
    assert a.shape == ref.shape and is_grayscale(a)
    assert np.abs(a[..., 0].astype(int) - np.asarray(photo.convert("L"))).max() <= 1


def test_exif_rotation_is_applied(tmp_path, photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    photo.save(tmp_path / "rot.jpg", exif=exif.tobytes())
    h, w = np.asarray(photo).shape[:2]
    assert read_image(tmp_path / "rot.jpg").shape[:2] == (w, h)


def test_grayscale_detection(photo, real_batch):
    gray = np.asarray(photo.convert("L").convert("RGB"))
    assert is_grayscale(gray)
    assert not any(is_grayscale(im) for im in real_batch)


def test_conversions_are_reported(tmp_path, photo):
    """read_image names what it fixed (the manifest counts these): palette, alpha, CMYK, EXIF, wrong extension."""
    cases = {
        "palette.png": (lambda p: photo.quantize(32).save(p), ["palette"]),
        "rgba.png": (lambda p: photo.convert("RGBA").save(p), ["alpha_composited"]),
        "cmyk.jpg": (lambda p: photo.convert("CMYK").save(p), ["cmyk"]),
        "png.jpg": (lambda p: photo.save(p, format="PNG"), ["wrong_extension"]),
        "plain.jpg": (lambda p: photo.save(p), []),
    }
    for name, (make, expected) in cases.items():
        make(tmp_path / name)
        notes: list[str] = []
        a = read_image(tmp_path / name, notes=notes)
        assert notes == expected, name
        assert a.shape == np.asarray(photo).shape


def test_grayscale_percentile_matches_numpy(photos):
    """is_grayscale's histogram percentile equals np.percentile(spread, 99) on real photos and near-gray ones."""
    for f in photos[:12]:
        a = read_image(f)
        spread = a.max(axis=2).astype(int) - a.min(axis=2)
        assert is_grayscale(a, 4.0) == (np.percentile(spread, 99) <= 4.0)
        p99 = float(np.percentile(spread, 99))
        assert is_grayscale(a, p99) and not is_grayscale(a, p99 - 1e-6)


def test_jpeg_draft_decode_keeps_the_short_side(tmp_path, photo):
    """A large JPEG is decoded at reduced DCT scale, never below the requested short side; full size reported."""
    from huescale.data.images import open_rgb

    big = photo.resize((photo.width * 3, photo.height * 3))
    big.save(tmp_path / "big.jpg", quality=90)
    full, size = open_rgb(tmp_path / "big.jpg")
    small, size2 = open_rgb(tmp_path / "big.jpg", draft_short_side=256)
    assert size == size2 == big.size and full.size == big.size
    assert 256 <= min(small.size) < min(big.size) and small.mode == "RGB"
    ref = np.asarray(full.resize(small.size, Image.BICUBIC), dtype=float)
    assert np.abs(np.asarray(small, dtype=float) - ref).mean() < 4  # same picture, 8-bit levels
