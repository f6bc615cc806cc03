"""Resumable, verified downloads and safe, bounded archive extraction.

Downloads (:func:`download`):
- every archive must come with a checksum (md5 and/or sha256) or at least its size: a copy that
  cannot be verified is never installed (a truncated one would otherwise be reused forever);
- the transfer goes to ``<dest>.part``; the bytes received are checked against the server's
  ``Content-Length`` / ``Content-Range``, so a connection closed mid-body is noticed, the valid
  prefix is kept and the next attempt (or the next run) resumes it with HTTP ``Range``;
- the finished file is verified, fsynced and only then renamed into place, so a file at ``dest``
  is always complete and correct; a ``.verified`` marker spares re-hashing 18 GB on later runs;
- one process at a time per destination (a lock next to it): a second run waits for the first
  instead of writing the same ``.part``;
- credentials in the URL (``user:pass@``) are sent as HTTP basic auth, and every message shows
  the URL through :func:`huescale.redact.redact` (no password, token or signature).

:func:`cache_path` keys downloads by URL (not by file name), so two different archives that
happen to share a name never stand in for each other.

Extraction (:func:`extract`, :func:`extract_members`): members that would escape the target
(absolute paths, ``..``, links, devices) are refused; so are archives whose declared size (zip
central directory, tar headers) or actual output exceeds ``max_ratio`` x the archive size or
``max_bytes`` in all (decompression bombs: a 200 KB zip can hold 200 MB of zeros), and
extractions the free disk space cannot hold. Files are written under process-private temporary
names and renamed into place.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import shutil
import socket
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from huescale.atomic import atomic_open, clean_stale_in, clean_stale_tmp, commit, fsync_file, tmp_path, write_text
from huescale.locks import file_lock
from huescale.progress import bar as progress_bar
from huescale.redact import redact, url_identity

OFFLINE_HINT = (
    "this machine cannot reach it; to run offline, use a local copy: "
    "set data.source=folder and data.folders=[<dir of photos>] in params.yaml "
    "(or place the archive at the path above)"
)
# Decompression-bomb guards (params data.max_extract_ratio / data.max_extract_bytes).
DEFAULT_MAX_EXTRACT_RATIO = 200.0
DEFAULT_MAX_EXTRACT_BYTES = 100_000_000_000
DISK_MARGIN_BYTES = 256 * 2**20  # left free after an extraction or download


class DownloadError(RuntimeError):
    """A download or extraction that failed for good; the message names the URL or archive, the file
    and what to do (unreachable URL, HTTP error, truncated transfer, checksum mismatch, unsafe or
    oversized archive, disk full)."""


class _Incomplete(OSError):
    """The server closed the connection before the announced end of the body (transient: resume)."""


def file_digest(path: str | Path, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    """Hex digest of a file (``md5`` or ``sha256``), read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def url_file_name(url: str) -> str:
    """The file name of a URL's path (query and fragment ignored): ``.../a.tgz?sig=x`` -> ``a.tgz``."""
    name = Path(unquote(urlsplit(url).path)).name
    return name or "download"


def cache_path(cache_dir: str | Path, url: str, kind: str = "downloads") -> Path:
    """Where the cache keeps what comes from ``url``: ``<cache>/<kind>/<sha256(url)[:16]>/<file name>``.

    The key is the hash of :func:`huescale.redact.url_identity` (the URL without credentials or
    signatures), so the same object behind re-signed URLs is downloaded once, while two different
    archives with the same file name get different folders.
    """
    key = hashlib.sha256(url_identity(url).encode()).hexdigest()[:16]
    return Path(cache_dir).expanduser() / kind / key / url_file_name(url)


def _verify(path: Path, md5: str | None, sha256: str | None, url: str, size: int | None = None) -> None:
    """Check size and checksums of ``path``; on a mismatch delete it and raise a DownloadError."""
    if size is not None and path.stat().st_size != size:
        got = path.stat().st_size
        path.unlink(missing_ok=True)
        raise DownloadError(f"{redact(url)}: {path.name} has {got} bytes, expected {size}; the file was deleted. "
                            "If the archive changed on the server, update its size/checksum in params.yaml; "
                            "else run the stage again to re-download")
    for algo, want in (("md5", md5), ("sha256", sha256)):
        if want:
            digest = file_digest(path, algo)
            if digest != want.lower():
                path.unlink(missing_ok=True)
                raise DownloadError(
                    f"{redact(url)}: {path.name}: {algo} mismatch (expected {want}, got {digest}); the corrupt "
                    "file was deleted. Run the stage again to re-download; if it fails again, the URL serves "
                    "another file: fix the URL or the checksum in params.yaml"
                )


def _is_unreachable(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, socket.gaierror):
        return True
    return isinstance(reason, OSError) and reason.errno in (101, 111, 113)  # ENETUNREACH, ECONNREFUSED, EHOSTUNREACH


def _request(url: str, start: int) -> urllib.request.Request:
    """A GET request; credentials in the URL become an ``Authorization: Basic`` header (urllib cannot
    take them in the URL)."""
    parts = urlsplit(url)
    headers = {"User-Agent": "huescale"}
    if parts.username is not None or "@" in parts.netloc:
        userinfo, _, host = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
        url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.Request(url, headers=headers)


def download(url: str, dest: str | Path, md5: str | None = None, sha256: str | None = None,
             retries: int = 3, timeout: float = 30.0, progress: bool = True, size: int | None = None,
             param: str | None = None) -> Path:
    """Download ``url`` to ``dest``: verified, resumable, one process at a time.

    Args:
        url: http(s) URL; ``user:password@`` in it is sent as basic auth and never printed.
        dest: final path; its folder is created. If it already exists and matches the checksum
            (or the size), nothing is downloaded.
        md5, sha256: expected hex digests (either or both).
        retries: attempts after the first for transient errors (timeouts, resets, a connection
            closed mid-body, HTTP 5xx), with exponential backoff (1, 2, 4 ... s); each resumes
            the bytes already received.
        timeout: socket timeout in seconds.
        progress: show a tqdm bar with bytes and rate.
        size: expected size in bytes (the least verification accepted when no checksum is known).
        param: the params.yaml key that gives the checksum, named in the message when none is given.

    Returns:
        ``dest`` as a Path.

    Raises:
        DownloadError: no checksum and no size (names ``param``); unreachable host (at once, with
            the offline option); HTTP error; transfer still incomplete after the retries (the
            partial file is kept for the next run to resume); size or checksum mismatch (the bad
            file is removed); disk full. Every message names the (redacted) URL and the file.
    """
    dest = Path(dest)
    if not (md5 or sha256 or size):
        raise DownloadError(
            f"{redact(url)}: no checksum or size given for {dest.name}; huescale installs only archives it can "
            f"verify (a truncated copy would otherwise be reused forever). Set {param or 'its md5'} to the "
            "archive's md5 (md5sum FILE on a good copy)")
    with file_lock(dest, f"download of {dest.name}"):
        return _download_locked(url, dest, md5, sha256, size, retries, timeout, progress)


def _download_locked(url: str, dest: Path, md5: str | None, sha256: str | None, size: int | None, retries: int,
                     timeout: float, progress: bool) -> Path:
    if dest.exists():
        if _verified_before(dest, md5, sha256, size):
            return dest
        try:
            _verify(dest, md5, sha256, url, size)
            _mark_verified(dest, md5, sha256, size)
            return dest
        except DownloadError:
            pass  # corrupt copy removed by _verify: download again
    part = dest.with_name(dest.name + ".part")  # stable name (resume); only the lock holder touches it
    clean_stale_tmp(dest)
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, progress, size)
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416:  # range beyond the end: the part file is complete (or bogus: verified below)
                break
            if exc.code < 500 or attempt == retries:
                raise DownloadError(f"{redact(url)}: HTTP {exc.code} {exc.reason} while downloading {dest.name}; "
                                    "check the URL (and its credentials) in params.yaml, or run again later "
                                    "if the server is down") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            if _is_unreachable(exc):
                raise DownloadError(f"cannot download {redact(url)} to {dest}: {redact(exc)}; {OFFLINE_HINT}") from None
            if isinstance(exc, OSError) and exc.errno == 28:  # ENOSPC
                raise DownloadError(f"{redact(url)}: disk full while writing {part}; free space or point "
                                    "data.cache_dir (or HUESCALE_CACHE) at a larger disk, then run again to "
                                    "resume") from None
            if attempt == retries:
                have = part.stat().st_size if part.exists() else 0
                raise DownloadError(f"{redact(url)}: download of {dest.name} failed after {retries + 1} attempts "
                                    f"({redact(exc)}); the {have} bytes received are kept in {part}: run the "
                                    "stage again to resume") from None
        except ValueError as exc:  # a malformed URL (http.client.InvalidURL, unknown scheme)
            raise DownloadError(f"{redact(url)}: not a valid download URL ({redact(exc)}); fix it in "
                                "params.yaml") from None
        time.sleep(2**attempt)
    if not part.exists():
        raise DownloadError(f"{redact(url)}: the server sent nothing for {dest.name}; run the stage again, or "
                            "check the URL")
    _verify(part, md5, sha256, url, size)
    fsync_file(part)
    commit(part, dest)
    _mark_verified(dest, md5, sha256, size)
    return dest


def _stamp(dest: Path, md5: str | None, sha256: str | None, size: int | None) -> str:
    st = dest.stat()
    return f"md5={md5} sha256={sha256} expected_size={size} size={st.st_size} mtime_ns={st.st_mtime_ns}"


def _mark_verified(dest: Path, md5: str | None, sha256: str | None, size: int | None) -> None:
    """Record that ``dest`` (this size and mtime) matched its checksums: later runs skip re-hashing 18 GB."""
    write_text(_stamp(dest, md5, sha256, size), dest.with_name(dest.name + ".verified"))


def _verified_before(dest: Path, md5: str | None, sha256: str | None, size: int | None) -> bool:
    marker = dest.with_name(dest.name + ".verified")
    return marker.is_file() and marker.read_text() == _stamp(dest, md5, sha256, size)


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _check_space(folder: Path, need: int, what: str) -> None:
    """Raise a DownloadError if ``folder``'s disk has less than ``need`` bytes (+ a margin) free."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < need + DISK_MARGIN_BYTES:
        raise DownloadError(f"{what} needs {need / 1e9:.2f} GB in {folder} but only {free / 1e9:.2f} GB are free; "
                            "free disk space or point data.cache_dir (or HUESCALE_CACHE) at a larger disk")


def _fetch(url: str, part: Path, timeout: float, progress: bool, size: int | None) -> None:
    """Append the rest of ``url`` to ``part`` (resuming at its size).

    Raises:
        _Incomplete: the body ended before ``Content-Length`` bytes (the prefix is kept).
        DownloadError: the server reports a size that contradicts ``size``.
    """
    start = part.stat().st_size if part.exists() else 0
    if size is not None and start > size:  # longer than the file can be: not a prefix of it
        part.unlink()
        start = 0
    if size is not None and start == size:
        return  # complete already: verify
    with urllib.request.urlopen(_request(url, start), timeout=timeout) as resp:
        total = None
        if start and resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if m is not None and int(m[1]) != start:  # not the range asked for: start over
                start = 0
            elif m is not None and m[3] != "*":
                total = int(m[3])
        elif start:  # server ignored Range: start over
            start = 0
        length = resp.headers.get("Content-Length")
        length = int(length) if length is not None and length.isdigit() else None
        if total is None and length is not None:
            total = start + length
        if size is not None and total is not None and total != size:
            raise DownloadError(f"{redact(url)}: the server's file has {total} bytes, expected {size} for {part.name}; "
                                "the URL serves another file: fix the URL or the size/checksum in params.yaml")
        if total is not None:
            _check_space(part.parent, total - start, f"downloading {redact(url)}")
        received = 0
        with open(part, "ab" if start else "wb") as f, progress_bar(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=not progress,
        ) as bar:
            while block := resp.read(1 << 20):
                f.write(block)
                received += len(block)
                bar.update(len(block))
        if length is not None and received < length:
            raise _Incomplete(f"connection closed after {start + received} of {start + length} bytes")
        if length is not None and received > length:
            raise _Incomplete(f"server sent {received} bytes, more than its Content-Length {length}")


# -- archives --------------------------------------------------------------------------------------
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
        _check_space(Path(dest), out, f"extracting {archive.name}")


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
        _check_space(out.parent, declared, f"extracting {name} from {archive.name}")
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
        budget = [max_bytes]
        try:
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


def fetch_extracted(url: str, cache_dir: str | Path, ready: str, md5: str | None = None, sha256: str | None = None,
                    param: str | None = None, offline_hint: str = "", progress: bool = True) -> Path:
    """Download an archive once (resumable, checksum-verified) into the cache and extract it once (safely).

    Args:
        url: the archive's URL; the cache keys its file and extraction by it (:func:`cache_path`).
        cache_dir: the download cache (``~`` expanded).
        ready: a path inside the extraction whose presence means it is complete (then nothing is fetched).
        md5, sha256: the archive's expected digests (:func:`download`).
        param: the setting that names this archive, for :func:`download`'s messages.
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
