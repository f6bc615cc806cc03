"""The image reader on colour-managed, high-bit-depth, float and very large files, made from real photos (issue 13).

- embedded ICC profiles (a Display-P3-like profile built here, byte by byte, and the real Adobe RGB
  photographs of imagenet_sample) are converted to sRGB, checked against an independent colorimetric
  computation in NumPy;
- a dark 16-bit PNG stays dark (bit depth from the mode, not from the values);
- a float32 TIFF in [0, 1] is read at full brightness;
- ``max_pixels`` above Pillow's 89.5 MP default is honoured, and the message names our settings.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms

from huescale.config import DataConfig
from huescale.data.images import ImageError, open_rgb, read_image
from huescale.data.source_base import FolderSource
from huescale.data.sources import list_images
from huescale.data.store_build import build_pair_store

D50 = np.array([0.9642, 1.0, 0.8249])
GAMMA = 563 / 256  # u8Fixed8 2.2 of the 'curv' tag (Adobe RGB's exact value)
P3 = [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)]
ADOBE = [(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)]
SRGB = [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)]
D65 = (0.3127, 0.3290)


def _xyz(xy):
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz_d50(primaries, white=D65) -> np.ndarray:
    """The 3x3 RGB -> XYZ matrix of a colour space, Bradford-adapted from its white to D50 (as ICC does)."""
    p = np.stack([_xyz(c) for c in primaries], axis=1)
    m = p * np.linalg.solve(p, _xyz(white))
    bradford = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    cone = (bradford @ D50) / (bradford @ _xyz(white))
    return np.linalg.inv(bradford) @ np.diag(cone) @ bradford @ m


def icc_profile(primaries, description: str) -> bytes:
    """An ICC v2 matrix/TRC display profile (header, desc, wtpt, r/g/bXYZ, r/g/bTRC gamma 2.2, cprt)."""
    m = rgb_to_xyz_d50(primaries)

    def s15(v: float) -> bytes:
        return struct.pack(">i", int(round(v * 65536)))

    def xyz_tag(v) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(s15(c) for c in v)

    text = description.encode("ascii") + b"\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    curv = b"curv\0\0\0\0" + struct.pack(">I", 1) + struct.pack(">H", 563) + b"\0\0"
    tags = [(b"desc", desc), (b"wtpt", xyz_tag(D50)), (b"rXYZ", xyz_tag(m[:, 0])), (b"gXYZ", xyz_tag(m[:, 1])),
            (b"bXYZ", xyz_tag(m[:, 2])), (b"rTRC", curv), (b"gTRC", curv), (b"bTRC", curv),
            (b"cprt", b"text\0\0\0\0" + b"public domain\0" + b"\0\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, blob = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(blob), len(data))
        blob += data
    body = struct.pack(">I", len(tags)) + table + blob
    header = bytearray(128)
    header[0:4] = struct.pack(">I", 128 + len(body))
    header[8:12] = struct.pack(">I", 0x02100000)
    header[12:16], header[16:20], header[20:24], header[36:40] = b"mntr", b"RGB ", b"XYZ ", b"acsp"
    header[68:80] = b"".join(s15(c) for c in D50)
    return bytes(header) + body


def srgb_reference(rgb8: np.ndarray, primaries) -> np.ndarray:
    """Independent conversion of 8-bit values in a gamma-2.2 space with ``primaries`` (D65) to 8-bit sRGB."""
    lin = (rgb8.astype(np.float64) / 255.0) ** GAMMA
    xyz = lin @ rgb_to_xyz_d50(primaries).T
    srgb_lin = np.clip(xyz @ np.linalg.inv(rgb_to_xyz_d50(SRGB)).T, 0, 1)
    enc = np.where(srgb_lin <= 0.0031308, 12.92 * srgb_lin, 1.055 * srgb_lin ** (1 / 2.4) - 0.055)
    return np.round(enc * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def photo(shared_data) -> Image.Image:
    return Image.open(sorted((shared_data / "bsds500" / "test").glob("*.jpg"))[3]).convert("RGB")


def test_display_p3_png_is_converted_to_srgb(photo, tmp_path):
    prof = icc_profile(P3, "Display P3 (huescale test)")
    assert "Display P3" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(prof)))
    photo.save(tmp_path / "p3.png", icc_profile=prof)
    notes: list[str] = []
    got = read_image(tmp_path / "p3.png", notes=notes)
    raw = np.asarray(photo)
    want = srgb_reference(raw, P3)
    diff = np.abs(got.astype(int) - want)
    assert diff.mean() < 0.2 and diff.max() <= 1, (diff.mean(), diff.max())
    assert np.abs(got.astype(int) - raw).mean() > 2  # the conversion matters: P3 values shown as sRGB are wrong
    spread = lambda a: (a.max(axis=2).astype(int) - a.min(axis=2)).mean()  # noqa: E731
    assert spread(got) > spread(raw)  # P3 is wider: the same numbers are more saturated colours
    assert notes == ["icc"]


def test_real_adobe_rgb_photographs_are_converted(shared_data):
    """The Adobe RGB (1998) JPEGs among the real ImageNet samples (camera files with their profile)."""
    found = 0
    for f in sorted((shared_data / "imagenet_sample").glob("*.JPEG")):
        with Image.open(f) as im:
            icc = im.info.get("icc_profile")
            if not icc or "Adobe RGB" not in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))):
                continue
            raw = np.asarray(im.convert("RGB"))
        notes: list[str] = []
        got = read_image(f, notes=notes)
        diff = np.abs(got.astype(int) - srgb_reference(raw, ADOBE))
        assert "icc" in notes and diff.mean() < 0.2 and diff.max() <= 1, (f.name, diff.mean())
        assert np.abs(got.astype(int) - raw).mean() > 2  # and it matters
        found += 1
    assert found >= 2


def test_srgb_profile_is_left_alone_and_icc_is_counted_in_the_manifest(photo, shared_data, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo.save(folder / "tagged_srgb.png", icc_profile=srgb)
    photo.save(folder / "untagged.png")
    photo.save(folder / "p3.png", icc_profile=icc_profile(P3, "Display P3 (huescale test)"))
    notes: list[str] = []
    assert np.array_equal(read_image(folder / "tagged_srgb.png", notes=notes), np.asarray(photo)) and notes == []
    cfg = DataConfig(source="folder", folders=[str(folder)], min_images=1, workers=1)
    m = build_pair_store(list_images(FolderSource([folder])), cfg, tmp_path / "pairs", progress=False)
    assert m["converted"] == {"icc": 1} and m["usable"] == 3
    assert next(r for r in m["images"] if r["key"].endswith("p3.png"))["converted"] == ["icc"]


def test_dark_16bit_png_stays_dark(photo, tmp_path):
    """A 16-bit image whose maximum is 200 (of 65535) is nearly black, not a bright 8-bit image."""
    gray = np.asarray(photo.convert("L"), dtype=np.float64)
    dark = np.round(gray / 255 * 200).astype(np.uint16)
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    assert Image.open(tmp_path / "dark16.png").mode == "I;16" and dark.max() == 200
    notes: list[str] = []
    got = read_image(tmp_path / "dark16.png", notes=notes)
    assert got.max() <= 1 and notes == ["high_bit_depth"]
    full = np.round(gray / 255 * 65535).astype(np.uint16)  # the same photo over the full 16-bit range
    Image.fromarray(full).save(tmp_path / "full16.png")
    assert np.abs(read_image(tmp_path / "full16.png")[..., 0].astype(int) - gray).max() <= 1
    Image.fromarray(full).save(tmp_path / "full16.tif")  # TIFF: bits from BitsPerSample
    assert np.abs(read_image(tmp_path / "full16.tif")[..., 0].astype(int) - gray).max() <= 1


def test_float_tiff_in_unit_range(photo, tmp_path):
    gray = np.asarray(photo.convert("L"), dtype=np.float32)
    Image.fromarray(gray / 255.0).save(tmp_path / "f.tif")
    assert Image.open(tmp_path / "f.tif").mode == "F"
    got = read_image(tmp_path / "f.tif")
    assert np.abs(got[..., 0].astype(int) - gray).max() <= 1  # 1.0 is white, not 1/255
    hot = gray / 255.0 * 2 - 0.5  # out of [0, 1]: clipped
    hot[0, 0] = np.nan
    Image.fromarray(hot.astype(np.float32)).save(tmp_path / "hot.tif")
    h = read_image(tmp_path / "hot.tif")[..., 0]
    assert h[0, 0] == 0 and h.min() == 0 and h.max() == 255


def test_max_pixels_above_pillows_default_is_ours(tmp_path):
    """9600 x 9600 = 92 MP (over Pillow's 89.5 MP warning): read with max_pixels=100e6; refused with 90e6."""
    big = tmp_path / "big.png"
    Image.new("1", (9600, 9600), 1).save(big)  # 1-bit: small file, quick to write
    im, size = open_rgb(big, max_pixels=100_000_000)
    assert size == (9600, 9600) and im.mode == "RGB"
    del im
    with pytest.raises(ImageError) as e:
        read_image(big, max_pixels=90_000_000)
    msg = str(e.value)
    assert e.value.reason == "too_large" and "data.max_pixels" in msg and "--max-pixels" in msg and "big.png" in msg
    with pytest.raises(ImageError) as e:  # far beyond (Pillow's own error would fire at 2x): same message
        read_image(big, max_pixels=1000)
    assert "data.max_pixels" in str(e.value) and "--max-pixels" in str(e.value)
    assert Image.MAX_IMAGE_PIXELS == int(1024 * 1024 * 1024 // 4 // 3)  # Pillow's default restored
