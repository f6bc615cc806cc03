"""Nothing lost, nothing run blindly (issue 13): colorize never overwrites photographs, writes are atomic
and durable with stale temporaries cleaned, FID weights are never unpickled, secrets never printed.

Real photographs (../shared/data), the real ``huescale`` CLI in process, real MLflow (SQLite), real
torch files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from huescale import atomic, models
from huescale.cli import main
from huescale.training import checkpoint


@pytest.fixture(scope="module")
def colorizer(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "colorizer.pt"
    checkpoint.save_model(models.build("unet", depth=3, base_channels=8), "unet", {"depth": 3, "base_channels": 8},
                          path)
    return path


@pytest.fixture
def album(shared_data, tmp_path) -> Path:
    """A folder of real photographs with a sub-folder: d/a.png, d/b.jpg, d/sub/b.jpg, d/sub/c.png."""
    src = shared_data / "benchmarks" / "Set5" / "LRbicx4"
    d = tmp_path / "d"
    (d / "sub").mkdir(parents=True)
    shutil.copy(src / "baby.png", d / "a.png")
    Image.open(src / "bird.png").convert("RGB").save(d / "b.jpg", quality=92)
    Image.open(src / "head.png").convert("RGB").save(d / "sub" / "b.jpg", quality=92)
    shutil.copy(src / "woman.png", d / "sub" / "c.png")
    return d


def _cli(capsys, *argv) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    code, err = exc.value.code, capsys.readouterr().err
    return (1, err + code) if isinstance(code, str) else (int(code or 0), err)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_colorize_never_overwrites_or_loses_photographs(colorizer, album, tmp_path, capsys):
    before = _snapshot(album)
    ck = ("--checkpoint", colorizer, "--device", "cpu")
    code, err = _cli(capsys, "colorize", album / "a.png", "--out", album / "a.png", *ck)  # v1.png --out v1.png
    assert code == 1 and "a.png" in err and "replace the photograph" in err
    code, err = _cli(capsys, "colorize", album, "--out", album, *ck)  # d --out d
    assert code == 1 and "inside the input folder" in err
    code, err = _cli(capsys, "colorize", album, "--out", album / "colour", *ck)  # d --out d/colour
    assert code == 1 and "inside the input folder" in err
    code, err = _cli(capsys, "colorize", album / "b.jpg", album / "sub" / "b.jpg", "--out", tmp_path / "o", *ck)
    assert code == 1 and str(album / "b.jpg") in err and str(album / "sub" / "b.jpg") in err  # x/p y/p --out o
    code, err = _cli(capsys, "colorize", album / "sub" / "c.png", album / "sub" / "b.jpg", album / "b.jpg",
                     "--out", album / "sub", "--format", "png", *ck)  # would write sub/c.png over the input
    assert code == 1 and "replace the photograph" in err
    shutil.copy(album / "a.png", tmp_path / "z.png")
    Image.open(album / "a.png").save(tmp_path / "z.jpg")
    code, err = _cli(capsys, "colorize", tmp_path / "z.jpg", tmp_path / "z.png", "--out", tmp_path / "zz",
                     "--format", "png", *ck)  # z/a.jpg z/a.png --format png
    assert code == 1 and "z.jpg" in err and "z.png" in err and "both be written" in err
    assert _snapshot(album) == before and not (tmp_path / "o").exists() and not (tmp_path / "zz").exists()

    out = tmp_path / "colour"
    code, err = _cli(capsys, "colorize", album, "--out", out, *ck)
    assert code == 0, err
    assert sorted(_snapshot(out)) == ["a.png", "b.jpg", "sub/b.jpg", "sub/c.png"]  # relative paths kept
    first = _snapshot(out)
    (out / "b.jpg").write_bytes(b"an edited result the user wants to keep")
    code, err = _cli(capsys, "colorize", album, "--out", out, *ck)  # again, without --overwrite
    assert code == 1 and "skipped" in err and str(out / "b.jpg") in err and "--overwrite" in err
    assert (out / "b.jpg").read_bytes() == b"an edited result the user wants to keep"
    code, err = _cli(capsys, "colorize", album, "--out", out, "--overwrite", *ck)  # not an output any more: kept
    assert code == 1 and f"{out / 'b.jpg'} exists and is not an output of huescale colorize" in err
    assert (out / "b.jpg").read_bytes() == b"an edited result the user wants to keep"
    (out / "b.jpg").unlink()
    code, err = _cli(capsys, "colorize", album, "--out", out, "--overwrite", *ck)  # earlier outputs: replaced
    assert code == 0, err
    assert _snapshot(out) == first and _snapshot(album) == before
    assert not [p for p in tmp_path.rglob(".*.tmp*")]


def test_overwrite_replaces_only_earlier_outputs_never_a_photograph_beside_a_glob(colorizer, album, tmp_path,
                                                                                    capsys):
    """Issue 23 item 1: ``colorize 'd/*.jpg' --out d --format png --overwrite`` wrote d/b.jpg's colorization over
    the unrelated photograph d/b.png. --overwrite replaces a file only if colorize wrote it (its mark), in every
    format; never a photograph, an output another program re-saved, a link, or a .bmp (no mark possible)."""
    ck = ("--checkpoint", colorizer, "--device", "cpu")
    photo = album / "b.png"
    shutil.copy(album / "a.png", photo)  # a photograph beside b.jpg, not matched by the glob
    before = _snapshot(album)
    code, err = _cli(capsys, "colorize", str(album / "*.jpg"), "--out", album, "--format", "png", "--overwrite", *ck)
    assert code == 1 and f"{photo} exists and is not an output of huescale colorize" in err, err
    assert _snapshot(album) == before  # the photograph is untouched, nothing else written
    out = tmp_path / "o"
    for fmt in ("png", "jpg", "webp", "tif", "bmp"):
        code, err = _cli(capsys, "colorize", album / "b.jpg", "--out", out, "--format", fmt, *ck)
        assert code == 0, err
        dest = out / f"b.{fmt}"
        first, inode = dest.read_bytes(), dest.stat().st_ino
        code, err = _cli(capsys, "colorize", album / "b.jpg", "--out", out, "--format", fmt, "--overwrite", *ck)
        if fmt == "bmp":  # BMP holds no metadata: never replaced
            assert code == 1 and "a .bmp holds no mark" in err and dest.stat().st_ino == inode
            continue
        assert code == 0, err
        assert dest.stat().st_ino != inode and dest.read_bytes() == first  # replaced (a new file), same result
    resaved = out / "b.png"  # an output edited and saved by another program: no longer colorize's
    Image.open(resaved).convert("RGB").save(resaved)
    edited = resaved.read_bytes()
    link = out / "b.jpg"  # a link at the output path, to an earlier output
    link.unlink()
    link.symlink_to(out / "b.webp")
    for fmt, dest in (("png", resaved), ("jpg", link)):
        code, err = _cli(capsys, "colorize", album / "b.jpg", "--out", out, "--format", fmt, "--overwrite", *ck)
        assert code == 1 and f"{dest} exists and is not an output of huescale colorize" in err, err
    assert resaved.read_bytes() == edited and link.is_symlink() and _snapshot(album) == before
    code, err = _cli(capsys, "colorize", album / "b.jpg", "--out", photo, "--overwrite", *ck)  # one file, --out FILE
    assert code == 1 and "not an output of huescale colorize" in err and _snapshot(album) == before
    assert not [p for p in tmp_path.rglob(".*.tmp*")]


def test_overwrite_never_replaces_a_file_that_appears_during_the_run(colorizer, album, tmp_path):
    """The mark is checked again at the final rename: a photograph created meanwhile at the output path stays."""
    from huescale.inference.tiling import Colorizer
    from huescale.inference.writer import colorize_to_file, is_colorize_output
    from huescale.training import checkpoint as ckpt

    run = Colorizer(ckpt.load_model(colorizer, "cpu")[0], None)
    rgb = np.asarray(Image.open(album / "b.jpg").convert("RGB"))
    dest = tmp_path / "b.png"

    def meanwhile(_n: int) -> None:  # called after each tile, before the file is moved into place
        if not dest.exists():
            shutil.copy(album / "a.png", dest)

    with pytest.raises(FileExistsError, match="not replaced"):
        colorize_to_file(run, rgb, dest, meanwhile, overwrite=True)
    assert dest.read_bytes() == (album / "a.png").read_bytes() and not is_colorize_output(dest)
    dest.unlink()
    colorize_to_file(run, rgb, dest, overwrite=True)
    assert is_colorize_output(dest)
    colorize_to_file(run, rgb, dest, meanwhile, overwrite=True)  # an earlier output: replaced
    assert is_colorize_output(dest) and not [p for p in tmp_path.rglob(".*.tmp*")]


def test_out_naming_an_existing_file_or_an_empty_input_folder_fails_clearly(colorizer, album, tmp_path, capsys):
    """Issue 23 item 2: ``--out`` naming an existing file said "... appeared meanwhile"; an empty input folder
    exited 0 without a word."""
    ck = ("--checkpoint", colorizer, "--device", "cpu")
    notes = tmp_path / "notes"
    notes.write_text("my notes")
    code, err = _cli(capsys, "colorize", album / "a.png", "--out", notes, *ck)
    assert code == 1 and f"--out {notes} is an existing file, not a folder" in err and "meanwhile" not in err
    code, err = _cli(capsys, "colorize", album / "a.png", album / "b.jpg", "--out", album / "sub" / "c.png", *ck)
    assert code == 1 and "names an existing file but 2 images were given" in err
    code, err = _cli(capsys, "colorize", album / "b.jpg", "--out", album / "sub" / "c.png", *ck)  # a photograph
    assert code == 1 and f"{album / 'sub' / 'c.png'} exists and is not an output of huescale colorize" in err
    assert "pass --overwrite to replace it" not in err  # --overwrite would not replace it either
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "sub").write_text("a file where a folder of outputs would go")
    code, err = _cli(capsys, "colorize", album, "--out", tmp_path / "o", *ck)
    assert code == 1 and f"{tmp_path / 'o' / 'sub'} is a file, not a folder" in err
    assert notes.read_text() == "my notes" and sorted(p.name for p in (tmp_path / "o").iterdir()) == ["sub"]
    empty, only_text = tmp_path / "empty", tmp_path / "text"
    (empty / "deeper").mkdir(parents=True)
    only_text.mkdir()
    (only_text / "readme.txt").write_text("no photographs here")
    for folder in (empty, only_text):
        code, err = _cli(capsys, "colorize", folder, "--out", tmp_path / "out", *ck)
        assert code == 1 and f"{folder}: the folder holds no image file" in err and "nothing to colorize" in err
    code, err = _cli(capsys, "colorize", empty, album / "a.png", "--out", tmp_path / "out", *ck)  # the others go on
    assert code == 1 and "holds no image file" in err and (tmp_path / "out" / "a.png").is_file()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _age(p: Path, seconds: float = 3600) -> Path:
    t = time.time() - seconds
    os.utime(p, (t, t))
    return p


def test_stale_temporaries_of_dead_processes_are_removed_live_ones_kept(tmp_path, shared_data):
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        target = tmp_path / "metrics.json"

        def tmp_file(name: str, text: str = "x", age: float = 3600) -> Path:
            p = tmp_path / name
            p.write_text(text)
            return _age(p, age)

        stale = tmp_file(f".metrics.json.{dead}.tmp", "half")  # a killed writer's
        alive = tmp_file(f".metrics.json.{live.pid}.tmp", "being written")  # a running writer's
        young = tmp_file(f".metrics.json.{dead + 100000}.tmp", age=0)  # fresh: maybe another machine's
        other = tmp_file(f".other.json.{dead}.tmp")  # another target's
        atomic.write_json({"ok": 1}, target)
        assert target.read_text() == '{\n  "ok": 1\n}'
        assert not stale.exists() and alive.exists() and young.exists() and other.exists()
        ck = tmp_path / "model.pt"  # the checkpoint writer cleans its own
        ck_stale = tmp_path / f".model.pt.{dead}.tmp"
        ck_stale.write_bytes(b"\x80half a pickle")
        _age(ck_stale)
        checkpoint.save_atomic({"w": torch.zeros(2)}, ck)
        assert not ck_stale.exists() and torch.load(ck, weights_only=True)["w"].shape == (2,)
        assert atomic.clean_stale_in(tmp_path) == [other] and alive.exists() and young.exists()  # stage-start sweep
        store = tmp_path / "data" / "pairs"  # a killed prepare's temporary store folder
        (tmp_path / "data" / f".pairs.{dead}.tmp" / "train").mkdir(parents=True)
        _age(tmp_path / "data" / f".pairs.{dead}.tmp")
        from huescale.config import DataConfig
        from huescale.data.source_base import FolderSource
        from huescale.data.sources import list_images
        from huescale.data.store_build import build_pair_store

        folder = shared_data / "benchmarks" / "Set5" / "GTmod12"
        build_pair_store(list_images(FolderSource([folder])), DataConfig(source="folder", folders=[str(folder)],
                         min_images=1, workers=1), store, progress=False)
        assert sorted(p.name for p in store.parent.iterdir()) == [".pairs.lock", "pairs"]
    finally:
        live.kill()
        live.wait()


def test_every_writer_uses_the_durable_atomic_write(tmp_path):
    """The history CSV, report, FID cache and image writers leave no fixed-name temporary and no partial file."""
    from huescale.evaluation.report import render
    from huescale.inference.writer import PNGBandWriter, save_image_atomic
    from huescale.training.history import EpochRecord, write_history_csv

    write_history_csv([EpochRecord(epoch=1, step=10, values={"l1": 0.5})], tmp_path / "h.csv")
    assert (tmp_path / "h.csv").read_text().splitlines() == ["epoch,step,l1", "1,10,0.5"]
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "p.html.j2").write_text("<p>{{ x }}</p>")
    render(tmp_path / "t", "p.html.j2", tmp_path / "p.html", x="ok")
    assert (tmp_path / "p.html").read_text() == "<p>ok</p>"
    save_image_atomic(Image.new("RGB", (8, 8), (1, 2, 3)), tmp_path / "a.jpg")
    with pytest.raises(FileExistsError):
        save_image_atomic(Image.new("RGB", (8, 8)), tmp_path / "a.jpg", overwrite=False)
    with PNGBandWriter(tmp_path / "b.png", 4, 2) as png:
        png.write(np.zeros((2, 4, 3), np.uint8))
    assert Image.open(tmp_path / "b.png").size == (4, 2)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["a.jpg", "b.png", "h.csv", "p.html", "t"]


def test_crafted_fid_weights_are_never_unpickled(tmp_path):
    """A .pth whose unpickling would create a file: FID refuses it, naming it, and the file never appears."""
    from huescale.evaluation import fid as fidmod

    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(1), "payload": Evil()}, bad)
    assert not marker.exists()
    try:
        fidmod.FID("cpu", weights=bad)
        error = None
    except Exception as exc:  # noqa: BLE001 - checked below
        error = exc
    assert not marker.exists(), "unpickling the weights file ran its code"
    assert type(error).__name__ == "FIDWeightsError" and isinstance(error, RuntimeError)
    assert str(bad) in str(error) and "evaluate.fid_weights" in str(error)
    torch.save([torch.zeros(1)], tmp_path / "list.pth")  # loads safely, but is no state dict
    with pytest.raises(fidmod.FIDWeightsError, match="dict of tensors"):
        fidmod.FID("cpu", weights=tmp_path / "list.pth")
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other.pth")  # a state dict of another network
    with pytest.raises(fidmod.FIDWeightsError, match="not the FID Inception"):
        fidmod.FID("cpu", weights=tmp_path / "other.pth")


def test_fid_inception_loaded_safely_equals_pytorch_fids(tmp_path, real_batch):
    """The random-weights fixture still works, and our safely loaded network gives pytorch-fid's own
    InceptionV3 features exactly."""
    from pytorch_fid.inception import InceptionV3

    from conftest import save_random_fid_weights
    from huescale.evaluation import fid as fidmod

    weights = save_random_fid_weights(tmp_path / "th")
    ours = fidmod.FID("cpu", batch_size=8, weights=weights)
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "th" / "hub"))  # pytorch-fid's loader, on our own trusted file
    try:
        theirs = InceptionV3([3]).eval()
    finally:
        torch.hub.set_dir(previous)
    x = torch.from_numpy(real_batch[:2]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        assert torch.equal(ours.model(x)[0], theirs(x)[0])  # (the FID value itself: tests/test_metrics.py)


def test_redact_masks_credentials_and_signatures():
    from huescale.redact import redact, url_identity

    cases = {
        "http://user:secret@127.0.0.1:1/x.tgz?X-Amz-Signature=abc&v=1": "http://user:***@127.0.0.1:1/x.tgz?X-Amz-Signature=***&v=1",
        "postgresql://mlflow:pw@db:5432/mlflow": "postgresql://mlflow:***@db:5432/mlflow",
        "https://ghp_TOKEN@github.com/o/r.git": "https://***@github.com/o/r.git",
        "https://s.blob.core.windows.net/c/a.zip?sv=2020&sig=SIG%3D&se=2030": "https://s.blob.core.windows.net/c/a.zip?sv=2020&sig=***&se=2030",
        "see <a href='https://h/a?token=T&amp;key=K'>x</a>": "see <a href='https://h/a?token=***&amp;key=***'>x</a>",
        "sqlite:///mlflow.db": "sqlite:///mlflow.db",
        "no url, a=b and x@y.z": "no url, a=b and x@y.z",
    }
    for text, want in cases.items():
        assert redact(text) == want
    assert url_identity("https://u:p@H/a.tgz?X-Amz-Signature=1&X-Amz-Date=2&v=3") == "https://h/a.tgz?v=3"


def test_redact_and_url_identity_on_the_edge_cases_mutation_testing_found():
    """Cases the mutation run of redact.py left uncovered (docs/reliability.md): a password with ':' or '@' in it,
    a URL without credentials, blank query values, and every expiry parameter of a re-signed URL."""
    from huescale.redact import redact, url_identity

    assert redact("https://u:pa:ss@h/x") == "https://u:***@h/x"  # all of the password, not its last part
    assert redact("https://u:p@ss@h/x") == "https://u:***@h/x"
    base = "https://h/a.tgz"
    assert url_identity(base) == base  # no credentials, no query
    assert url_identity("https://u:p@ss@H/a.tgz") == base  # the host is after the last '@'
    assert url_identity(base + "?a=&v=1") == base + "?a=&v=1" != url_identity(base + "?v=1")  # blank values kept
    for expiry in ("Expires", "X-Amz-Expires", "X-Amz-Date", "se"):  # re-signing changes them: not the object
        assert url_identity(f"{base}?v=1&{expiry}=1") == url_identity(f"{base}?v=1&{expiry}=2") == base + "?v=1"


def test_secrets_stay_out_of_mlflow_params_run_info_and_reports(tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    from huescale import tracking
    from huescale.config import Config
    from huescale.evaluation.report import render

    cfg = Config()
    cfg.tracking.uri = "postgresql://mlflow:dbpass@db.internal:5432/mlflow"
    cfg.data.imagenette.url = "https://bucket.s3.amazonaws.com/imagenette2-320.tgz?X-Amz-Signature=deadbeef"
    params = tracking._params_for_mlflow(cfg)
    assert params["tracking.uri"] == "postgresql://mlflow:***@db.internal:5432/mlflow"
    assert not any("dbpass" in v or "deadbeef" in v for v in params.values())
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("redact", artifact_location=(tmp_path / "art").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_params(params)
        mlflow.set_tracking_uri("postgresql://u:dbpass@db/m")  # what a database-backed server's URI looks like
        try:
            info = tracking.active_run_info()
        finally:
            mlflow.set_tracking_uri(uri)
    assert info["tracking_uri"] == "postgresql://u:***@db/m"
    logged = MlflowClient(uri).get_run(run.info.run_id).data.params
    assert logged["tracking.uri"].endswith("***@db.internal:5432/mlflow") and "deadbeef" not in str(logged)
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "r.html.j2").write_text("{% for k, v in params %}<td>{{ k }}</td><td>{{ v }}</td>{% endfor %}")
    raw = sorted(tracking.to_flat_dict(cfg).items())  # the report gets the raw params
    html = render(tmp_path / "t", "r.html.j2", tmp_path / "r.html", params=raw).read_text()
    assert "dbpass" not in html and "deadbeef" not in html and "mlflow:***@db.internal" in html
