"""Safe, bounded archive extraction, and an archive fetched and extracted once into the cache.

Extraction (:func:`extract`, :func:`extract_members`): members that would escape the target
(absolute paths, ``..``, links, devices) are refused; so are archives whose declared size (zip
central directory, tar headers) or actual output exceeds ``max_ratio`` x the archive size or
``max_bytes`` in all (decompression bombs: a 200 KB zip can hold 200 MB of zeros), and
extractions the free disk space cannot hold. Files are written under process-private temporary
names and renamed into place.

:func:`fetch_extracted` downloads an archive once (:func:`huescale.data.download.download`: resumable,
verified) and extracts it once.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path

from huescale.atomic import atomic_open, clean_stale_in, clean_stale_tmp, commit, tmp_path
from huescale.data.download import DownloadError, cache_path, check_space, download
from huescale.locks import file_lock
from huescale.progress import bar as progress_bar

DEFAULT_MAX_EXTRACT_RATIO = 200.0
DEFAULT_MAX_EXTRACT_BYTES = 100_000_000_000


def _check_member(root: Path, name: str, is_link: bool, archive: Path) -> None:
    target = (root / name).resolve()
    if os.path.isabs(name) or ".." in Path(name).parts or not target.is_relative_to(root.resolve()) or is_link:
        raise DownloadError(f"{archive}: refusing archive member {name!r} (absolute path, '..' or link); "
                            "the archive is unsafe, delete it")


def _zip_is_link(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000


_CORRUPT = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, ValueError)


def _corrupt(archive: Path, exc: BaseException) -> DownloadError:
    return DownloadError(f"{archive}: corrupt or truncated archive ({type(exc).__name__}: {exc}); delete it and run "
                         "the stage again to download it anew")


def archive_listing(archive: str | Path) -> dict[str, int]:
    """Regular-file members of a zip or tar archive -> their declared (uncompressed) size in bytes,
    in archive order; every member is checked safe.

    Raises:
        DownloadError: any member is absolute, contains ``..``, is a link or a device (the whole
            archive is refused), the file is not a tar/zip archive, or it is corrupt/truncated.
    """
    archive = Path(archive)
    try:
        return _archive_listing(archive)
    except _CORRUPT as exc:
        raise _corrupt(archive, exc) from None


def _archive_listing(archive: Path) -> dict[str, int]:
    root = Path("/nonexistent-huescale-root")
    sizes: dict[str, int] = {}
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(root, info.filename, _zip_is_link(info), archive)
                if not info.is_dir():
                    sizes[info.filename] = info.file_size
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for m in tf.getmembers():
                _check_member(root, m.name, m.issym() or m.islnk() or m.isdev(), archive)
                if m.isfile():
                    sizes[m.name] = m.size
    else:
        raise DownloadError(f"{archive}: not a tar or zip archive; delete it and run the stage again")
    return sizes


def archive_members(archive: str | Path) -> list[str]:
    """Names of the regular-file members of a zip or tar archive, in archive order, all checked safe.

    Raises:
        DownloadError: see :func:`archive_listing`.
    """
    return list(archive_listing(archive))


def check_expansion(archive: str | Path, declared_bytes: int, max_ratio: float = DEFAULT_MAX_EXTRACT_RATIO,
                    max_bytes: int = DEFAULT_MAX_EXTRACT_BYTES, dest: str | Path | None = None,
                    extract_bytes: int | None = None) -> None:
    """Refuse an archive whose declared content is a decompression bomb, or that the disk cannot hold.

    Args:
        archive: the archive file (its size on disk is the ratio's denominator).
        declared_bytes: total uncompressed size of all its members (zip central directory / tar headers).
        max_ratio: largest accepted ``declared_bytes / archive size`` (param ``data.max_extract_ratio``).
        max_bytes: largest accepted number of bytes to extract (param ``data.max_extract_bytes``).
        dest: where the members go (for the free-space check), or None to skip it.
        extract_bytes: the bytes actually to be extracted (a subset), default ``declared_bytes``.

    Raises:
        DownloadError: naming the archive, the sizes, and the param to raise if it is legitimate.
    """
    archive = Path(archive)
    packed = max(archive.stat().st_size, 1)
    out = declared_bytes if extract_bytes is None else extract_bytes
    if declared_bytes / packed > max_ratio:
        raise DownloadError(
            f"{archive}: declares {declared_bytes / 1e6:.1f} MB of content in {packed / 1e6:.3f} MB "
            f"(x{declared_bytes / packed:.0f} > data.max_extract_ratio={max_ratio:g}): refusing a likely "
            "decompression bomb; delete the archive, or raise data.max_extract_ratio if you trust it")
    if out > max_bytes:
        raise DownloadError(
            f"{archive}: extracting it would write {out / 1e9:.2f} GB (> data.max_extract_bytes="
            f"{max_bytes / 1e9:.2f} GB); delete the archive, take a smaller subset (data.n_images), or raise "
            "data.max_extract_bytes")
    if dest is not None:
        check_space(Path(dest), out, f"extracting {archive.name}")


def _copy_limited(stream, f, declared: int, name: str, archive: Path, budget: list[int]) -> None:
    """Copy a member's bytes, refusing more than its declared size or than the remaining ``budget[0]``."""
    written = 0
    while block := stream.read(1 << 20):
        written += len(block)
        budget[0] -= len(block)
        if written > declared or budget[0] < 0:
            raise DownloadError(f"{archive}: member {name!r} expands beyond its declared size or the limits "
                                "(data.max_extract_ratio / data.max_extract_bytes): refusing a likely decompression "
                                "bomb; delete the archive")
        f.write(block)


def extract_members(archive: str | Path, dest: str | Path, members: dict[str, Path], progress: bool = True,
                    max_ratio: float = DEFAULT_MAX_EXTRACT_RATIO,
                    max_bytes: int = DEFAULT_MAX_EXTRACT_BYTES) -> int:
    """Extract only the named members of a zip or tar archive (never the whole archive).

    Each file is written to a process-private temporary name and renamed into place, so a file
    that exists is complete; members already extracted are skipped (idempotent). Call it under a
    lock on ``dest`` when other processes may extract into the same folder (sources do).

    Safe by itself against decompression bombs, whatever its caller checked: the bytes one call writes
    are bounded by ``min(max_bytes, max_ratio x the archive's size)``, checked on the declared sizes
    before anything is written (zip: the selected members' total and each member's own ratio; tar: each
    member before it is written) and on the bytes actually decompressed.

    Args:
        archive: the zip/tar(.gz) file.
        dest: the folder every output must stay inside.
        members: archive member name -> output path (inside ``dest``).
        progress: show a tqdm bar.
        max_ratio: largest uncompressed size accepted per byte of archive: for the selected members
            together and for each zip member (``data.max_extract_ratio``).
        max_bytes: largest total number of bytes written (``data.max_extract_bytes``).

    Returns:
        The number of files written this time.

    Raises:
        DownloadError: a member escapes ``dest`` (absolute, ``..``, link), is missing from the
            archive, expands beyond the limits, the disk cannot hold it, or the archive format is
            unknown.
    """
    archive, dest = Path(archive), Path(dest).resolve()
    todo = {}
    for name, out in members.items():
        out = Path(out)
        _check_member(dest, name, False, archive)
        if not out.resolve().is_relative_to(dest):
            raise DownloadError(f"{archive}: refusing to write member {name!r} outside {dest}")
        if not out.is_file():
            todo[name] = out
    if not todo:
        return 0
    clean_stale_in(dest, recursive=True)
    budget = [min(max_bytes, int(max_ratio * max(archive.stat().st_size, 1)))]  # ratio and total, in bytes

    def write(stream, out: Path, declared: int, name: str) -> None:
        check_space(out.parent, declared, f"extracting {name} from {archive.name}")
        with atomic_open(out, "wb", clean=False) as f:  # one sweep below, not one scan of dest per member
            _copy_limited(stream, f, declared, name, archive, budget)

    try:
        _extract_todo(archive, dest, todo, budget, write, max_ratio, max_bytes, progress)
    except _CORRUPT as exc:
        raise _corrupt(archive, exc) from None
    return len(todo)


def _extract_todo(archive: Path, dest: Path, todo: dict[str, Path], budget: list[int], write, max_ratio: float,
                  max_bytes: int, progress: bool) -> None:
    bar = progress_bar(total=len(todo), desc=f"extract {archive.name}", unit="file", disable=not progress)
    with bar:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = {}
                for name in todo:
                    try:
                        infos[name] = zf.getinfo(name)
                    except KeyError:
                        raise DownloadError(f"{archive}: member {name!r} not found; delete the archive") from None
                for name, info in infos.items():
                    if info.file_size > max_ratio * max(info.compress_size, 1) and info.file_size > 1 << 20:
                        raise DownloadError(
                            f"{archive}: member {name!r} declares {info.file_size / 1e6:.1f} MB from "
                            f"{info.compress_size / 1e6:.3f} MB (> data.max_extract_ratio={max_ratio:g}): refusing "
                            "a likely decompression bomb; delete the archive")
                selected = sum(i.file_size for i in infos.values())
                check_expansion(archive, selected, max_ratio, max_bytes, dest)
                for name, out in todo.items():
                    info = infos[name]
                    if _zip_is_link(info):
                        _check_member(dest, name, True, archive)
                    with zf.open(info) as stream:
                        write(stream, out, info.file_size, name)
                    bar.update(1)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:  # one sequential pass (works for .tgz too)
                left = dict(todo)
                for m in tf:
                    if m.name in left:
                        _check_member(dest, m.name, not m.isfile(), archive)
                        if m.size > budget[0]:
                            raise DownloadError(
                                f"{archive}: member {m.name!r} ({m.size / 1e6:.1f} MB) exceeds what is left of the "
                                f"limit min(data.max_extract_bytes, data.max_extract_ratio={max_ratio:g} x "
                                f"{archive.stat().st_size / 1e6:.3f} MB of archive): refusing a likely "
                                "decompression bomb; delete the archive or raise the limit if you trust it")
                        member = tf.extractfile(m)
                        if member is None:  # not a regular file: refused by _check_member above
                            raise DownloadError(f"{archive}: member {m.name!r} is not a file; delete the archive")
                        with member:
                            write(member, left.pop(m.name), m.size, m.name)
                        bar.update(1)
                        if not left:
                            break
                if left:
                    raise DownloadError(f"{archive}: member {next(iter(left))!r} not found; delete the archive")
        else:
            raise DownloadError(f"{archive}: not a tar or zip archive; delete it and run the stage again")


def extract(archive: str | Path, dest: str | Path, max_ratio: float = DEFAULT_MAX_EXTRACT_RATIO,
            max_bytes: int = DEFAULT_MAX_EXTRACT_BYTES) -> Path:
    """Safely extract a whole .tar/.tgz/.tar.gz/.zip archive into ``dest`` (atomically, bounded).

    The archive's declared content is checked first (:func:`check_expansion`: ratio, total and
    free disk space), then every byte written is counted against the declared sizes and
    ``max_bytes``. Extraction goes to a process-private temporary folder renamed into place when
    complete, under a lock on ``dest``.

    Args:
        archive: the archive file.
        dest: the folder to create (replaced); it appears only when extraction finished.
        max_ratio: largest declared-content / archive-size ratio (``data.max_extract_ratio``).
        max_bytes: largest total uncompressed size (``data.max_extract_bytes``).

    Returns:
        ``dest`` as a Path.

    Raises:
        DownloadError: a member escapes ``dest`` (absolute, ``..``, sym/hard link, device), the
            archive is a likely decompression bomb or too large for the disk, or the format is unknown.
    """
    archive, dest = Path(archive), Path(dest)
    sizes = archive_listing(archive)  # checks every member is safe
    check_expansion(archive, sum(sizes.values()), max_ratio, max_bytes, dest.parent)
    with file_lock(dest, f"extraction of {archive.name}"):
        clean_stale_tmp(dest)
        tmp = tmp_path(dest)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            _extract_all(archive, tmp, [max_bytes])
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, _CORRUPT):
                raise _corrupt(archive, exc) from None
            raise
        old = tmp_path(dest, ".old")
        if dest.exists():
            os.replace(dest, old)
        commit(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    return dest


def _extract_all(archive: Path, tmp: Path, budget: list[int]) -> None:
    """Write every member of ``archive`` (a zip, else a tar) under folder ``tmp``, each byte counted against its
    declared size and ``budget[0]`` (:func:`_copy_limited`); the caller checked the members first.

    Raises:
        DownloadError: a member writes more than declared or the budget allows.
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                out = tmp / info.filename
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as stream, open(out, "wb") as f:
                    _copy_limited(stream, f, info.file_size, info.filename, archive, budget)
    else:
        with tarfile.open(archive) as tf:
            for m in tf:
                out = tmp / m.name
                if m.isdir():
                    out.mkdir(parents=True, exist_ok=True)
                elif m.isfile():
                    out.parent.mkdir(parents=True, exist_ok=True)
                    member = tf.extractfile(m)
                    assert member is not None  # m.isfile()
                    with member, open(out, "wb") as f:
                        _copy_limited(member, f, m.size, m.name, archive, budget)


def fetch_extracted(url: str, cache_dir: str | Path, ready: str, md5: str | None = None, sha256: str | None = None,
                    param: str | None = None, offline_hint: str = "", progress: bool = True) -> Path:
    """Download an archive once (resumable, checksum-verified) into the cache and extract it once (safely).

    Args:
        url: the archive's URL; the cache keys its file and extraction by it
            (:func:`huescale.data.download.cache_path`).
        cache_dir: the download cache (``~`` expanded).
        ready: a path inside the extraction whose presence means it is complete (then nothing is fetched).
        md5, sha256: the archive's expected digests (:func:`huescale.data.download.download`).
        param: the setting that names this archive, for :func:`huescale.data.download.download`'s messages.
        offline_hint: appended to a download error: what to do without internet.

    Returns:
        The extraction root, ``<cache>/downloads/<key>/extracted``.

    Raises:
        DownloadError: unreachable host, checksum mismatch (the file is deleted), or an unsafe archive.
    """
    archive = cache_path(Path(cache_dir).expanduser(), url)
    root = archive.parent / "extracted"
    if (root / ready).exists():
        return root
    try:
        download(url, archive, md5=md5, sha256=sha256, progress=progress, param=param)
    except DownloadError as exc:
        if not offline_hint:
            raise
        raise DownloadError(f"{exc}. {offline_hint}") from None
    return extract(archive, root)
