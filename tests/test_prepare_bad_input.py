"""prepare on a folder of real photographs plus every kind of bad or odd file: counted, nothing lost."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from huescale.config import DataConfig
from huescale.data.sources import FolderSource, list_images
from huescale.data.store import NotEnoughImagesError, PairStore, build_pair_store


@pytest.fixture
def messy_folder(tmp_path, shared_data):
    d = tmp_path / "photos"
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
    Image.new("RGB", (12000, 12000), (10, 120, 200)).save(d / "huge.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    photo.save(d / "rotated.jpg", exif=exif.tobytes())
    photo.save(d / "really_png.jpg", format="PNG")  # wrong extension
    return d, len(good), photo.size


def test_every_bad_kind_is_counted_and_the_rest_prepared(messy_folder, tmp_path):
    folder, n_good, (w, h) = messy_folder
    refs = list_images(FolderSource([folder]))
    cfg = DataConfig(source="folder", folders=[str(folder)], n_images=1000, workers=2, max_pixels=64_000_000)
    manifest = build_pair_store(refs, cfg, tmp_path / "pairs", progress=False)
    assert manifest["excluded"] == {"empty": 1, "not_an_image": 1, "truncated": 1, "grayscale": 2,
                                    "too_small": 1, "too_large": 1}
    usable = {r["key"].split("/")[-1] for r in manifest["images"]}
    assert {"cmyk.jpg", "rgba.png", "palette.png", "rotated.jpg", "really_png.jpg"} <= usable
    assert manifest["usable"] == n_good + 5
    rotated = next(r for r in manifest["images"] if r["key"].endswith("rotated.jpg"))
    assert (rotated["width"], rotated["height"]) == (h, w)  # EXIF orientation applied
    for rec in manifest["excluded_images"]:
        assert rec["path"] in rec["message"]  # each reason names its file
    store = PairStore(tmp_path / "pairs")
    assert sum(store.count(s, "64") for s in ("train", "val", "test")) == manifest["usable"]


def test_too_few_usable_images_fails_clearly_and_leaves_nothing(messy_folder, tmp_path):
    folder, _, _ = messy_folder
    refs = [r for r in list_images(FolderSource([folder])) if not r.key.split("/")[-1][0].isdigit()]
    cfg = DataConfig(source="folder", folders=[str(folder)], min_images=50, workers=1)
    with pytest.raises(NotEnoughImagesError, match="data.min_images=50"):
        build_pair_store(refs, cfg, tmp_path / "pairs", progress=False)
    assert not (tmp_path / "pairs").exists() and not (tmp_path / "pairs.tmp").exists()
