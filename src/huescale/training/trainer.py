"""One Trainer for L1 pre-training and adversarial training (docs/architecture.md).

The networks, losses and optimisers come from :func:`huescale.training.recipe.build` (the one
recipe); this module owns the loop. Phases:
- ``pretrain``: the generator alone with its ``losses`` (L1 pre-training, Singh et al.:
  "we pre-train the generator ... with L1 loss"; Adam 1e-4, default betas).
- ``adversarial``: conditional GAN + the reconstruction terms (pix2pix, Isola et al. 2017;
  Brescia et al., Singh et al.: LSGAN, lambda_L1 = 100, Adam 2e-4, betas (0.5, 0.999)),
  from the pre-trained generator. The GAN step is the pix2pix trio ``forward`` /
  ``backward_D`` / ``backward_G``. Source documents: ``docs/sources.md``.

The Trainer owns seeding, the batch order (a seeded permutation per epoch, so
a resumed run sees the same batches), bf16 autocast on CUDA, a tqdm bar,
per-epoch validation, the best-validation weights, and an atomic resumable
state written every ``checkpoint_every`` steps and at each epoch end.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, Dataset

from huescale.progress import bar as progress_bar
from huescale.training import checkpoint, distributed
from huescale.training.colour_losses import l1_loss
from huescale.training.history import EpochRecord
from huescale.training.phase_config import scheduled_lr
from huescale.training.scoring import dataset_means, worker_context
from huescale.training.tasks import Batch

if TYPE_CHECKING:
    from huescale.training.recipe import Recipe

log = logging.getLogger(__name__)


class _BatchList:
    """A batch sampler whose list of index batches the Trainer replaces every epoch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(list(self.batches))

    def __len__(self) -> int:
        return len(self.batches)


class TrainingDiverged(RuntimeError):
    """A non-finite loss; the last good checkpoint is kept."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Trains a generator (and optionally a discriminator) for one phase.

    Args:
        recipe: networks, objective, GAN loss, optimisers and loop settings from
            :func:`huescale.training.recipe.build`.
        state_path: resumable state (models, optimisers, epoch, step, RNG, history).
        best_path: where the best-validation generator is saved (via :func:`checkpoint.save_model`).
        device: torch device (the recipe's networks are already there).
        on_epoch: callback ``(EpochRecord)``, e.g. MLflow logging.
        resume: continue from ``state_path`` when it matches this run's fingerprint.
        progress: show a tqdm bar (rank 0 only).

    After :meth:`fit` (set when it resumes or decides not to):

    - ``resumed_from``: ``(epoch, step)`` of the state this run continued from, or None; ``resumed_file`` the
      file it was read from (``state_path``, or its previous version when that is unreadable);
    - ``fresh_start_reason``: why an existing state was *not* used (unreadable, other settings; names the
      file), or None. Either case is logged (INFO for a resume, WARNING for a fresh start).
    """

    def __init__(self, recipe: Recipe, state_path: str | Path, best_path: str | Path,
                 device: torch.device | str = "cpu", on_epoch: Callable[[EpochRecord], None] | None = None,
                 resume: bool = True, progress: bool = True):
        self.device = torch.device(device)
        self.netG, self.netD = recipe.netG, recipe.netD
        self.task, self.cfg = recipe.task, recipe.phase
        self.objective, self.criterionGAN, self.gan_weight = recipe.objective, recipe.gan, recipe.gan_weight
        self.optG, self.optD = recipe.optG, recipe.optD
        self.state_path, self.best_path = Path(state_path), Path(best_path)
        self.model_spec = (recipe.spec.name, recipe.spec.kwargs)
        self.on_epoch, self.resume = on_epoch, resume
        # forward callables (DDP- and/or compile-wrapped); the modules and their state_dicts stay plain
        self.rank, self.world = distributed.world()
        self.G, self.D = self.netG, self.netD
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.G = DDP(self.netG, device_ids=ids)
            self.D = DDP(self.netD, device_ids=ids) if self.netD is not None else None
        if self.cfg.compile:
            self.G = torch.compile(self.G)
            self.D = torch.compile(self.D) if self.D is not None else None
        self.progress = progress and self.rank == 0
        self.adversarial = self.netD is not None
        if self.adversarial and self.criterionGAN is None:
            raise ValueError("adversarial training needs a GAN loss (recipe.gan)")
        self.amp = self.cfg.bf16
        self.epoch, self.step, self.best_val = 0, 0, math.inf
        self.best_state: dict[str, torch.Tensor] | None = None  # best-validation weights, also kept in the state
        self.history: list[EpochRecord] = []
        self.collapse_run = 0
        self.collapse_warned = False
        parts = (self.model_spec, type(self.netD).__name__ if self.netD else None)
        self.fingerprint, self.settings = self.cfg.fingerprint(*parts), self.cfg.settings(*parts)
        self.resumed_from: tuple[int, int] | None = None
        self.resumed_file: Path | None = None
        self.fresh_start_reason: str | None = None

    # -- state ---------------------------------------------------------------
    def _state(self, batch_in_epoch: int, sums: dict[str, float] | None = None, n: int = 0) -> dict:
        """The resumable state; mid-epoch (``batch_in_epoch > 0``) with the epoch's loss sums over ``n`` batches
        so far, so the resumed epoch's mean losses are those of an uninterrupted one."""
        return {
            "fingerprint": self.fingerprint, "settings": self.settings, "epoch": self.epoch, "step": self.step,
            "batch_in_epoch": batch_in_epoch, "best_val": self.best_val,
            "netG": self.netG.state_dict(), "optG": self.optG.state_dict(),
            "netD": self.netD.state_dict() if self.netD is not None else {},
            "optD": self.optD.state_dict() if self.optD is not None else {},
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "best_netG": self.best_state or {},
            "history": [[r.epoch, r.step, r.values] for r in self.history],
            "collapse_run": self.collapse_run,
            "epoch_sums": dict(sums or {}), "epoch_batches": n,
        }

    def _try_resume(self) -> int:
        """Load the resumable state if it exists and matches; returns the batch to start the epoch at."""
        if not (self.resume and (self.state_path.is_file() or checkpoint.previous(self.state_path).is_file())):
            return 0
        try:
            st, src = checkpoint.load_with_fallback(self.state_path, self.device)
        except checkpoint.CheckpointError as exc:
            return self._fresh_start(f"cannot resume from {self.state_path}: {exc}")
        if src != self.state_path:
            log.warning("%s is unreadable; resuming from the previous good checkpoint %s", self.state_path, src)
        if st.get("fingerprint") != self.fingerprint:
            old = st.get("settings") or {}
            changed = sorted(k for k in set(old) | set(self.settings) if old.get(k) != self.settings.get(k))
            what = ", ".join(f"{k}: {old.get(k, '?')} -> {self.settings.get(k, '?')}" for k in changed) if old else \
                "its settings fingerprint differs"
            return self._fresh_start(f"{src} was made with other settings ({what}); delete it to silence this")
        self.netG.load_state_dict(st["netG"])
        self.optG.load_state_dict(st["optG"])
        if self.netD is not None:
            self.netD.load_state_dict(st["netD"])
            self.optD.load_state_dict(st["optD"])
        torch.set_rng_state(st["rng_torch"].cpu())
        if st.get("rng_cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in st["rng_cuda"]])
        self.epoch, self.step, self.best_val = st["epoch"], st["step"], st["best_val"]
        self.history = [EpochRecord(e, s, v) for e, s, v in st["history"]]
        self.collapse_run = st.get("collapse_run", 0)
        self.best_state = st.get("best_netG") or None
        self._resumed_sums = (dict(st.get("epoch_sums", {})), int(st.get("epoch_batches", 0)))
        self.resumed_from, self.resumed_file = (self.epoch, self.step), src
        log.info("resumed from %s at epoch %d, step %d (batch %d of the epoch)", src, self.epoch, self.step,
                 st["batch_in_epoch"])
        return st["batch_in_epoch"]

    def _fresh_start(self, reason: str) -> int:
        """Record and log (WARNING) why an existing state is not resumed; training starts from step 0."""
        self.fresh_start_reason = reason
        log.warning("%s; starting afresh from step 0", reason)
        return 0

    # -- data order ------------------------------------------------------------
    def _batches(self, n: int, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)
        perm = torch.randperm(n, generator=g).tolist()
        bs = self.cfg.batch_size
        batches = [perm[i:i + bs] for i in range(0, n - bs + 1, bs)] or [perm]  # drop_last, unless tiny
        if self.cfg.max_batches > 0:
            batches = batches[: self.cfg.max_batches]
        return batches

    def _prepare(self, batch: Batch, epoch: int, index: int, train: bool,
                 global_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """``(input, target, generator kwargs)`` of a loader batch on the device (kwargs: cached encoder features,
        never flipped: a phase that reads them trains without flips, :mod:`huescale.training.recipe`)."""
        batch = tuple(b.to(self.device, non_blocking=True) for b in batch)
        batch, extra = self.task.split(batch)
        if train and self.cfg.flip:  # horizontal flip of half the global batch, from (seed, epoch, batch) only
            g = torch.Generator().manual_seed(hash((self.cfg.seed, epoch, index)) & 0x7FFFFFFF)
            coins = torch.rand(global_size or batch[0].shape[0], generator=g)[self.rank::self.world]
            mask = (coins < 0.5).to(self.device).view(-1, 1, 1, 1)
            batch = tuple(torch.where(mask, b.flip(-1), b) for b in batch)
        x, y = self.task.prepare(batch)
        if self.cfg.channels_last:
            x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
        return x, y, extra

    # -- the steps -------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def _check(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            if not torch.isfinite(v):
                raise TrainingDiverged(
                    f"{k} became {v.item()} at epoch {self.epoch}, step {self.step}; the last good "
                    f"checkpoint {self.state_path} is kept. Lower the learning rate or check the data")

    def _schedule_lr(self, batches_per_epoch: int) -> None:
        """Set the optimisers' learning rate for the step about to run (a function of the step alone, so a
        resumed run continues the schedule exactly; no scheduler state to save)."""
        if self.cfg.lr_schedule == "constant":
            return
        lr = scheduled_lr(self.cfg.lr, self.step, self.cfg.epochs * batches_per_epoch)
        for opt in (self.optG, self.optD):
            if opt is not None:
                for group in opt.param_groups:  # a group's lr_scale: e.g. a pretrained encoder's lower rate
                    group["lr"] = lr * group.get("lr_scale", 1.0)

    def train_step(self, x: torch.Tensor, y: torch.Tensor, extra: dict | None = None) -> dict[str, float]:
        """One optimisation step on a batch (``extra``: the generator's keyword inputs, e.g. cached encoder
        features); returns the named losses as floats."""
        extra = extra or {}
        if not self.adversarial:
            with self._autocast():
                out, aux = self._generate(x, extra)
                terms = self.objective(x, out, y, aux)
            self._check(terms)  # names the first non-finite term (loss_G_L1 first)
            loss = terms.pop("total")
            self.optG.zero_grad(set_to_none=True)
            loss.backward()
            self.optG.step()
            return {k: v.item() for k, v in terms.items()}
        with self._autocast():
            fake, aux = self._generate(x, extra)  # forward
        # backward_D: real (x, y) vs fake (x, G(x)), fake detached
        with self._autocast():
            loss_D_fake = self.criterionGAN(self.D(self._d_input(x, fake.detach())), False)
            loss_D_real = self.criterionGAN(self.D(self._d_input(x, y)), True)
            loss_D = 0.5 * (loss_D_fake + loss_D_real)
        self._check({"loss_D": loss_D})
        self.optD.zero_grad(set_to_none=True)
        loss_D.backward()
        self.optD.step()
        # backward_G: fool D, stay close to the target in L1
        with self._autocast():
            loss_G_GAN = self.criterionGAN(self.D(self._d_input(x, fake)), True, for_discriminator=False)
            terms = self.objective(x, fake, y, aux)
            loss_G = self.gan_weight * loss_G_GAN + terms.pop("total")
        self._check({"loss_G": loss_G})
        self.optG.zero_grad(set_to_none=True)
        loss_G.backward()
        self.optG.step()
        d = loss_D.item()
        self.collapse_run = self.collapse_run + 1 if d < self.cfg.collapse_threshold else 0
        return {"loss_D": d, "loss_D_real": loss_D_real.item(), "loss_D_fake": loss_D_fake.item(),
                "loss_G": loss_G.item(), "loss_G_GAN": loss_G_GAN.item(), **{k: v.item() for k, v in terms.items()}}

    def _generate(self, x: torch.Tensor, extra: dict | None = None) -> tuple[torch.Tensor, dict]:
        """The generator's output and its auxiliary training outputs (e.g. a classification head's logits, for
        generators with ``has_aux``: ``forward(x, return_aux=True) -> (out, aux)``), else ``{}``; ``extra``: the
        generator's keyword inputs (cached encoder features)."""
        if getattr(self.netG, "has_aux", False):
            return self.G(x, return_aux=True, **(extra or {}))
        return self.G(x, **(extra or {})), {}

    def _d_input(self, x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """What D sees: condition ++ output (pix2pix; a smaller condition is bicubic-upscaled to the
        output size, e.g. the 64 px L of the joint model), or the output alone (``d_conditional=False``, SRGAN)."""
        if not self.cfg.d_conditional:
            return out
        if x.shape[-2:] != out.shape[-2:]:
            x = torch.nn.functional.interpolate(x, size=out.shape[-2:], mode="bicubic", align_corners=False)
        return torch.cat([x, out], 1)

    def validate(self, val_set: Dataset) -> dict[str, float]:
        """The generator on the validation set: ``val_l1`` (mean L1, network units) and, with
        ``val_metric: objective``, ``val_objective`` (the phase's weighted reconstruction objective); lower is
        better for both."""
        scores = {"val_l1": lambda x, out, y, aux: l1_loss(out, y)}
        if self.cfg.val_metric == "objective":  # the same pass: one forward of the validation set
            scores["val_objective"] = lambda x, out, y, aux: self.objective(x, out, y, aux)["total"]
        out = dataset_means(self.netG, self.task, val_set, scores, self.device, max(self.cfg.batch_size, 32),
                            self.cfg.num_workers, self.amp)
        self.netG.train()
        return out

    def _end_epoch(self, values: dict[str, float], val_set: Dataset) -> None:
        """Validate, record the epoch, keep the best weights (lowest ``val_l1``, or ``val_objective`` with
        ``val_metric: objective``), write the state; ``values`` = mean train losses."""
        scores = self.validate(val_set)
        values.update(scores)
        val = scores["val_objective" if self.cfg.val_metric == "objective" else "val_l1"]
        if self.adversarial:
            values["d_collapse"] = float(self.collapse_run >= self.cfg.collapse_steps)
            if values["d_collapse"] and not self.collapse_warned:
                log.warning("discriminator collapse: loss_D < %g for %d steps", self.cfg.collapse_threshold,
                            self.collapse_run)
                self.collapse_warned = True
        self.epoch += 1
        rec = EpochRecord(self.epoch, self.step, values)
        self.history.append(rec)
        improved = val < self.best_val  # every rank validates the same weights: same decision
        self.best_val = min(val, self.best_val)
        if improved:
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.netG.state_dict().items()}
        if self.rank == 0:
            if improved:
                checkpoint.save_model(self.netG, *self.model_spec, self.best_path, epoch=self.epoch,
                                      val_l1=scores["val_l1"], val_selected=val)
            checkpoint.save_atomic(self._state(0), self.state_path, keep_previous=True)
            if self.on_epoch:
                self.on_epoch(rec)
        log.info("epoch %d: %s", self.epoch, json.dumps({k: round(v, 5) for k, v in values.items()}))

    # -- the loop --------------------------------------------------------------
    def fit(self, train_set: Dataset, val_set: Dataset) -> list[EpochRecord]:
        """Train for ``cfg.epochs`` epochs (resuming if possible); returns the per-epoch history.

        Raises:
            TrainingDiverged: on a NaN/Inf loss.
        """
        seed_everything(self.cfg.seed)
        self._resumed_sums = ({}, 0)
        start_batch = self._try_resume()
        self.netG.train()
        if self.netD is not None:
            self.netD.train()
        pin = self.device.type == "cuda"
        order = _BatchList()  # the loader is made once (persistent workers); its batches change per epoch
        # its own generator: making an iterator draws a seed from it, which must not move the global RNG that
        # dropout uses (a resumed run makes its iterator after restoring that RNG, the killed one before saving it)
        loader_rng = torch.Generator().manual_seed(self.cfg.seed)
        loader = DataLoader(train_set, batch_sampler=order, num_workers=self.cfg.num_workers, pin_memory=pin,
                            generator=loader_rng,
                            persistent_workers=self.cfg.num_workers > 0, multiprocessing_context=worker_context(
                                self.cfg.num_workers))
        while self.epoch < self.cfg.epochs:
            batches = self._batches(len(train_set), self.epoch)
            if self.world > 1 and len(batches[0]) % self.world:
                raise ValueError(f"batch size {len(batches[0])} is not divisible by the {self.world} processes")
            order.batches = [b[self.rank::self.world] for b in batches[start_batch:]]  # this rank's slices
            sums, n = self._resumed_sums if start_batch else ({}, 0)  # a resumed epoch keeps its sums so far
            bar = progress_bar(loader, total=len(batches), initial=start_batch, unit="batch",
                               desc=f"epoch {self.epoch + 1}/{self.cfg.epochs}", disable=not self.progress, leave=False)
            for i, batch in enumerate(bar, start=start_batch):
                x, y, extra = self._prepare(batch, self.epoch, i, train=True, global_size=len(batches[i]))
                self._schedule_lr(len(batches))
                losses = self.train_step(x, y, extra)
                self.step += 1
                n += 1
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items() if k in ("loss_D", "loss_G", "loss_G_L1")})
                if (self.rank == 0 and self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0
                        and i + 1 < len(batches)):
                    checkpoint.save_atomic(self._state(i + 1, sums, n), self.state_path, keep_previous=True)
            bar.close()
            start_batch = 0
            self._end_epoch({k: v / max(n, 1) for k, v in sums.items()}, val_set)
        if self.rank == 0 and not self.best_path.is_file() and self.best_state is not None:
            # resumed after DVC removed the stage's outputs: write the best weights kept in the state
            best = copy.deepcopy(self.netG).cpu()
            best.load_state_dict(self.best_state)
            checkpoint.save_model(best, *self.model_spec, self.best_path, val_l1=self.best_val)
        return self.history
