"""Resumable, verified downloads.

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

Extraction: :mod:`huescale.data.archives`.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from huescale.atomic import clean_stale_tmp, commit, fsync_file, write_text
from huescale.locks import file_lock
from huescale.progress import bar as progress_bar
from huescale.redact import redact, url_identity

OFFLINE_HINT = (
    "this machine cannot reach it; to run offline, use a local copy: "
    "set data.source=folder and data.folders=[<dir of photos>] in params.yaml "
    "(or place the archive at the path above)"
)
# Decompression-bomb guards (params data.max_extract_ratio / data.max_extract_bytes).
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


def check_space(folder: Path, need: int, what: str) -> None:
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
            check_space(part.parent, total - start, f"downloading {redact(url)}")
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
