"""The x4 SR benchmark sets as a fetched, checksum-pinned data source (huescale.data.benchmarks), served by a
loopback HTTP server standing in for EDSR's benchmark.tar: the same layout, built from the real Set5 images."""

from __future__ import annotations

import pytest

from huescale.config import Config
from huescale.data import benchmarks as reg
from huescale.data.download import DownloadError
from huescale.evaluation import benchmark as bm


@pytest.fixture
def edsr_tar(shared_data) -> bytes:
    """benchmark/Set5/HR/*.png and benchmark/Set5/LR_bicubic/X4/*x4.png, as EDSR's archive lays them out."""
    from archives import edsr_benchmark_tar

    return edsr_benchmark_tar(shared_data / "benchmarks", ("Set5",))


@pytest.fixture
def server():
    from archives import LoopbackServer

    srv = LoopbackServer()
    yield srv
    srv.close()


def test_a_registry_name_is_fetched_once_verified_and_scores_like_the_local_copy(server, edsr_tar, shared_data,
                                                                                  tmp_path):
    url, md5 = server.serve("benchmark.tar", edsr_tar)
    hr = reg.resolve("Set5", tmp_path / "cache", progress=False, url=url, md5=md5)
    lr = reg.resolve("Set5/LRx4", tmp_path / "cache", progress=False, url=url, md5=md5)
    assert sorted(p.name for p in hr.iterdir()) == sorted(p.name for p in (shared_data / "benchmarks/Set5/GTmod12").iterdir())
    assert len(list(lr.glob("*.png"))) == 5 and len(server.srv.ranges) == 1
    reg.resolve("Set5", tmp_path / "cache", progress=False, url=url, md5=md5)
    assert len(server.srv.ranges) == 1  # cached: nothing downloaded again
    fetched, _ = bm.run({"Set5": str(hr)}, {}, 4, {"Set5": str(lr)})
    local, _ = bm.run({"Set5": str(shared_data / "benchmarks/Set5/GTmod12")}, {}, 4,
                      {"Set5": str(shared_data / "benchmarks/Set5/LRbicx4")})
    assert fetched["sets"]["Set5"]["bicubic"]["psnr_y"] == pytest.approx(local["sets"]["Set5"]["bicubic"]["psnr_y"])
    assert fetched["lr_check"]["Set5"]["max_abs_diff"] <= 1
    assert reg.resolve(str(tmp_path / "my_set"), tmp_path / "cache") == tmp_path / "my_set"  # a folder: as is


def test_a_wrong_archive_is_refused_and_deleted_and_an_unreachable_one_is_skipped_by_name(server, edsr_tar, tmp_path):
    url, _ = server.serve("benchmark.tar", edsr_tar)
    with pytest.raises(DownloadError, match="md5 mismatch"):
        reg.resolve("Set5", tmp_path / "cache", progress=False, url=url, md5="0" * 32)
    assert not any((tmp_path / "cache").rglob("benchmark.tar"))
    dead = "http://127.0.0.1:9/benchmark.tar"  # discard port: refused at once
    with pytest.raises(DownloadError, match="benchmark.sets.*folders"):
        reg.resolve("Set14", tmp_path / "cache", progress=False, url=dead)


def test_no_default_parameter_names_a_machine_path():
    cfg = Config()
    assert all(reg.is_registry_name(v) for v in (*cfg.benchmark.sets.values(), *cfg.benchmark.lr_check.values()))
    from conftest import ROOT

    offenders = [str(p) for p in (ROOT / "src").rglob("*.py") if "../shared" in p.read_text()]
    assert not offenders
    from conftest import default_params_text

    assert "../shared" not in default_params_text()  # as committed (a profile may add it to the working tree)
