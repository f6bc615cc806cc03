"""Shared fixtures: real photographs (a local copy, or fetched: huescale.data.testphotos) and offline weights."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# the real photographs the tests read: $HUESCALE_TEST_DATA (or the older $HUESCALE_SHARED_DATA), else a local copy
# beside the clone (../shared/data), else the pinned bundle fetched once into $HUESCALE_CACHE (~/.cache/huescale)
# from $HUESCALE_TEST_PHOTOS_URL or the release asset (huescale.data.testphotos)
EXPLICIT_DATA = os.environ.get("HUESCALE_TEST_DATA") or os.environ.get("HUESCALE_SHARED_DATA")
LOCAL_COPIES = [ROOT.parent / "shared" / "data"]

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# Prefect: a local ephemeral server with its own database, no telemetry (before prefect is imported)
os.environ.pop("PREFECT_API_URL", None)
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="huescale-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def _share_the_cores() -> None:
    """Give each pytest-xdist worker its share of the cores, for torch in it and in every process it starts.

    Torch's default is one OpenMP thread per core in every process: with the README's ``-n 2`` on CI's 2 cores,
    both workers and the pipeline stages they run as subprocesses would each start 2 threads that spin-wait on
    each other (``data/store.py`` measured 10-50x slower steps for threads fighting over 2 busy cores). xdist sets
    ``PYTEST_XDIST_WORKER_COUNT`` before this file is imported; an explicit ``OMP_NUM_THREADS`` wins, and a test
    that sets threads itself (``runtime.threads``, ``--threads``) still gets what it asks for.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        share = str(max(1, cores // workers))
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, share)


_share_the_cores()


@pytest.fixture(autouse=True)
def _no_leaked_tracking_uri():
    """mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI, which huescale honours over tracking.uri: a test that
    tracks in-process must not send a later test's subprocesses to its database."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only folder of real photographs (located or fetched once per machine); the suite needs it."""
    from huescale.data.download import DownloadError
    from huescale.data.testphotos import is_photo_root, locate

    try:
        root = locate(EXPLICIT_DATA, LOCAL_COPIES, os.environ.get("HUESCALE_CACHE") or "~/.cache/huescale",
                      progress=False)
    except DownloadError as exc:
        pytest.fail(f"the test photographs could not be fetched: {exc}")
    if not is_photo_root(root):
        pytest.fail(f"real photographs not found at {root}: set HUESCALE_TEST_DATA to a folder with "
                    "imagenet_sample/, bsds500/, coco128/, imagenette/ and benchmarks/")
    return root


@pytest.fixture(scope="session")
def photos(shared_data) -> list[Path]:
    """A fixed list of real colour photographs (JPEG, various sizes)."""
    files = sorted((shared_data / "imagenet_sample").glob("*"))[:40]
    return [f for f in files if f.suffix.lower() in (".jpg", ".jpeg", ".png")]


@pytest.fixture(scope="session")
def real_batch(photos) -> np.ndarray:
    """16 colour photographs as a ``16 x 64 x 64 x 3`` uint8 array (centre crop, MATLAB bicubic)."""
    from huescale.data.images import is_grayscale, read_image
    from huescale.data.tiers import _center_square
    from huescale.resize import imresize

    out = []
    for f in photos:
        a = read_image(f)
        if not is_grayscale(a):
            out.append(imresize(_center_square(a), (64, 64)))
        if len(out) == 16:
            break
    return np.stack(out)


def save_random_fid_weights(torch_home: Path) -> Path:
    """Save a randomly initialised FID Inception (He-normal convs) where pytorch-fid looks for it.

    Exercises the real FID code path offline; the values it gives are not
    comparable with published FIDs (ENVIRONMENT.md: with PyTorch's default init
    the pool3 features vanish, so the convs are re-initialised).
    """
    import torch

    from huescale.evaluation.fid import fid_inception_v3

    torch.manual_seed(0)
    net = fid_inception_v3()
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    path = torch_home / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


def browser_check(html: Path, screenshot: Path, width: int = 1300, evaluate: dict[str, str] | None = None) -> dict:
    """Open a report in headless Chromium (Playwright + the system browser) and inspect it.

    Returns ``{"images": n, "broken": [alt or src of images that did not load], "errors": [console
    errors and page exceptions], "svgs": n, "height": page height in px, "evaluated": {name: value}}``
    and writes a full-page screenshot. ``evaluate`` maps names to JavaScript expressions evaluated in the
    page after it loaded (and its image error handlers ran), e.g. ``{"xss": "typeof window.__xss"}``.
    ``HUESCALE_SCREENSHOTS=<dir>`` also keeps a copy there (to look at them).
    Skips when Chromium is absent, except under CI (`.ci/run` exports CI=true and installs it): there it fails.
    """
    import shutil

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "Chromium not installed (apt-get install -y chromium; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url[:80]}"))
            page.goto(html.resolve().as_uri(), wait_until="load")
            info = page.evaluate("""() => ({
                images: document.images.length,
                broken: Array.from(document.images)
                    .filter(i => !i.complete || i.naturalWidth === 0)
                    .map(i => i.alt || i.src.slice(0, 60)),
                svgs: document.querySelectorAll('svg').length,
                height: document.documentElement.scrollHeight,
            })""")
            page.wait_for_timeout(300)  # let error/load handlers of broken images run
            info["evaluated"] = {k: page.evaluate(expr) for k, expr in (evaluate or {}).items()}
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    keep = os.environ.get("HUESCALE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / screenshot.name)
    return {**info, "errors": errors}


def save_random_vgg_weights(torch_home: Path, arch: str = "vgg16") -> Path:
    """Save a randomly initialised VGG's conv part (He-normal) as torchvision's cached weights file.

    Exercises the real content-loss code path offline (keys ``features.*`` as
    in torchvision's file; the classifier, unused by the losses, is left out
    to keep the file small). Values are not those of the ImageNet VGG.
    """
    import torch
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["D" if arch == "vgg16" else "E"])
    for m in features.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
            torch.nn.init.zeros_(m.bias)
    name = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}[arch]
    path = torch_home / "hub" / "checkpoints" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path


@pytest.fixture(scope="session")
def vgg_home(tmp_path_factory) -> Path:
    """A temporary TORCH_HOME holding random VGG16 and VGG19 weights (see :func:`save_random_vgg_weights`)."""
    home = tmp_path_factory.mktemp("torch_home")
    save_random_vgg_weights(home, "vgg16")
    save_random_vgg_weights(home, "vgg19")
    return home


def run_checked(cmd: list, cwd: Path, env: dict, timeout: int = 900) -> str:
    """Run a command (DVC, git, the huescale CLI) and fail the test with its output's tail if it fails."""
    import subprocess

    cmd = [str(c) for c in cmd]
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout + res.stderr


def default_params_text(root: Path = ROOT) -> str:
    """The project's default params: ``params.yaml`` as committed (``git show HEAD:params.yaml``), whatever profile
    the working tree's file has had applied since (``huescale profile offline`` names ``../shared/data`` folders,
    absent beside a copy of the project). Outside a git checkout (an unpacked sdist): the file itself.

    Tests build their params from this (and from what they set themselves), never from the working tree's file.
    """
    import subprocess

    try:
        res = subprocess.run(["git", "-C", str(root), "show", "HEAD:params.yaml"], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.SubprocessError):
        res = None
    if res is not None and res.returncode == 0 and res.stdout.strip():
        return res.stdout
    return (root / "params.yaml").read_text()


def default_params(root: Path = ROOT) -> dict:
    """:func:`default_params_text` as a dict."""
    import yaml

    return yaml.safe_load(default_params_text(root))


def copy_project(dest: Path, root: Path = ROOT) -> Path:
    """Copy the project's working tree to ``dest`` without outputs, caches, the venv or git history; its
    ``params.yaml`` is the committed default (:func:`default_params_text`), not the working tree's (maybe
    profiled) file."""
    import shutil

    top_level = {".venv", ".git", "data", "models", "metrics", "eval", "mlflow.db", "mlruns", ".huescale",
                 ".pytest_cache", "dvc.lock", "metrics.json", "build", "ablations"}

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n == "__pycache__" or n.endswith(".egg-info")}
        if Path(folder) == root:
            skip |= top_level & set(names)
        if Path(folder) == root / "reports":
            skip |= {n for n in names if n.endswith(".html")}
        return skip

    shutil.copytree(root, dest, ignore=ignore)
    (dest / "params.yaml").write_text(default_params_text(root))
    return dest


def project_env(**extra: str) -> dict:
    """Environment for commands run in a project copy: the venv's bin first, no analytics, a git identity."""
    import sys

    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"], "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           **extra}
    env.pop("HUESCALE_PARENT_RUN_ID", None)
    env.pop("MLFLOW_TRACKING_URI", None)  # the project's own tracking.uri (mlflow.set_tracking_uri exports this)
    return env


def tiny_project(dest: Path, shared_data: Path, edit=None) -> Path:
    """A git repository holding a project copy (:func:`copy_project`) with tiny params, committed.

    Data: 60 real photographs of ``coco128`` (folder source; 47 train images, 11 steps of 4 per epoch); U-Net,
    ESPCN and PatchGAN with 8 base channels; pre-training of 2 batches; 3 adversarial epochs with a
    resumable state every 3 steps; CPU, one thread; no FID; the Set5 benchmark only.
    ``edit(params)`` changes the params dict before it is written.
    """
    import yaml

    work = copy_project(dest)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["data"].update(source="folder", folders=[str(shared_data / "coco128" / "train2017")], n_images=60,
                          workers=1)
    params["model"].update(colorizer={"name": "unet", "kwargs": {"depth": 3, "base_channels": 8}},
                           upscaler={"name": "espcn", "kwargs": {"scale": 4, "features": 8}},
                           discriminator={"name": "patchgan", "kwargs": {"base_channels": 8, "n_layers": 3}})
    for role in ("colorizer", "upscaler"):
        params["pretrain"][role].update(epochs=1, batch_size=8, max_batches=2, lr_schedule="constant",
                                        losses={"l1": 1.0})
    params["train"].update(epochs=3, batch_size=4, max_batches=0, checkpoint_every=3, lr=2e-4,
                           losses={"l1": 100.0, "gan": 1.0})
    params["runtime"].update(device="cpu", threads=1)
    params["evaluate"].update(fid=False, grid_rows=4, batch_size=8)
    bench = shared_data / "benchmarks"
    params["benchmark"] = {"sets": {"Set5": str(bench / "Set5/GTmod12")},
                           "lr_check": {"Set5": str(bench / "Set5/LRbicx4")}, "samples": 1}
    if edit is not None:
        edit(params)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = project_env()
    run_checked(["git", "init", "-q"], work, env)
    run_checked(["git", "add", "-A"], work, env)
    run_checked(["git", "commit", "-qm", "copy"], work, env)
    return work


def pytest_collection_modifyitems(config, items):
    """The end-to-end modules (``pytest.mark.slow``: minutes each) first, the rest after in their usual order.

    ``--dist loadfile`` hands files to the xdist workers in collection order; with the longest last, one worker
    would still be running a whole pipeline when the other has finished everything else (longest-first
    scheduling: both workers end together). Without xdist the order only changes which failure shows first.
    """
    items.sort(key=lambda item: 0 if item.get_closest_marker("slow") else 1)  # stable: files stay in order
