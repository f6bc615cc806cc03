"""The x4 super-resolution benchmark sets as a data source: fetched once, pinned by checksum, extracted safely.

``benchmark.sets`` / ``benchmark.lr_check`` values are either a folder of images or a name of this registry
(``Set5``, ``Set14``, ``BSD100``, ``Urban100`` for the HR images, ``Set5/LRx4``... for the provided MATLAB
bicubic x4 LR images). A name is resolved by downloading the benchmark archive that EDSR (Lim et al. 2017)
and BasicSR distribute, ``benchmark.tar`` (md5 ``4ace41d3...``, as its download scripts pin it), with the
resumable, verified download of :mod:`huescale.data.download` into ``data.cache_dir`` (shared by all runs),
and extracting it with the bounded, link-refusing :func:`huescale.data.archives.extract`. ``HUESCALE_BENCHMARK_URL``
overrides the URL (a mirror, or the loopback server of the tests); the checksum stays.
"""

from __future__ import annotations

import os
from pathlib import Path

from huescale.data.archives import fetch_extracted
from huescale.data.download import DownloadError

ARCHIVE_URL = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"
ARCHIVE_MD5 = "4ace41d33c2384b97e6b320cd0afd6ba"
# registry name -> folder inside the archive (benchmark/<set>/HR, benchmark/<set>/LR_bicubic/X4)
SETS = {"Set5": "Set5", "Set14": "Set14", "BSD100": "B100", "Urban100": "Urban100"}
NAMES = {**{k: f"benchmark/{v}/HR" for k, v in SETS.items()},
         **{f"{k}/LRx4": f"benchmark/{v}/LR_bicubic/X4" for k, v in SETS.items()}}


def is_registry_name(value: str) -> bool:
    """Whether ``value`` names a registry set (and not a folder)."""
    return value in NAMES


def archive_url() -> str:
    """The benchmark archive's URL: ``HUESCALE_BENCHMARK_URL`` if set, else :data:`ARCHIVE_URL`."""
    return os.environ.get("HUESCALE_BENCHMARK_URL") or ARCHIVE_URL


def fetch(cache_dir: str | Path, progress: bool = True, url: str | None = None, md5: str = ARCHIVE_MD5) -> Path:
    """Download (once, verified by md5) and extract (once) the benchmark archive; returns the extracted root.

    Args:
        cache_dir: the download cache (``data.cache_dir``); the archive and its extraction live under it,
            keyed by the URL.
        url, md5: another copy of the archive (default :func:`archive_url`, :data:`ARCHIVE_MD5`).

    Raises:
        DownloadError: unreachable host (the message names the offline option: folders in ``benchmark.sets``),
            checksum mismatch, or an unsafe archive.
    """
    return fetch_extracted(url or archive_url(), cache_dir, "benchmark", md5=md5, param="benchmark.sets",
                           offline_hint="Offline, give benchmark.sets / benchmark.lr_check as folders of images "
                                        "(e.g. a copy of Set5/Set14/BSD100)", progress=progress)


def resolve(value: str, cache_dir: str | Path, progress: bool = True, url: str | None = None,
            md5: str = ARCHIVE_MD5) -> Path:
    """The folder of images a ``benchmark.sets`` / ``lr_check`` value stands for.

    A registry name (:data:`NAMES`) is fetched into ``cache_dir``; anything else is a folder path, returned
    as is (a missing folder is reported by the benchmark, which skips it).

    Raises:
        DownloadError: as :func:`fetch`, for a registry name only.
    """
    if not is_registry_name(value):
        return Path(value).expanduser()
    return fetch(cache_dir, progress, url, md5) / NAMES[value]


def resolve_all(mapping: dict[str, str], cache_dir: str | Path, progress: bool = True, url: str | None = None,
                md5: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """:func:`resolve` every value of a ``benchmark.sets``-style mapping (``url``/``md5``: a mirror, as in
    :func:`fetch`; None or "" = the registry's own).

    Returns:
        ``(resolved, skipped)``: set name -> folder, and set name -> why it could not be fetched (the benchmark
        reports skipped sets instead of failing, as for a missing folder).
    """
    resolved, skipped = {}, {}
    for name, value in mapping.items():
        try:
            resolved[name] = str(resolve(value, cache_dir, progress, url or None, md5 or ARCHIVE_MD5))
        except DownloadError as exc:
            skipped[name] = str(exc)
    return resolved, skipped
