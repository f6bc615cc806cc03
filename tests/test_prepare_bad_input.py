"""prepare on a folder of real photographs plus every kind of bad or odd file: counted, nothing lost."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from huescale.config import DataConfig
from huescale.data.source_base import FolderSource
from huescale.data.sources import list_images
from huescale.data.store import PairStore
from huescale.data.store_build import NotEnoughImagesError, build_pair_store


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("messy") / "photos"
    d.mkdir()
    good = sorted((shared_data / "coco128" / "train2017").glob("*.jpg"))[:12]
    for f in good:
        shutil.copy(f, d / f.name)
    photo = Image.open(good[0]).convert("RGB")
    (d / "zero.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("not an image")
    photo.save(d / "trunc.jpg")
    (d / "trunc.jpg").write_bytes((d / "trunc.jpg").read_bytes()[:2000])
    photo.convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray((np.asarray(photo).astype(np.uint16) * 257)[..., 0]).save(d / "gray16.png")  # 16-bit gray
    rgba = photo.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(d / "rgba.png")
    photo.quantize(64).save(d / "palette.png")
    photo.convert("L").convert("RGB").save(d / "grayrgb.jpg")
    Image.new("RGB", (1, 1), (200, 10, 10)).save(d / "tiny.png")
    Image.new("1", (12000, 12000), 1).save(d / "huge.png")  # 144 MP (1-bit: quick to write)
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.save(d / "rotated.jpg", exif=exif.tobytes())
    photo.save(d / "really_png.jpg", format="PNG")  # wrong extension
    _png16(d / "colour16.png", np.asarray(photo).astype(np.uint16) * 257)  # 16-bit colour
    return d, len(good), photo.size


def _png16(path, rgb16: np.ndarray) -> None:
    """Write a 16-bit-per-channel RGB PNG by hand (Pillow writes 16 bits only for one channel)."""
    import struct
    import zlib

    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


def test_every_bad_kind_is_counted_and_the_rest_prepared(messy_folder, tmp_path):
    folder, n_good, (w, h) = messy_folder
    refs = list_images(FolderSource([folder]))
    cfg = DataConfig(source="folder", folders=[str(folder)], n_images=1000, workers=2, max_pixels=64_000_000)
    manifest = build_pair_store(refs, cfg, tmp_path / "pairs", progress=False)
    assert manifest["excluded"] == {"empty": 1, "not_an_image": 1, "truncated": 1, "grayscale": 2,
                                    "too_small": 1, "too_large": 1}
    # the 6 kinds that are fixed on the way are counted too (12 kinds in all, each in the manifest)
    assert manifest["converted"] == {"alpha_composited": 1, "cmyk": 1, "exif_rotated": 1, "high_bit_depth": 1,
                                     "palette": 1, "wrong_extension": 1}
    usable = {r["key"].split("/")[-1]: r for r in manifest["images"]}
    assert {"cmyk.jpg", "rgba.png", "palette.png", "rotated.jpg", "really_png.jpg", "colour16.png"} <= set(usable)
    assert usable["colour16.png"]["converted"] == ["high_bit_depth"]
    assert usable["really_png.jpg"]["converted"] == ["wrong_extension"]
    assert manifest["usable"] == n_good + 6
    rotated = next(r for r in manifest["images"] if r["key"].endswith("rotated.jpg"))
    assert (rotated["width"], rotated["height"]) == (h, w)  # EXIF orientation applied
    for rec in manifest["excluded_images"]:
        assert rec["path"] in rec["message"]  # each reason names its file
    store = PairStore(tmp_path / "pairs")
    assert sum(store.count(s, "64") for s in ("train", "val", "test")) == manifest["usable"]


def test_too_small_images_upscaled_per_param(messy_folder, tmp_path):
    folder, _, _ = messy_folder
    refs = [r for r in list_images(FolderSource([folder])) if r.key.endswith(("tiny.png", "rgba.png"))]
    cfg = DataConfig(source="folder", folders=[str(folder)], small_images="upscale", min_images=1, workers=1)
    manifest = build_pair_store(refs, cfg, tmp_path / "pairs", progress=False)
    tiny = next(r for r in manifest["images"] if r["key"].endswith("tiny.png"))
    assert tiny["tiers"] == ["64"] and tiny["converted"] == ["upscaled"] and manifest["converted"]["upscaled"] == 1
    assert "too_small" not in manifest["excluded"]


def test_too_few_usable_images_fails_clearly_and_leaves_nothing(messy_folder, tmp_path):
    folder, _, _ = messy_folder
    refs = [r for r in list_images(FolderSource([folder])) if not r.key.split("/")[-1][0].isdigit()]
    cfg = DataConfig(source="folder", folders=[str(folder)], min_images=50, workers=1)
    with pytest.raises(NotEnoughImagesError, match="data.min_images=50"):
        build_pair_store(refs, cfg, tmp_path / "pairs", progress=False)
    assert not (tmp_path / "pairs").exists() and not (tmp_path / "pairs.tmp").exists()
