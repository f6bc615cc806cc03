"""Two real processes on the same shared state at once (issue 13): a pair store, a download cache.

Each test starts two Python processes that wait for a common start signal (a file), then do the
same work on the same folder. Before the locks and per-process temporary names, two ``prepare``
runs both reported success and left a manifest without shards, and two extractions crashed on the
same ``.part`` name.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from archives import imagenette_tgz

GO = "import time, pathlib, sys\nwhile not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.005)\n"


def _run_pair(code: str, args: list[list[str]], go: Path, timeout: int = 300) -> list[subprocess.CompletedProcess]:
    """Start one process per argument list running ``code``, release them together, wait for both."""
    import huescale

    src = Path(huescale.__file__).resolve().parents[1]  # the huescale this test imports (worktree or installed)
    env = {**os.environ, "PYTHONPATH": str(src) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    procs = [subprocess.Popen([sys.executable, "-c", GO + code, str(go), *a], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for a in args]
    time.sleep(1.0)  # both started and polling
    go.touch()
    out = []
    for p in procs:
        so, se = p.communicate(timeout=timeout)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, so, se))
    return out


STORE = """
import json
from pathlib import Path
from huescale.config import DataConfig
from huescale.data.source_base import FolderSource
from huescale.data.sources import list_images
from huescale.data.store_build import build_pair_store
folder, out = sys.argv[2], sys.argv[3]
refs = list_images(FolderSource([folder]))
cfg = DataConfig(source="folder", folders=[folder], n_images=1000, min_images=1, workers=1, shard_size=8)
m = build_pair_store(refs, cfg, Path(out), progress=False)
print(json.dumps({"usable": m["usable"], "shards": m["shards"]}))
"""


def test_two_prepares_into_one_store_wait_for_each_other(shared_data, tmp_path):
    folder = shared_data / "bsds500" / "test"  # 200 real photographs; each run takes a few seconds
    out = tmp_path / "data" / "pairs"
    res = _run_pair(STORE, [[str(folder), str(out)], [str(folder), str(out)]], tmp_path / "go")
    for r in res:
        assert r.returncode == 0, r.stderr[-2000:]
    waited = [r for r in res if "waiting for the lock" in r.stderr]
    assert len(waited) == 1 and "held by pid" in waited[0].stderr and "pair store" in waited[0].stderr
    reported = [json.loads(r.stdout.strip().splitlines()[-1]) for r in res]
    assert reported[0] == reported[1]  # the same store, built twice, one after the other
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["usable"] == reported[0]["usable"] > 150
    n = 0
    for split, names in manifest["shards"].items():
        for name, files in names.items():
            for fn in files:
                a = np.load(out / split / fn, mmap_mode="r")  # every shard the manifest names is there and whole
                assert a.dtype == np.uint8 and a.shape[1:] in ((64, 64, 3), (256, 256, 3))
                n += len(a) if name == "gt64" else 0
    assert n == manifest["usable"]
    leftovers = [p.name for p in out.parent.iterdir() if p.name not in ("pairs", ".pairs.lock")]
    assert leftovers == []  # no temporary folder of either run left behind


class SlowRangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` in 16 kB pieces, 10 ms apart (so two downloads overlap), with Range support."""

    def do_GET(self):  # noqa: N802
        data = self.server.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        rng = self.headers.get("Range")
        self.server.requests.append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        if start >= len(data):
            self.send_error(416)
            return
        body = data[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        for i in range(0, len(body), 16384):
            self.wfile.write(body[i:i + 16384])
            time.sleep(0.01)

    def log_message(self, *args):
        pass


FETCH = """
import json
from huescale.data.archive_sources import ImagenetteSource
from huescale.data.sources import list_images
url, md5, cache = sys.argv[2], sys.argv[3], sys.argv[4]
refs = list_images(ImagenetteSource(url, md5, cache, progress=False))
print(json.dumps(sorted((r.key, r.sha256) for r in refs)))
"""


@pytest.fixture
def slow_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowRangeHandler)
    srv.files, srv.requests = {}, []
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_two_downloads_and_extractions_of_one_archive_at_once(slow_server, shared_data, tmp_path):
    data = imagenette_tgz(shared_data / "imagenette", "imagenette2-320", per_class=6, classes=3)
    slow_server.files["/imagenette2-320.tgz"] = data
    url = f"http://127.0.0.1:{slow_server.server_address[1]}/imagenette2-320.tgz"
    md5 = hashlib.md5(data).hexdigest()
    cache = tmp_path / "cache"
    res = _run_pair(FETCH, [[url, md5, str(cache)], [url, md5, str(cache)]], tmp_path / "go")
    for r in res:
        assert r.returncode == 0, r.stderr[-2000:]
    listings = [json.loads(r.stdout.strip().splitlines()[-1]) for r in res]
    assert listings[0] == listings[1] and len(listings[0]) == 2 * 3 * 6
    assert any("waiting for the lock" in r.stderr and "download of imagenette2-320.tgz" in r.stderr for r in res)
    assert slow_server.requests == [None]  # downloaded once: the second run found it complete and verified
    files = [p for p in cache.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith((".part", ".tmp"))]  # no temporaries left
    archive = next(p for p in files if p.name == "imagenette2-320.tgz")
    assert hashlib.md5(archive.read_bytes()).hexdigest() == md5


CLI = "from huescale.cli import main\nmain(sys.argv[2:])\n"


def test_four_colorize_processes_on_one_output_folder(shared_data, tmp_path):
    """Load (issue 23): four ``huescale colorize`` processes released together into one output folder. With
    distinct inputs every output is there, byte for byte what one process writes alone; with the same inputs
    and ``--overwrite`` every file is still one whole result (the writes are atomic) and no temporary or
    partial file is left behind."""
    from huescale.cli import main

    photos = sorted((shared_data / "bsds500" / "test").glob("*.jpg"))[:8]
    ref = tmp_path / "ref"
    with pytest.raises(SystemExit) as done:
        main(["colorize", *map(str, photos), "--out", str(ref), "--format", "png"])
    assert done.value.code in (0, None)
    expected = sorted(p.name for p in ref.iterdir())
    assert len(expected) == 8

    out = tmp_path / "shared"
    parts = [photos[i::4] for i in range(4)]
    runs = _run_pair(CLI, [["colorize", *map(str, part), "--out", str(out), "--format", "png"] for part in parts],
                     tmp_path / "go1")
    assert [r.returncode for r in runs] == [0, 0, 0, 0], [r.stderr[-500:] for r in runs]
    assert sorted(p.name for p in out.iterdir()) == expected  # nothing else: no temporary, no partial file
    assert all((out / n).read_bytes() == (ref / n).read_bytes() for n in expected)

    runs = _run_pair(CLI, [["colorize", *map(str, photos), "--out", str(out), "--format", "png", "--overwrite"]
                           for _ in range(4)], tmp_path / "go2")
    assert [r.returncode for r in runs] == [0, 0, 0, 0], [r.stderr[-500:] for r in runs]
    assert sorted(p.name for p in out.iterdir()) == expected
    assert all((out / n).read_bytes() == (ref / n).read_bytes() for n in expected)
