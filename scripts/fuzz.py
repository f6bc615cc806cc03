"""Seeded mutation fuzz of the image reader and of `huescale colorize` on real photographs. Prints JSON.

    python scripts/fuzz.py [--seconds 120] [--colorize-every 20] [--seed 0] [--photos DIR]

Each input is a real photograph (JPEG/PNG from ``../shared/data`` or ``--photos``, re-encoded to a few
formats) mutated by one seeded operation: flipped bytes, a truncation, a zeroed or duplicated chunk, a
corrupted header, random bytes spliced in. Every input goes through ``huescale.data.images.read_image``; every
``--colorize-every``-th also through ``huescale colorize`` (in-process CLI, the shipped model, into a fresh
output folder). Counted: inputs tried; reads that returned an image; clean errors (``ImageError`` from the
reader; exit status 1 with a one-line message from colorize); crashes (any other exception or exit status,
must be 0); inputs modified by the run (SHA-256 before and after, must be 0). The run stops after
``--seconds`` (bounded time) and reports its CPU time per input.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One seeded mutation of ``data``: ``(name, mutated bytes)``."""
    b = bytearray(data)
    op = rng.choice(["flip", "truncate", "zero_chunk", "dup_chunk", "header", "splice"])
    n = len(b)
    if op == "flip":
        for _ in range(rng.randint(1, 64)):
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
    elif op == "truncate":
        b = b[: rng.randrange(1, n)]
    elif op == "zero_chunk":
        i = rng.randrange(n)
        b[i:i + rng.randint(1, 4096)] = bytes(min(n - i, 4096))[: len(b[i:i + 4096])]
    elif op == "dup_chunk":
        i, j = sorted(rng.randrange(n) for _ in range(2))
        b = b[:j] + b[i:j] + b[j:]
    elif op == "header":
        for i in rng.sample(range(min(n, 64)), k=min(8, n)):
            b[i] = rng.randrange(256)
    else:
        i = rng.randrange(n)
        b = b[:i] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 512))) + b[i:]
    return op, bytes(b)


def seeds(folder: Path, limit: int = 24) -> list[tuple[str, bytes]]:
    """Real photographs re-encoded as small JPEG, PNG, WebP and TIFF (the formats users bring)."""
    from PIL import Image

    out = []
    for f in sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit // 4]:
        with Image.open(f) as im:
            im = im.convert("RGB")
            im.thumbnail((160, 160))
            for fmt, ext in (("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("TIFF", ".tif")):
                buf = io.BytesIO()
                im.save(buf, fmt)
                out.append((ext, buf.getvalue()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--colorize-every", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--photos", default=str(ROOT.parent / "shared" / "data" / "bsds500" / "test"))
    args = ap.parse_args()
    import torch

    from huescale.cli import main as cli
    from huescale.data.images import ImageError, read_image

    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    base = seeds(Path(args.photos))
    counts = {"tried": 0, "read_ok": 0, "read_clean_error": 0, "read_crash": 0, "colorized": 0,
              "colorize_ok": 0, "colorize_clean_error": 0, "colorize_crash": 0, "inputs_modified": 0}
    crashes: list[str] = []
    by_op: dict[str, int] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory(prefix="huescale-fuzz-") as tmp:
        while time.perf_counter() - t0 < args.seconds:
            ext, data = rng.choice(base)
            op, bad = mutate(data, rng)
            by_op[op] = by_op.get(op, 0) + 1
            path = Path(tmp) / f"in{counts['tried']}{ext}"
            path.write_bytes(bad)
            digest = hashlib.sha256(bad).hexdigest()
            counts["tried"] += 1
            try:
                read_image(path)
                counts["read_ok"] += 1
            except ImageError:
                counts["read_clean_error"] += 1
            except Exception as exc:  # noqa: BLE001 - a crash is what this benchmark counts
                counts["read_crash"] += 1
                crashes.append(f"read {op} {ext}: {type(exc).__name__}: {exc}"[:300])
            if counts["tried"] % args.colorize_every == 0:
                counts["colorized"] += 1
                err = io.StringIO()
                with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                    try:
                        out = Path(tmp) / f"out{counts['tried']}"
                        cli(["colorize", str(path), "--out", str(out), "--threads", "1"])
                        code = 0
                    except SystemExit as exc:
                        code = exc.code or 0
                    except Exception as exc:  # noqa: BLE001
                        code = f"{type(exc).__name__}: {exc}"
                lines = [ln for ln in err.getvalue().splitlines() if "Traceback" in ln]
                if code == 0:
                    counts["colorize_ok"] += 1
                elif code == 1 and not lines:
                    counts["colorize_clean_error"] += 1
                else:
                    counts["colorize_crash"] += 1
                    crashes.append(f"colorize {op} {ext}: {code} {err.getvalue()[-300:]}")
            if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                counts["inputs_modified"] += 1
            path.unlink()
    cpu = time.process_time() - c0
    json.dump({**counts, "mutations": by_op, "seed": args.seed, "seconds": round(time.perf_counter() - t0, 1),
               "cpu_ms_per_input": round(1000 * cpu / max(counts["tried"], 1), 2),
               "load_average_1min": round(os.getloadavg()[0], 2), "crashes": crashes[:20]}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
