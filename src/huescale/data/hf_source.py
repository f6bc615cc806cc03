"""The ``hf`` source: a Hugging Face dataset (``datasets.load_dataset``), its images written once into the
cache (the sampled rows only)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from huescale.atomic import TMP_RE, atomic_open, clean_stale_in
from huescale.data.images import IMAGE_EXTENSIONS
from huescale.data.subset import sample_order
from huescale.locks import file_lock
from huescale.progress import bar as progress_bar
from huescale.redact import redact


def _sniff_suffix(data: bytes, fallback: str) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    return fallback if fallback.lower() in IMAGE_EXTENSIONS else ".img"


class HfSource:
    """A Hugging Face data set with an image column; each image is written once into the cache as a file.

    ``datasets.load_dataset(name, config, split=split, streaming=streaming)``
    (``name`` may be ``parquet`` with ``data_files`` or ``imagefolder`` with
    ``data_dir`` for local data). Keys are ``hf/<name>/<split>/<row:08d>``; the
    original encoded bytes are stored (so bad images reach :func:`read_image`
    as they are). With ``limit``: a streamed set takes its first ``limit`` rows
    (reading no further); a map-style set takes the first ``limit`` row keys in
    the stable hash order of :func:`huescale.data.subset.sample_order`.

    Raises (from :meth:`fetch`):
        ConnectionError: a hub name that cannot be reached (offline, ``HF_HUB_OFFLINE=1``),
            with the local alternatives.
        KeyError: ``image_column`` is not a column of the data set.
    """

    name = "hf"

    def __init__(self, name: str, split: str, image_column: str, cache_dir: str | Path, config: str = "",
                 data_files: list[str] | None = None, data_dir: str = "", streaming: bool = False,
                 limit: int | None = None, seed: int = 0, progress: bool = True):
        self.ds_name, self.config, self.split, self.column = name, config or None, split, image_column
        self.data_files, self.data_dir, self.streaming = list(data_files or []), data_dir, streaming
        self.limit, self.seed, self.progress = limit, seed, progress
        self.cache = Path(cache_dir).expanduser()
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name + (f"_{config}" if config else ""))
        if data_files or data_dir:  # local builders: the files identify the data set
            import hashlib

            ident = "|".join(sorted(str(Path(f).expanduser().resolve()) for f in self.data_files) + [data_dir])
            slug += "_" + hashlib.sha256(ident.encode()).hexdigest()[:10]
        self.slug = slug
        self.root = self.cache / "hf" / slug / re.sub(r"[^A-Za-z0-9._-]+", "_", split)
        self._files: list[tuple[str, Path]] = []

    def _load(self):
        import datasets  # lazy: ~2.4 s, only for the hf source

        kwargs = {"split": self.split, "streaming": self.streaming, "cache_dir": str(self.cache / "hf_datasets")}
        if self.data_files:
            kwargs["data_files"] = [str(Path(f).expanduser()) for f in self.data_files]
        if self.data_dir:
            kwargs["data_dir"] = str(Path(self.data_dir).expanduser())
        try:
            ds = datasets.load_dataset(self.ds_name, self.config, **kwargs)
        except ConnectionError as exc:
            offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
            raise ConnectionError(
                f"data.hf.name={self.ds_name}: cannot reach the Hugging Face hub"
                f"{' (HF_HUB_OFFLINE=1 is set)' if offline else ''} ({redact(exc)}); use local data: "
                "data.hf.name=parquet with data.hf.data_files, or imagefolder with data.hf.data_dir, "
                "or data.source=folder") from None
        if self.column not in (ds.column_names or []):
            raise KeyError(f"data.hf.image_column={self.column!r} is not a column of {self.ds_name} "
                           f"(columns: {ds.column_names})")
        return ds.cast_column(self.column, datasets.Image(decode=False))

    def _write(self, key: str, value: dict, existing: dict[str, Path]) -> Path:
        """Write one image's encoded bytes under the cache once (temp file + rename); returns its path."""
        stem = self.root / key.rsplit("/", 1)[-1]
        if stem.name in existing:
            return existing[stem.name]
        data = value.get("bytes")
        if data is None and value.get("path"):
            data = Path(value["path"]).read_bytes()
        data = data or b""
        out = stem.with_suffix(_sniff_suffix(data, Path(value.get("path") or "").suffix))
        with atomic_open(out, "wb", clean=False) as f:  # stale temporaries: swept once in fetch
            f.write(data)
        return out

    def fetch(self) -> None:
        """Load the data set and write the selected rows' images into the cache (one process at a time)."""
        ds = self._load()
        prefix = f"hf/{self.slug}/{self.split}/"
        with file_lock(self.root, f"hf cache of {self.ds_name}"):
            self._fetch_rows(ds, prefix)

    def _fetch_rows(self, ds, prefix: str) -> None:
        clean_stale_in(self.root)
        have = ({p.stem: p for p in self.root.iterdir() if p.suffix != ".part" and not TMP_RE.match(p.name)}
                if self.root.is_dir() else {})
        files = []
        if self.streaming:
            rows = ds if self.limit is None else ds.take(self.limit)
            bar = progress_bar(rows, desc=f"hf {self.ds_name}", unit="img", disable=not self.progress)
            for i, row in enumerate(bar):
                key = f"{prefix}{i:08d}"
                files.append((key, self._write(key, row[self.column], have)))
        else:
            keys = sample_order([f"{prefix}{i:08d}" for i in range(len(ds))], self.seed)
            if self.limit is not None:
                keys = keys[: self.limit]
            col = ds.select_columns([self.column])
            for key in progress_bar(sorted(keys), desc=f"hf {self.ds_name}", unit="img", disable=not self.progress):
                files.append((key, self._write(key, col[int(key.rsplit("/", 1)[-1])][self.column], have)))
        self._files = sorted(files)

    def iter_files(self) -> Iterator[tuple[str, Path]]:
        """The cached image files of the selected rows, sorted by key."""
        yield from self._files
