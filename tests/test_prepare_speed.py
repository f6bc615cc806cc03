"""The faster prepare (issue 12 item 3, issue 13) writes the same bytes as before.

``GOLDEN`` is the SHA-256 of the pair store's arrays and positions for 100 real photographs (60 of
coco128, 40 of bsds500/test: no ICC profiles, so issue 13's colour management does not apply),
computed with the code of commit f1c2635 (before the speed-up) by :func:`store_digest` below. The
new code (banded MATLAB downscale, shared-memory results, one counted gray check, ...) must give
exactly these bytes, with one process and with a pool.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from huescale.config import DataConfig
from huescale.data.source_base import ImageRef
from huescale.data.store import PairStore
from huescale.data.store_build import build_pair_store
from huescale.data.tiers import _center_square, matlab_downscale
from huescale.resize import imresize

GOLDEN = "d3ef76c3ef1fe724f8b607b8fe30fb86cd0c655fb7dc67deed25030f4e712923"


def golden_photos(data: Path) -> list[Path]:
    return (sorted((data / "coco128" / "train2017").glob("*.jpg"))[:60]
            + sorted((data / "bsds500" / "test").glob("*.jpg"))[:40])


def store_digest(root: Path) -> str:
    """SHA-256 over every array (split, name, shape, bytes, in shard order) and every image's split/tiers/position."""
    st = PairStore(root)
    h = hashlib.sha256()
    for s in ("train", "val", "test"):
        # the arrays' names before they were renamed (lr64, lr256, hr256): the golden digest predates it
        for n, label in (("gt64", "lr64"), ("lq64", "lr256"), ("gt256", "hr256")):
            for a in st.arrays(s, n):
                h.update(f"{s}/{label}{a.shape}".encode())
                h.update(np.ascontiguousarray(a).tobytes())
    recs = [(r["key"], r["split"], r["tiers"], r.get("64"), r.get("256")) for r in st.manifest["images"]]
    h.update(json.dumps(recs).encode())
    return h.hexdigest()


@pytest.mark.parametrize("workers", [1, 2])
def test_store_bytes_unchanged_on_100_real_photos(shared_data, tmp_path, workers):
    refs = [ImageRef(key=f"golden/{p.parent.name}/{p.name}", path=str(p), size=0, sha256="")
            for p in golden_photos(shared_data)]
    cfg = DataConfig(source="folder", folders=["x"], n_images=100, min_images=1, workers=workers, shard_size=32)
    m = build_pair_store(refs, cfg, tmp_path / "p", progress=False)
    assert (m["usable"], m["excluded"]) == (98, {"grayscale": 2})
    assert store_digest(tmp_path / "p") == GOLDEN
    # this build's scratch file is gone (only this process's: other xdist workers may be building a store now)
    mine = f".huescale-slots.{os.getpid()}.tmp"
    assert not (Path("/dev/shm") / mine).exists() and not (tmp_path / mine).exists()


def test_banded_downscale_is_exact_for_the_stores_x4_step(shared_data):
    """The 256 -> 64 weights are dyadic (multiples of 2^-12): every sum of uint8 values is exact in float64,
    so matlab_downscale == imresize byte for byte, whatever the order of the sums. Checked on real photos."""
    from PIL import Image

    from huescale.data.images import read_image
    from huescale.data.tiers import _rows_exact_in_float32
    from huescale.resize import resize_matrix

    w = resize_matrix(256, 64)
    assert np.array_equal(w * 2**12, np.round(w * 2**12))
    assert _rows_exact_in_float32(256, 64) and not _rows_exact_in_float32(320, 106)  # float32 rows only when exact
    files = sorted((shared_data / "imagenet_sample").glob("*"))[::8] + sorted((shared_data / "coco128").rglob("*.jpg"))[:30]
    for f in files:
        sq = np.ascontiguousarray(_center_square(read_image(f)))
        hr = np.asarray(Image.fromarray(sq).resize((256, 256), Image.BICUBIC))
        assert np.array_equal(matlab_downscale(hr, (64, 64)), imresize(hr, (64, 64))), f.name


def test_excluded_images_come_back_without_their_traceback(shared_data, tmp_path):
    """An ImageError returned by a worker used to keep its traceback (frames holding the decoded image and the
    chunk's result list): a reference cycle that grew pool workers by ~30 MB per 10k images."""
    from PIL import Image

    from huescale.data.images import ImageError
    from huescale.data.store_workers import _work

    gray = tmp_path / "gray.jpg"
    Image.open(sorted((shared_data / "bsds500" / "test").glob("*.jpg"))[0]).convert("L").convert("RGB").save(gray)
    res = _work(str(gray), DataConfig())
    assert isinstance(res, ImageError) and res.reason == "grayscale" and str(gray) in str(res)
    assert res.__traceback__ is None and res.__context__ is None
