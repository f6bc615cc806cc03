"""Ablation grids: seed 004's Table 7 rows, the SR rows and two-step vs joint, one command.

``huescale ablate GRID.yaml`` reads a grid file, and for each row: applies the
row's dotted-key overrides (the ``dvc exp run -S`` syntax, e.g.
``train.content_loss.name: vgg16_conv7``) to the base ``params.yaml``,
trains the row's models on the prepared pair store (``data/pairs``, made by
``dvc repro prepare``), scores them on its test split, and records it as a
nested MLflow run under one parent run of the grid: the row's parameters,
per-epoch losses and validation L1, its test metrics, a sample image (the same
test image for every row) and its checkpoint. The colorizer row with the best
validation L1 is registered as ``huescale-colorizer`` with alias
``champion``. Results go to ``metrics/ablations.json`` and
``reports/ablations.html`` (template ``reports/templates/ablations.html.j2``).

Grid file (YAML)::

    base: params.yaml            # the base parameters (relative to the working directory)
    pairs: data/pairs            # the prepared pair store
    out: ablations               # folder for the rows' params, checkpoints and samples
    metrics: metrics/ablations.json
    report: reports/ablations.html
    templates: reports/templates
    register_champion: true
    benchmark: true              # score upscaler rows on benchmark.sets (Set5/Set14/BSD100 protocol)
    set: {pretrain.colorizer.epochs: 2}     # overrides for every row (the budget)
    rows:
      - name: U-Net + L1                    # seed 004 Table 7 row name (compared in the report)
        kind: colorizer                     # colorizer | upscaler | joint | two_step
        adversarial: true                   # run the adversarial phase (default: true, except upscalers)
        pairs: data/pairs_imagenette        # optional: this row's pair store (default: the grid's)
        set: {train.init: scratch}

Row kinds (seed files in /work/shared/seeds):
- ``colorizer``: ``model.colorizer``, L1 pre-training (``pretrain.colorizer``,
  only with ``train.init: pretrained``) then adversarial training (``train``),
  scored at 64 px (seed 004's metrics: MAE, epsilon-accuracy, PSNR; and SSIM).
- ``upscaler``: ``model.upscaler`` (``bicubic`` = no model), L1 training
  (``pretrain.upscaler``), optionally adversarial (SRGAN, seed 002: set
  ``train.content_loss.name: vgg19``, ``train.lambda_gan: 0.001``), scored as x4 SR
  on Y (PSNR/SSIM, border 4) at 256 px.
- ``joint``: ``model.joint`` (64 L -> 256 Lab, seeds 000/004) trained with the
  ``pretrain.colorizer`` and ``train`` settings on the 256 tier, losses in Lab
  (L1) and RGB (``train.lambda_rgb``); scored at 256 px.
- ``two_step``: a colorizer and an upscaler trained as above, chained by
  :class:`huescale.models.pipelines.TwoStepPipeline` (seed 000); scored at 256 px.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import yaml

from huescale.atomic import write_json, write_png
from huescale.config import ConfigError, load_config, read_yaml, to_flat_dict

log = logging.getLogger(__name__)

KINDS = ("colorizer", "upscaler", "joint", "two_step")
GRID_KEYS = {"base", "pairs", "out", "metrics", "report", "templates", "register_champion", "benchmark", "set", "rows",
             "name"}
ROW_KEYS = {"name", "kind", "adversarial", "set", "pairs"}


def set_dotted(d: dict, key: str, value: Any, src: str) -> None:
    """Set ``a.b.c`` in a nested dict (the ``dvc exp run -S`` form); raises ConfigError on a non-mapping parent."""
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"{src}: cannot set {key}: {p} is not a mapping")
    d[parts[-1]] = value


def load_grid(path: str | Path) -> dict:
    """Read and check a grid file.

    Raises:
        ConfigError: missing file, bad YAML, unknown keys, a row without name or with an unknown kind.
    """
    p = Path(path)
    grid = read_yaml(p, "grid file not found")
    unknown = set(grid) - GRID_KEYS
    if unknown:
        raise ConfigError(f"{p}: unknown grid key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(GRID_KEYS))}")
    rows = grid.get("rows") or []
    if not rows:
        raise ConfigError(f"{p}: rows: the grid has no rows")
    names = set()
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or "name" not in r:
            raise ConfigError(f"{p}: rows[{i}] needs a name")
        bad = set(r) - ROW_KEYS
        if bad:
            raise ConfigError(f"{p}: rows[{i}] ({r['name']}): unknown key(s) {', '.join(sorted(bad))}")
        if r.get("kind", "colorizer") not in KINDS:
            raise ConfigError(f"{p}: rows[{i}] ({r['name']}): kind must be one of {', '.join(KINDS)}")
        if r["name"] in names:
            raise ConfigError(f"{p}: rows[{i}]: duplicate row name {r['name']!r}")
        names.add(r["name"])
    grid.setdefault("name", p.stem)
    return grid


def slug(name: str) -> str:
    """A file-name-safe form of a row name."""
    out = "".join(c.lower() if c.isalnum() else "-" for c in name)
    return "-".join(filter(None, out.split("-")))


def row_config(grid: dict, row: dict, row_dir: Path):
    """The row's Config: base params + grid ``set`` + row ``set``, written to ``row_dir/params.yaml`` and loaded
    (so every override is type-checked with its dotted name)."""
    raw = read_yaml(Path(grid.get("base", "params.yaml")), "base parameter file of the grid not found")
    for key, value in {**(grid.get("set") or {}), **(row.get("set") or {})}.items():
        set_dotted(raw, key, copy.deepcopy(value), f"row {row['name']!r}")
    row_dir.mkdir(parents=True, exist_ok=True)
    out = row_dir / "params.yaml"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(yaml.safe_dump(raw, sort_keys=False))
    os.replace(tmp, out)
    return load_config(out)


def _disc(cfg, in_channels: int):
    from huescale import models

    d = cfg.model.discriminator
    kwargs = {**d.kwargs, "in_channels": in_channels}
    return models.build(d.name, **kwargs), (d.name, kwargs)


class _Row:
    """Trains one row's models and logs their epochs to the active MLflow run."""

    def __init__(self, cfg, store, row_dir: Path, device, progress: bool = False):
        self.cfg, self.store, self.dir, self.device, self.progress = cfg, store, row_dir, device, progress
        self.out: dict[str, float] = {}

    def phase(self, name: str, netG, spec: tuple[str, dict], task, tier: str, opt, adversarial: bool,
              netD=None):
        """One Trainer phase; returns the generator with its best-validation weights."""
        from huescale import checkpoint, tracking
        from huescale.data.dataset import PairDataset
        from huescale.stages import loss_terms
        from huescale.train import PhaseConfig, Trainer, write_history_csv

        cfg, t = self.cfg, self.cfg.train
        kw = dict(epochs=opt.epochs, batch_size=opt.batch_size, lr=opt.lr, betas=tuple(opt.betas), seed=cfg.seed,
                  max_batches=opt.max_batches, num_workers=cfg.runtime.num_workers)
        if adversarial:
            kw.update(gan_loss=t.gan_loss, lambda_l1=t.lambda_l1, collapse_steps=t.collapse_steps,
                      collapse_threshold=t.collapse_threshold, **loss_terms(t))
        best = self.dir / f"{name}.pt"

        def on_epoch(rec) -> None:
            tracking.log_metrics(rec.values, step=rec.epoch, prefix=f"{name}/")

        trainer = Trainer(netG, task, PhaseConfig(**kw), self.dir / f".{name}_state.pt", best, spec,
                          netD=netD if adversarial else None, device=self.device, on_epoch=on_epoch,
                          resume=False, progress=self.progress)
        hist = trainer.fit(PairDataset(self.store, "train", tier), PairDataset(self.store, "val", tier))
        write_history_csv(hist, self.dir / f"{name}.csv")
        trainer.state_path.unlink(missing_ok=True)
        checkpoint.previous(trainer.state_path).unlink(missing_ok=True)
        last = hist[-1].values if hist else {}
        self.out[f"{name}_best_val_l1"] = trainer.best_val
        if adversarial:
            self.out[f"{name}_final_loss_D"] = last.get("loss_D", float("nan"))
            self.out[f"{name}_d_collapse"] = last.get("d_collapse", 0.0)
        self.out["best_val_l1"] = trainer.best_val
        self.out["checkpoint"] = str(best)
        model, _ = checkpoint.load_model(best, self.device)
        return model

    def _generator(self, name: str, spec, task, tier: str, d_channels: int, adversarial: bool):
        """A generator trained as the row asks: L1 pre-training (``train.init: pretrained``, or a row without
        the adversarial phase), then the adversarial phase with a discriminator of ``d_channels`` inputs."""
        from huescale import models

        net = models.build(spec.name, **spec.kwargs)
        if self.cfg.train.init == "pretrained" or not adversarial:
            net = self.phase(f"pretrain_{name}", net, (spec.name, spec.kwargs), task, tier,
                             self.cfg.pretrain.colorizer, False)
        if adversarial:
            netD, _ = _disc(self.cfg, d_channels)
            net = self.phase(f"train_{name}", net, (spec.name, spec.kwargs), task, tier, self.cfg.train, True, netD)
        return net

    def colorizer(self, adversarial: bool):
        from huescale.train import colorization_task

        return self._generator("colorizer", self.cfg.model.colorizer, colorization_task, "64", 3, adversarial)

    def upscaler(self, adversarial: bool):
        from huescale import models
        from huescale.train import upscaling_task

        spec = self.cfg.model.upscaler
        if spec.name == "bicubic":
            return None
        net = self.phase("pretrain_upscaler", models.build(spec.name, **spec.kwargs), (spec.name, spec.kwargs),
                         upscaling_task, "256", self.cfg.pretrain.upscaler, False)
        if adversarial:
            netD, _ = _disc(self.cfg, 2 if self.cfg.train.d_conditional else 1)
            net = self.phase("train_upscaler", net, (spec.name, spec.kwargs), upscaling_task, "256",
                             self.cfg.train, True, netD)
        return net

    def joint(self, adversarial: bool):
        from huescale.train import joint_task

        d = 4 if self.cfg.train.d_conditional else 3
        return self._generator("joint", self.cfg.model.joint, joint_task, "256", d, adversarial)


def _images(store, split: str, name: str):
    import numpy as np

    arrays = store.arrays(split, name)
    return np.concatenate([np.asarray(a) for a in arrays]) if arrays else np.zeros((0, 1, 1, 3), np.uint8)


def score_row(kind: str, nets: dict, store, device, epsilon: float, batch_size: int = 32,
              sample_lr=None) -> tuple[dict, Any]:
    """Test-split metrics of a row and its output for ``sample_lr`` (``1 x 64 x 64 x 3`` uint8, the same
    image for every row; default: this store's first 256-tier test image), ``H x W x 3`` uint8.

    colorizer: 64 px colour metrics; upscaler: x4 Y PSNR/SSIM (border 4) and colour metrics at 256 px;
    joint / two_step: 256 px colour metrics and Y PSNR/SSIM. FPS: batch 1 on ``device`` (seed 004 Table 6).
    """
    import numpy as np
    import torch

    from huescale import metrics
    from huescale.color import lab_normalized_to_rgb, rgb_to_uint8, uint8_to_lab_normalized
    from huescale.evaluate import measure_fps
    from huescale.models.pipelines import JointPipeline, TwoStepPipeline
    from huescale.resize import imresize

    def np_rgb(L, ab):
        return rgb_to_uint8(lab_normalized_to_rgb(L, ab)).permute(0, 2, 3, 1).cpu().numpy()

    if kind == "colorizer":
        model = nets["colorizer"]
    elif kind == "upscaler":
        model = nets.get("upscaler")  # None: bicubic
    elif kind == "joint":
        model = JointPipeline(nets["joint"])
    else:
        model = TwoStepPipeline(nets["colorizer"], nets["upscaler"], 4)

    @torch.no_grad()
    def predict(x_uint8):
        L, ab = uint8_to_lab_normalized(x_uint8)
        if kind == "colorizer":
            return np_rgb(L, nets["colorizer"](L))
        size = (L.shape[-2] * 4, L.shape[-1] * 4)
        if kind == "upscaler":
            L_hr = nets["upscaler"](L).clamp(-1, 1) if nets.get("upscaler") is not None else imresize(L, size)
            return np_rgb(L_hr.clamp(-1, 1), imresize(ab, size).clamp(-1, 1))
        return np_rgb(*model(L))

    for m in nets.values():
        if m is not None:
            m.to(device).eval()
    if kind == "colorizer":
        lr = gt = _images(store, "test", "lr64")
    else:
        lr, gt = _images(store, "test", "lr256"), _images(store, "test", "hr256")
    preds = []
    for i in range(0, len(lr), batch_size):
        preds.append(predict(torch.from_numpy(lr[i:i + batch_size]).permute(0, 3, 1, 2).to(device)))
    pred = np.concatenate(preds) if preds else gt[:0]
    out = {k: float(v) for k, v in metrics.image_metrics(pred, gt, epsilon).items()} if len(pred) else {}
    if kind != "colorizer" and len(pred):
        out["psnr_y"], out["ssim_y"] = metrics.sr_psnr_ssim(pred, gt, border=4)
    out["n_test"] = int(len(pred))
    if sample_lr is None:
        sample_lr = _images(store, "test", "lr256")[:1]
    sample = predict(torch.from_numpy(sample_lr).permute(0, 3, 1, 2).to(device))[0] if len(sample_lr) else None
    bicubic = _Wrap(lambda x: imresize(x, (x.shape[-2] * 4, x.shape[-1] * 4)))
    out["fps"] = measure_fps(model if model is not None else bicubic, (1, 64, 64), device, 1, 1, 3)
    return out, sample


def benchmark_row(kind: str, nets: dict, cfg, device) -> dict[str, dict[str, float]]:
    """x4 SR benchmark scores of an upscaler row (``benchmark.sets`` of the row's params: Set5,
    Set14, BSD100 protocol, see :mod:`huescale.benchmark`), with the bicubic figures beside them.

    Returns ``{set: {"psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y", "images"}}``; empty for
    colorizer, two-step and joint rows (their input is gray, not an LR colour image) and for sets whose
    folder is missing.
    """
    from huescale import benchmark as bm

    if kind != "upscaler":
        return {}
    net = nets.get("upscaler")
    result, _ = bm.run(cfg.benchmark.sets, {"model": net} if net is not None else {}, 4, device=device,
                       progress=False)
    out = {}
    for name, methods in result["sets"].items():
        mine = methods.get("model", methods["bicubic"])
        out[name] = {"psnr_y": mine["psnr_y"], "ssim_y": mine["ssim_y"], "images": mine["images"],
                     "bicubic_psnr_y": methods["bicubic"]["psnr_y"], "bicubic_ssim_y": methods["bicubic"]["ssim_y"]}
    return out


class _Wrap:
    """A callable as a module-like object for :func:`huescale.evaluate.measure_fps` (bicubic has no weights)."""

    def __init__(self, fn):
        self.fn = fn

    def to(self, device):
        return self

    def eval(self):
        return self

    def __call__(self, x):
        return self.fn(x)


def _check_rows(grid: dict) -> list[tuple[dict, Any, Any]]:
    """Every row's Config and pair store, checked before any training: params, pair store, VGG weights.

    Raises:
        ConfigError: a bad override (names the key); FileNotFoundError: no pair store, no VGG weights.
    """
    from huescale.data.store import PairStore
    from huescale.losses import vgg_weights_path

    stores: dict[str, PairStore] = {}
    out_dir = Path(grid.get("out", "ablations"))
    rows_cfg = []
    for row in grid["rows"]:
        cfg = row_config(grid, row, out_dir / slug(row["name"]))
        pairs = Path(row.get("pairs", grid.get("pairs", "data/pairs")))
        if not (pairs / "manifest.json").is_file():
            raise FileNotFoundError(f"row {row['name']!r}: {pairs}: no prepared pair store; run `dvc repro prepare` "
                                    "(or build_pair_store) first")
        stores.setdefault(str(pairs), PairStore(pairs))
        c = cfg.train.content_loss
        if c.name != "none" and row.get("adversarial", row.get("kind", "colorizer") != "upscaler"):
            vgg_weights_path(c.name, c.weights or None)
        rows_cfg.append((row, cfg, stores[str(pairs)]))
    return rows_cfg


def _sample_lr(rows_cfg: list) -> Any:
    """The sample shown for every row: the first 256-tier test image of the grid's stores (64 px version)."""
    stores = {id(s): s for _, _, s in rows_cfg}.values()
    return next((a for a in (_images(s, "test", "lr256")[:1] for s in stores) if len(a)), None)


def _run_row(grid: dict, row: dict, cfg, store, sample_lr, progress: bool = False) -> dict:
    """Train and score one row as a nested MLflow run of the active run (the grid's parent); its result dict.

    The result is also written to ``<out>/<row slug>/result.json``.
    """
    import mlflow
    import torch

    from huescale import tracking
    from huescale.train import resolve_device, seed_everything

    out_dir = Path(grid.get("out", "ablations"))
    kind = row.get("kind", "colorizer")
    adversarial = bool(row.get("adversarial", kind != "upscaler"))
    row_dir = out_dir / slug(row["name"])
    device = resolve_device(cfg.runtime.device)
    if cfg.runtime.threads > 0:
        torch.set_num_threads(cfg.runtime.threads)
    log.info("ablation row %s (%s)", row["name"], kind)
    t0 = time.perf_counter()
    with mlflow.start_run(run_name=row["name"], nested=True,
                          tags={tracking.KIND_TAG: "ablation_row", "row": row["name"], "row_kind": kind}) as run:
        mlflow.log_params({k: str(v)[:6000] for k, v in to_flat_dict(cfg).items()})
        mlflow.log_params({"row.kind": kind, "row.adversarial": adversarial})
        seed_everything(cfg.seed)
        r = _Row(cfg, store, row_dir, device, progress)
        nets: dict[str, Any] = {}
        colorizer_ckpt = None
        if kind in ("colorizer", "two_step"):
            nets["colorizer"] = r.colorizer(adversarial)
            colorizer_ckpt = r.out.get("checkpoint")
        if kind in ("upscaler", "two_step"):
            nets["upscaler"] = r.upscaler(adversarial and kind == "upscaler")
        if kind == "joint":
            nets["joint"] = r.joint(adversarial)
        train_s = time.perf_counter() - t0
        test, sample = score_row(kind, nets, store, device, cfg.evaluate.epsilon, cfg.evaluate.batch_size, sample_lr)
        bench = benchmark_row(kind, nets, cfg, device) if grid.get("benchmark", True) else {}
        res = {"name": row["name"], "kind": kind, "adversarial": adversarial, "run_id": run.info.run_id,
               **{k: v for k, v in r.out.items()}, "test": test, "benchmark": bench,
               "train_s": round(train_s, 2), "wall_s": round(time.perf_counter() - t0, 2), "device": str(device)}
        if kind == "two_step":
            res["checkpoint"] = colorizer_ckpt
        if sample is not None:
            write_png(sample, row_dir / "sample.png")
            res["sample"] = str(row_dir / "sample.png")
            mlflow.log_artifact(res["sample"], "samples")
        if res.get("checkpoint"):
            mlflow.log_artifact(res["checkpoint"], "checkpoints")
        mlflow.log_artifact(str(row_dir / "params.yaml"))
        tracking.log_metrics({f"benchmark/{st}/{k}": v[k] for st, v in bench.items() for k in ("psnr_y", "ssim_y")})
        tracking.log_metrics({**{f"test/{k}": v for k, v in test.items()},
                              **{k: v for k, v in r.out.items() if isinstance(v, float)},
                              "wall_s": res["wall_s"]})
        if r.out.get("train_colorizer_d_collapse") or r.out.get("train_joint_d_collapse") \
                or r.out.get("train_upscaler_d_collapse"):
            mlflow.set_tag("warning", "discriminator collapse (loss_D ~ 0)")
    _write_json(res, row_dir / "result.json")
    return res


ROW_METRICS = Path("metrics/ablation_row.json")
PARENT_ENV = "HUESCALE_ABLATION_PARENT"


def _rows_as_dvc_experiments(grid_path: Path, grid: dict, progress: bool) -> list[dict]:
    """Run each row as a DVC experiment of the ``ablate_row`` stage: ``dvc exp run -n <grid>-<row>
    -S ablation.grid=... -S ablation.row=<i> -s ablate_row`` (the ``dvc exp run -S`` machinery: the row's
    params and metrics are in ``dvc exp show``). The rows nest under the active MLflow run (passed to the
    stage as ``HUESCALE_ABLATION_PARENT``). ``params.yaml`` is restored afterwards (``-S`` edits it).

    Raises:
        RuntimeError: ``dvc exp run`` failed (its output's tail in the message).
    """
    import mlflow
    import shutil
    import subprocess
    import sys

    dvc = shutil.which("dvc") or str(Path(sys.executable).parent / "dvc")
    params = Path("params.yaml")
    original = params.read_text() if params.is_file() else None
    env = {**os.environ, PARENT_ENV: mlflow.active_run().info.run_id}
    results = []
    try:
        for i, row in enumerate(grid["rows"]):
            name = f"{slug(grid['name'])}-{slug(row['name'])}"
            cmd = [dvc, "exp", "run", "-n", name, "-S", f"ablation.grid={grid_path}", "-S", f"ablation.row={i}",
                   "-s", "ablate_row"]
            log.info("row %d/%d as DVC experiment %s: %s", i + 1, len(grid["rows"]), name, " ".join(cmd))
            res = subprocess.run(cmd, env=env, capture_output=not progress, text=True)
            if res.returncode != 0:
                tail = ((res.stdout or "") + (res.stderr or ""))[-3000:]
                raise RuntimeError(f"row {row['name']!r}: `{' '.join(cmd)}` failed:\n{tail}")
            out = Path(grid.get("out", "ablations")) / slug(row["name"]) / "result.json"
            results.append(json.loads(out.read_text()))
    finally:
        if original is not None:
            params.write_text(original)
    return results


def run_row_stage(cfg) -> dict:
    """The ``ablate_row`` DVC stage: row ``ablation.row`` of grid ``ablation.grid`` (no-op when row < 0).

    Nests the row's MLflow run under ``$HUESCALE_ABLATION_PARENT`` when set (the grid's parent run),
    writes ``metrics/ablation_row.json`` (flat test metrics, for ``dvc exp show``) and returns it.

    Raises:
        ConfigError: a row index outside the grid, or what :func:`load_grid` raises.
    """
    import mlflow

    from huescale import tracking

    a = cfg.ablation
    if a.row < 0 or not a.grid:
        out = {"row": None}
        _write_json(out, ROW_METRICS)
        return out
    grid = load_grid(a.grid)
    if a.row >= len(grid["rows"]):
        raise ConfigError(f"ablation.row={a.row}: the grid {a.grid} has {len(grid['rows'])} rows")
    rows_cfg = _check_rows(grid)
    row, row_cfg, store = rows_cfg[a.row]
    tracking.setup(row_cfg)
    parent = os.environ.get(PARENT_ENV)
    with mlflow.start_run(run_id=parent) if parent else mlflow.start_run(run_name=f"ablation-{grid['name']}"):
        res = _run_row(grid, row, row_cfg, store, _sample_lr(rows_cfg))
    flat = {"row": row["name"], "kind": res["kind"], **{f"test_{k}": v for k, v in res["test"].items()},
            "best_val_l1": res.get("best_val_l1"), "wall_s": res["wall_s"]}
    flat.update({f"{st}_psnr_y": b["psnr_y"] for st, b in res.get("benchmark", {}).items()})
    _write_json(flat, ROW_METRICS)
    return flat


def run_grid(grid_path: str | Path, progress: bool = False, dvc: bool = False) -> dict:
    """Run every row of a grid file (see the module docstring); returns the results written to its metrics file.

    Args:
        grid_path: the grid YAML.
        progress: tqdm bars (and DVC's output in ``dvc`` mode).
        dvc: run each row as a DVC experiment (:func:`_rows_as_dvc_experiments`) instead of in this process.

    Raises:
        ConfigError: a bad grid or override (names the key); FileNotFoundError: no pair store;
        whatever training raises (e.g. missing VGG weights at the row's start).
    """
    import mlflow

    from huescale import tracking

    grid = load_grid(grid_path)
    rows_cfg = _check_rows(grid)  # every row is checked before any training
    sample_lr = _sample_lr(rows_cfg)
    cfg0 = rows_cfg[0][1]
    tracking.setup(cfg0)
    with mlflow.start_run(run_name=f"ablation-{grid['name']}",
                          tags={tracking.KIND_TAG: "ablation", "grid": str(grid_path),
                                "git_commit": tracking.git_commit()}) as parent:
        mlflow.log_artifact(str(grid_path))
        if dvc:
            results = _rows_as_dvc_experiments(Path(grid_path), grid, progress)
        else:
            results = [_run_row(grid, row, cfg, store, sample_lr, progress) for row, cfg, store in rows_cfg]
        champion = None
        colorizers = [r for r in results if r["kind"] == "colorizer" and r.get("checkpoint")]
        if grid.get("register_champion", True) and colorizers:
            best = min(colorizers, key=lambda r: r["best_val_l1"])
            version = tracking.register_champion(best["checkpoint"], best["run_id"], best["best_val_l1"])
            champion = {"row": best["name"], "run_id": best["run_id"], "val_l1": best["best_val_l1"],
                        "model": "huescale-colorizer", "version": version}
            mlflow.set_tag("champion_row", best["name"])
        device = results[0].get("device", "?") if results else "?"
        summary = {"grid": grid["name"], "parent_run_id": parent.info.run_id, "device": device,
                   "runner": "dvc experiments" if dvc else "in process", "rows": results, "champion": champion}
        metrics_path = Path(grid.get("metrics", "metrics/ablations.json"))
        _write_json(summary, metrics_path)
        mlflow.log_artifact(str(metrics_path))
        report_path = grid.get("report", "reports/ablations.html")
        if report_path:
            render_report(summary, Path(report_path), Path(grid.get("templates", "reports/templates")))
            mlflow.log_artifact(str(report_path), "report")
    return summary


def _write_json(obj: dict, path: Path) -> None:
    """JSON with non-finite floats as null (a diverged row must not make the file unreadable)."""
    from huescale.evaluate import finite_or_none

    write_json(finite_or_none(obj), path)


def render_report(summary: dict, out: Path, templates: Path = Path("reports/templates")) -> Path:
    """Render ``reports/ablations.html`` from ``ablations.html.j2``: the grid's rows next to seed 004's
    Table 7 (with FPS) and seed 002's SSIM figures (:mod:`huescale.reference`), with each row's sample,
    the validation-L1 curves of the rows and the run metadata (git commit, device, MLflow parent run)."""
    import datetime as dt

    from huescale import reference, tracking
    from huescale.report import data_uri, read_history, render, svg_line_chart

    published = {name.lower(): (eps, mae, psnr, fid, fps)
                 for name, data, fid, eps, mae, psnr, fps in reference.SEED004_TABLE7["rows"] if data == "ImageNet"}
    rows = []
    curves: dict[str, dict[str, list[float]]] = {}
    for r in summary["rows"]:
        rows.append({**r, "sample_uri": data_uri(r["sample"]) if r.get("sample") and Path(r["sample"]).is_file()
                     else None, "table7": published.get(r["name"].lower())})
        row_dir = Path(r["sample"]).parent if r.get("sample") else None
        for phase in ("train_colorizer", "pretrain_colorizer", "train_joint", "pretrain_joint",
                      "pretrain_upscaler", "train_upscaler"):
            h = read_history(row_dir / f"{phase}.csv") if row_dir else {}
            if h.get("val_l1"):
                group = "colorizers" if "colorizer" in phase else "256 px models"
                curves.setdefault(group, {})[r["name"]] = h["val_l1"]
                break
    charts = [svg_line_chart(series, list(range(1, max(len(v) for v in series.values()) + 1)),
                             f"validation L1 per epoch: {group}", width=560, height=260)
              for group, series in curves.items()]
    info = {**tracking.active_run_info(), "parent_run_id": summary.get("parent_run_id")}
    if info.get("experiment_id") and info["parent_run_id"]:
        info["url"] = f"http://127.0.0.1:5000/#/experiments/{info['experiment_id']}/runs/{info['parent_run_id']}"
    meta = {"generated": dt.datetime.now().isoformat(timespec="seconds"), "git_commit": tracking.git_commit(),
            "device": summary.get("device", "?"), "mlflow": info,
            "wall_times": {r["name"]: r.get("wall_s", 0.0) for r in summary["rows"]}}
    return render(templates, "ablations.html.j2", out, page="ablations.html", summary=summary, rows=rows,
                  charts=charts, meta=meta, params=[], table7=reference.SEED004_TABLE7,
                  seed002=reference.SEED002_SSIM_EXAMPLES)


def stage_main() -> None:
    """Entry point of ``stages/ablate_row.py``: ``--params`` is the only argument; errors exit 1 with one line."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(description="huescale pipeline stage: ablate_row (one ablation grid row)")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        out = run_row_stage(load_config(args.params))
    except Exception as exc:  # noqa: BLE001 - the one place that turns errors into an exit code
        if os.environ.get("HUESCALE_DEBUG"):
            raise
        print(f"huescale ablate_row: error: {exc}", file=sys.stderr)
        sys.exit(1)
    log.info("ablate_row: %s", out)
