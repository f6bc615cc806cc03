"""Data preparation throughput and memory, and the training loader vs the U-Net 64 step. Prints JSON.

    python benchmarks/prepare.py [--images 1200] [--rss 1000 10000] [--workers 2]

Measures, in one run, on COCO-sized photographs (../shared/data coco128 and
bsds500, 333-640 px a side, repeated through a listing that points many
distinct keys at the same files; nothing is copied):

1. images/s of decode -> crop -> resize -> store: ``build_pair_store`` with
   ``--workers`` processes vs a naive single-process Pillow loop (open,
   convert, centre crop, resize to 256 and 64, stack, ``np.save``), and the ratio;
2. peak RSS of the prepare at each ``--rss`` size, each in a fresh subprocess
   (``VmHWM`` of the main process and of its largest worker), and the CPU
   seconds per image of all its processes (a rate that other jobs on a shared
   machine distort less than wall time); like the naive loop's, the clock starts
   after the imports and the listing, and the benchmark's own ``/proc`` poller
   thread is not counted (``cpu_poller_s``); ``cpu_main_s`` / ``cpu_workers_s``
   split the rest;
3. the training loader (``PairDataset`` + ``DataLoader`` -> Lab batches, as the
   colorization task makes them) vs what a U-Net 64 adversarial training step
   consumes on CPU (U-Net + PatchGAN, LSGAN + lambda_L1, batch 16; Brescia et al., Singh et al.),
   in images/s, and their ratio.

Targets : >= 300 img/s with 2 workers; RSS within 20 % between 1k and
10k images; loader >= 5x the step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HUESCALE_TEST_DATA") or os.environ.get("HUESCALE_SHARED_DATA")
            or ROOT.parent / "shared" / "data")  # the photographs of the tests (see tests/conftest.py)


def photos() -> list[Path]:
    """COCO-sized real photographs: coco128 (original size) and bsds500 train/test (481x321)."""
    files = sorted((DATA / "coco128" / "train2017").glob("*.jpg"))
    files += sorted((DATA / "bsds500" / "train").glob("*.jpg")) + sorted((DATA / "bsds500" / "test").glob("*.jpg"))
    return files


def repeated_refs(n: int):
    """``n`` listing entries with distinct keys (``rep<k>/<file>``) cycling over the same photographs."""
    from huescale.data.source_base import ImageRef

    files = photos()
    return [ImageRef(key=f"rep{i // len(files)}/{files[i % len(files)].name}", path=str(files[i % len(files)]),
                     size=0, sha256="") for i in range(n)]


def pipeline_rate(n: int, workers: int, refs: list | None = None) -> dict:
    """``build_pair_store`` on ``n`` candidates: images processed per second (usable and excluded)."""
    from huescale.config import DataConfig
    from huescale.data.store_build import build_pair_store

    cfg = DataConfig(source="folder", folders=["x"], n_images=n, min_images=1, workers=workers)
    refs = repeated_refs(n) if refs is None else refs
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        m = build_pair_store(refs, cfg, Path(tmp) / "pairs", progress=False)
        wall = time.perf_counter() - t0
    return {"images": m["candidates_seen"], "usable": m["usable"], "wall_s": round(wall, 2),
            "img_s": round(m["candidates_seen"] / wall, 1)}


def naive_rate(n: int) -> dict:
    """A naive single-process Pillow loop over the same ``n`` files: decode, crop, resize 256 and 64, save."""
    from PIL import Image

    refs = repeated_refs(n)
    hr, lr = [], []
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        for r in refs:
            im = Image.open(r.path).convert("RGB")
            w, h = im.size
            s = min(w, h)
            im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
            big = im.resize((256, 256), Image.BICUBIC)
            hr.append(np.asarray(big))
            lr.append(np.asarray(big.resize((64, 64), Image.BICUBIC)))
        np.save(Path(tmp) / "hr.npy", np.stack(hr))
        np.save(Path(tmp) / "lr.npy", np.stack(lr))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"images": n, "wall_s": round(wall, 2), "img_s": round(n / wall, 1),
            "cpu_ms_per_img": round(cpu / n * 1e3, 2),
            "img_s_if_1_free_core": round(n / cpu, 1), "load_avg_1min": round(os.getloadavg()[0], 2)}


def _proc_tree(root: int) -> dict[int, tuple[int, float]]:
    """``pid -> (VmHWM KiB, CPU seconds user+sys)`` for ``root`` and every live descendant (Linux ``/proc``)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, tick = {}, os.sysconf("SC_CLK_TCK")
    for pid in parent:
        p = pid
        while p in parent and p != root:
            p = parent[p]
        if p != root:
            continue
        try:
            fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            hwm = next(int(line.split()[1]) for line in (Path("/proc") / str(pid) / "status").read_text().splitlines()
                       if line.startswith("VmHWM:"))
            out[pid] = (hwm, cpu)
        except (OSError, ValueError, IndexError, StopIteration):
            pass
    return out


def child(n: int, workers: int) -> None:
    """(In a fresh subprocess) prepare ``n`` images; print JSON with wall time, CPU time and peak RSS.

    Polls ``/proc`` every 0.25 s: the pool workers are children of the
    forkserver (not in ``RUSAGE_CHILDREN``), and ``ru_maxrss`` would carry the
    parent's high-water mark over ``exec``; ``VmHWM`` does not.
    """
    import threading

    seen: dict[int, tuple[int, float]] = {}
    done = threading.Event()
    me = os.getpid()
    poller_cpu = [0.0]

    def poll() -> None:
        while not done.wait(0.25):
            for pid, (hwm, cpu) in _proc_tree(me).items():
                old = seen.get(pid, (0, 0.0))
                seen[pid] = (max(old[0], hwm), max(old[1], cpu))
        poller_cpu[0] = time.thread_time()  # this thread's own CPU: the benchmark's, not the pipeline's

    import huescale.data.store_build  # noqa: F401 - imported (and the listing built) before the CPU clock starts, as
    refs = repeated_refs(n)  # naive_rate does for Pillow and its listing; the pool's own imports still count

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    cpu0 = _proc_tree(me)[me][1]
    out = pipeline_rate(n, workers, refs)
    done.set()
    t.join()
    final = _proc_tree(me)[me]
    others = {pid: v for pid, v in seen.items() if pid != me}
    main_cpu = final[1] - cpu0 - poller_cpu[0]  # the main process, without the /proc poller
    cpu = main_cpu + sum(v[1] for v in others.values())  # forkserver + workers: all their CPU is ours
    out["cpu_s"] = round(cpu, 2)
    out["cpu_main_s"] = round(main_cpu, 2)
    out["cpu_workers_s"] = round(cpu - main_cpu, 2)  # forkserver + pool workers
    out["cpu_poller_s"] = round(poller_cpu[0], 3)  # the benchmark's own /proc polling, not counted
    out["cpu_ms_per_img"] = round(cpu / out["images"] * 1e3, 2)
    out["img_s_if_2_free_cores"] = round(2 / (cpu / out["images"]), 1)
    out["peak_rss_main_mib"] = round(max(final[0], seen.get(me, (0, 0))[0]) / 1024, 1)
    out["peak_rss_worker_mib"] = round(max((v[0] for v in others.values()), default=0) / 1024, 1)
    print(json.dumps(out))


def run_child(n: int, workers: int) -> dict:
    """:func:`child` in a fresh Python process (its own memory high-water mark)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, __file__, "--child", str(n), "--workers", str(workers)],
                         capture_output=True, text=True, env=env, check=True)
    return {**json.loads(res.stdout.strip().splitlines()[-1]), "load_avg_1min": round(os.getloadavg()[0], 2)}


def loader_vs_step(batch: int = 16, seconds: float = 8.0, steps: int = 10) -> dict:
    """Loader delivery (uint8 pairs -> Lab batches) vs U-Net 64 adversarial step consumption, img/s."""
    import torch
    from torch.utils.data import DataLoader

    from huescale.config import DataConfig
    from huescale.data.dataset import PairDataset
    from huescale.data.store import PairStore
    from huescale.data.store_build import build_pair_store
    from huescale.training.tasks import COLORIZATION

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from train import step_rate  # the same step benchmarks/train.py measures

    step, _ = step_rate("unet64_adversarial", False, torch.device("cpu"), batch, steps, False)  # (img/s, CPU-ms)
    with tempfile.TemporaryDirectory() as tmp:
        build_pair_store(repeated_refs(len(photos())), DataConfig(source="folder", folders=["x"], n_images=10**6,
                                                                  min_images=1, workers=2),
                         Path(tmp) / "p", progress=False)
        ds = PairDataset(PairStore(Path(tmp) / "p"), "train", "64")
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for b in DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True):
                L, ab = COLORIZATION.prepare(b)
                n += L.shape[0]
        loader = n / (time.perf_counter() - t0)
    return {"loader_lab_img_s": round(loader, 1), "unet64_step_img_s": round(step, 1),
            "ratio": round(loader / step, 2), "target_ratio": 5.0, "torch_threads": torch.get_num_threads(),
            "train_images": len(ds)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1200, help="candidates for the throughput comparison")
    ap.add_argument("--rss", type=int, nargs="*", default=[1000, 10000], help="sizes for the peak-RSS runs")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.workers)
        return
    import PIL

    out: dict = {"cpu_count": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2), "pillow": PIL.__version__,
                 "photos": f"{len(photos())} distinct (coco128 + bsds500), repeated"}
    naive = naive_rate(args.images)
    pipe = run_child(args.images, args.workers)
    out["throughput"] = {
        "pipeline": {**pipe, "workers": args.workers}, "naive_pillow_1proc": naive,
        "ratio_wall": round(pipe["img_s"] / naive["img_s"], 2),
        "ratio_cpu_bound": round(pipe["img_s_if_2_free_cores"] / naive["img_s_if_1_free_core"], 2),
        "target_img_s": 300,
        "note": "wall-clock rates depend on the other jobs on the machine (see load_avg_1min); the *_if_free_core* "
                "rates divide the images by the CPU seconds all processes of the run used",
    }
    rss = {str(n): run_child(n, args.workers) for n in args.rss}
    if len(args.rss) >= 2:
        a, b = rss[str(args.rss[0])], rss[str(args.rss[-1])]
        rss["growth_main"] = round(b["peak_rss_main_mib"] / a["peak_rss_main_mib"] - 1, 3)
        rss["growth_worker"] = round(b["peak_rss_worker_mib"] / a["peak_rss_worker_mib"] - 1, 3)
        rss["target_growth"] = 0.2
    out["peak_rss"] = rss
    out["loader_vs_unet64_step"] = loader_vs_step()
    out["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
