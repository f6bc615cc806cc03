"""Resumable, checksum-verified downloads and safe archive extraction.

Downloads go to ``<dest>.part`` with HTTP ``Range`` resume, are verified (md5
or sha256) and only then renamed into place, so a file at ``dest`` is always
complete and correct. Archives are extracted into a temporary sibling folder
that is renamed when done; members that would escape it (absolute paths,
``..``, links) are refused. :func:`extract_members` extracts only chosen
members (a COCO subset out of an 18 GB zip), each file atomically.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from huescale.progress import bar as progress_bar

OFFLINE_HINT = (
    "this machine cannot reach it; to run offline, use a local copy: "
    "set data.source=folder and data.folders=[<dir of photos>] in params.yaml "
    "(or place the archive at the path above)"
)


class DownloadError(RuntimeError):
    """A download that failed for good: unreachable URL, HTTP error or checksum mismatch."""


def file_digest(path: str | Path, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    """Hex digest of a file (``md5`` or ``sha256``), read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, md5: str | None, sha256: str | None) -> None:
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want:
            got = file_digest(path, algo)
            if got != want.lower():
                path.unlink(missing_ok=True)
                raise DownloadError(
                    f"{path.name}: {algo} mismatch (expected {want}, got {got}); the partial or corrupt "
                    "file was deleted, run the stage again to re-download"
                )


def _is_unreachable(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, socket.gaierror):
        return True
    return isinstance(reason, OSError) and reason.errno in (101, 111, 113)  # ENETUNREACH, ECONNREFUSED, EHOSTUNREACH


def download(url: str, dest: str | Path, md5: str | None = None, sha256: str | None = None,
             retries: int = 3, timeout: float = 30.0, progress: bool = True) -> Path:
    """Download ``url`` to ``dest``, resuming a previous partial transfer.

    Args:
        url: http(s) URL.
        dest: final path; its folder is created. If it already exists and matches
            the checksum, nothing is downloaded.
        md5, sha256: expected hex digests (either, both or none).
        retries: attempts after the first for transient errors (timeouts, resets,
            HTTP 5xx), with exponential backoff (1, 2, 4 ... s).
        timeout: socket timeout in seconds.
        progress: show a tqdm bar with bytes and rate.

    Returns:
        ``dest`` as a Path.

    Raises:
        DownloadError: unreachable host (at once, with the offline option), HTTP
            error, or a checksum mismatch (the bad file is removed).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        if md5 is None and sha256 is None or _verified_before(dest, md5, sha256):
            return dest
        try:
            _verify(dest, md5, sha256)
            _mark_verified(dest, md5, sha256)
            return dest
        except DownloadError:
            pass  # corrupt copy removed by _verify: download again
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, progress)
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416:  # range beyond the end: the part file is complete or bogus
                if part.exists() and (md5 or sha256):
                    break
                part.unlink(missing_ok=True)
            elif exc.code < 500 or attempt == retries:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            if _is_unreachable(exc):
                raise DownloadError(f"cannot download {url} to {dest}: {exc}; {OFFLINE_HINT}") from None
            if attempt == retries:
                raise DownloadError(f"{url}: failed after {retries + 1} attempts ({exc}); "
                                    "run the stage again to resume the partial download") from None
        time.sleep(2**attempt)
    _verify(part, md5, sha256)
    os.replace(part, dest)
    _mark_verified(dest, md5, sha256)
    return dest


def _stamp(dest: Path, md5: str | None, sha256: str | None) -> str:
    st = dest.stat()
    return f"md5={md5} sha256={sha256} size={st.st_size} mtime_ns={st.st_mtime_ns}"


def _mark_verified(dest: Path, md5: str | None, sha256: str | None) -> None:
    """Record that ``dest`` (this size and mtime) matched its checksums: later runs skip re-hashing 18 GB."""
    if md5 or sha256:
        marker = dest.with_name(dest.name + ".verified")
        tmp = marker.with_name(marker.name + ".tmp")
        tmp.write_text(_stamp(dest, md5, sha256))
        os.replace(tmp, marker)


def _verified_before(dest: Path, md5: str | None, sha256: str | None) -> bool:
    marker = dest.with_name(dest.name + ".verified")
    return marker.is_file() and marker.read_text() == _stamp(dest, md5, sha256)


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "huescale"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        if start and resp.status != 206:  # server ignored Range: start over
            start = 0
        length = resp.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, "ab" if start else "wb") as f, progress_bar(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=not progress,
        ) as bar:
            while block := resp.read(1 << 20):
                f.write(block)
                bar.update(len(block))


def _check_member(root: Path, name: str, is_link: bool, archive: Path) -> None:
    target = (root / name).resolve()
    if os.path.isabs(name) or ".." in Path(name).parts or not target.is_relative_to(root.resolve()) or is_link:
        raise DownloadError(f"{archive}: refusing archive member {name!r} (absolute path, '..' or link); "
                            "the archive is unsafe, delete it")


def _zip_is_link(info: zipfile.ZipInfo) -> bool:
    return (info.external_attr >> 16) & 0o170000 == 0o120000


def archive_members(archive: str | Path) -> list[str]:
    """Names of the regular-file members of a zip or tar archive, in archive order, all checked safe.

    Raises:
        DownloadError: any member is absolute, contains ``..`` or is a link (the
            whole archive is refused), or the file is not a tar/zip archive.
    """
    archive = Path(archive)
    root = Path("/nonexistent-huescale-root")
    names = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                _check_member(root, info.filename, _zip_is_link(info), archive)
                if not info.is_dir():
                    names.append(info.filename)
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            for m in tf.getmembers():
                _check_member(root, m.name, m.issym() or m.islnk() or m.isdev(), archive)
                if m.isfile():
                    names.append(m.name)
    else:
        raise DownloadError(f"{archive}: not a tar or zip archive; delete it and run the stage again")
    return names


def extract_members(archive: str | Path, dest: str | Path, members: dict[str, Path], progress: bool = True) -> int:
    """Extract only the named members of a zip or tar archive (never the whole archive).

    Each file is written to a temporary name and renamed into place, so a file
    that exists is complete; members already extracted are skipped (idempotent).

    Args:
        archive: the zip/tar(.gz) file.
        dest: the folder every output must stay inside.
        members: archive member name -> output path (inside ``dest``).
        progress: show a tqdm bar.

    Returns:
        The number of files written this time.

    Raises:
        DownloadError: a member escapes ``dest`` (absolute, ``..``, link), is missing
            from the archive, or the archive format is unknown.
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

    def write(stream, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        with open(tmp, "wb") as f:
            shutil.copyfileobj(stream, f, 1 << 20)
        os.replace(tmp, out)

    bar = progress_bar(total=len(todo), desc=f"extract {archive.name}", unit="file", disable=not progress)
    with bar:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for name, out in todo.items():
                    try:
                        info = zf.getinfo(name)
                    except KeyError:
                        raise DownloadError(f"{archive}: member {name!r} not found; delete the archive") from None
                    if _zip_is_link(info):
                        _check_member(dest, name, True, archive)
                    with zf.open(info) as stream:
                        write(stream, out)
                    bar.update(1)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:  # one sequential pass (works for .tgz too)
                left = dict(todo)
                for m in tf:
                    if m.name in left:
                        _check_member(dest, m.name, not m.isfile(), archive)
                        member = tf.extractfile(m)
                        if member is None:  # not a regular file: refused by _check_member above
                            raise DownloadError(f"{archive}: member {m.name!r} is not a file; delete the archive")
                        with member:
                            write(member, left.pop(m.name))
                        bar.update(1)
                        if not left:
                            break
                if left:
                    raise DownloadError(f"{archive}: member {next(iter(left))!r} not found; delete the archive")
        else:
            raise DownloadError(f"{archive}: not a tar or zip archive; delete it and run the stage again")
    return len(todo)


def extract(archive: str | Path, dest: str | Path) -> Path:
    """Safely extract a .tar/.tgz/.tar.gz/.zip archive into ``dest`` (atomically).

    Args:
        archive: the archive file.
        dest: the folder to create; it appears only when extraction finished.

    Returns:
        ``dest`` as a Path.

    Raises:
        DownloadError: a member escapes ``dest`` (absolute, ``..``, sym/hard link)
            or the archive format is unknown.
    """
    archive, dest = Path(archive), Path(dest)
    tmp = dest.with_name(dest.name + ".extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    _check_member(tmp, info.filename, _zip_is_link(info), archive)
                zf.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as tf:
                for m in tf.getmembers():
                    _check_member(tmp, m.name, m.issym() or m.islnk(), archive)
                tf.extractall(tmp, filter="data")
        else:
            raise DownloadError(f"{archive}: not a tar or zip archive")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest
