"""The one training recipe: params -> generator, discriminator, objective, optimisers, and a phase run.

Every entry point that trains (the ``pretrain`` and ``train`` stages, every row of an ablation
grid) builds its phase here, so the same params give the same networks and the same run
(BasicSR's ``init_training_settings``, in one function):

- :func:`build` makes a :class:`Recipe` for one model role (``colorizer``, ``upscaler``,
  ``joint``) and one phase (``pretrain``: the generator alone with ``pretrain.<role>.losses``,
  L1 pre-training as Singh et al.; ``adversarial``: the generator against a discriminator
  whose input width follows from the task and ``train.d_conditional``, with ``train.losses``).
- :func:`run_phase` trains it on a pair store with the one :class:`huescale.training.trainer.Trainer`,
  writes the per-epoch history, and leaves the best-validation generator at its path.

Sources: pix2pix (Isola et al. 2017) for the conditional GAN; see ``docs/sources.md``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from huescale import models, tracking
from huescale.abbins import ABBins
from huescale.config import Config, ModelSpec, OptimConfig
from huescale.data.dataset import PairDataset
from huescale.data.features import FeatureDataset, encoder_key, has_encoder
from huescale.data.store import PairStore
from huescale.training import checkpoint
from huescale.training.distributed import use_bf16
from huescale.training.gan_loss import GANLoss
from huescale.training.history import EpochRecord, write_history_csv
from huescale.training.loss_registry import GAN, LossContext
from huescale.training.losses import GeneratorObjective, aux_needed, check_names, validation_metric
from huescale.training.phase_config import PhaseConfig
from huescale.training.tasks import COLORIZATION, JOINT, UPSCALING, Task
from huescale.training.trainer import Trainer, seed_everything
from huescale.training.vgg_loss import VGG_LAYERS, vgg_weights_path

log = logging.getLogger(__name__)
ROLES: dict[str, Task] = {"colorizer": COLORIZATION, "upscaler": UPSCALING, "joint": JOINT}
PHASES = ("pretrain", "finetune", "adversarial")


@dataclass
class Recipe:
    """Everything one training phase needs, built from the params by :func:`build`.

    Attributes:
        role: ``colorizer``, ``upscaler`` or ``joint``.
        task: what the generator maps (input/target tensors, tier of the pair store).
        netG: the generator (on the device, channels_last when asked).
        spec: the generator's registry name and kwargs (stored in its checkpoint).
        netD: the discriminator (adversarial phase) or None.
        objective: the reconstruction terms of the phase's ``losses``.
        gan: the GAN loss (adversarial phase) or None; ``gan_weight`` its weight lambda_GAN.
        optG, optD: Adam optimisers of G and D (optD None without D).
        phase: loop settings (epochs, batch size, seed, ...).
        cached_features: the generator's encoder is frozen in this phase, so it trains on the encoder's
            features cached once per photograph (:mod:`huescale.data.features`) where a cache is given.
    """

    role: str
    task: Task
    netG: nn.Module
    spec: ModelSpec
    netD: nn.Module | None
    objective: GeneratorObjective
    gan: GANLoss | None
    gan_weight: float
    optG: torch.optim.Optimizer
    optD: torch.optim.Optimizer | None
    phase: PhaseConfig
    cached_features: bool = False

    @property
    def adversarial(self) -> bool:
        """Whether this phase trains a discriminator."""
        return self.netD is not None


def optim_section(cfg: Config, role: str, phase: str) -> tuple[OptimConfig, str]:
    """The params section of a phase and its dotted name: ``pretrain.<role>`` (the joint generator uses
    ``pretrain.colorizer``), ``pretrain.finetune`` or ``train``."""
    if phase == "adversarial":
        return cfg.train, "train"  # type: ignore[return-value]  # TrainConfig has OptimConfig's fields
    if phase == "finetune":
        return cfg.pretrain.finetune, "pretrain.finetune"
    name = "upscaler" if role == "upscaler" else "colorizer"
    return getattr(cfg.pretrain, name), f"pretrain.{name}"


def finetunes(cfg: Config, role: str) -> bool:
    """Whether ``role``'s pre-training has a fine-tuning phase (``pretrain.finetune``): a colorizer with a pretrained
    encoder and ``pretrain.finetune.epochs > 0``; judged on the registered class, without building the model."""
    if role != "colorizer" or cfg.pretrain.finetune.epochs <= 0:
        return False
    cls: Any = models.registry.model_class(cfg.model.colorizer.name)
    return cls is not None and has_encoder(cls)


def check(cfg: Config, roles: tuple[str, ...] = ("colorizer", "upscaler"), adversarial: bool = True) -> None:
    """Check, before any training, every loss name of the phases ``roles`` will run, and the VGG weights
    those losses need; the pretrain stage calls it for ``train`` too, so a typo fails at the first stage.

    Raises:
        ValueError: an unknown loss (names the dotted key, lists the known losses).
        FileNotFoundError: a VGG loss's weights file is missing (names it).
    """
    phases = [(optim_section(cfg, r, "pretrain"), r) for r in roles]
    if "colorizer" in roles and finetunes(cfg, "colorizer"):
        phases.append((optim_section(cfg, "colorizer", "finetune"), "colorizer"))
    if adversarial:
        phases.append((optim_section(cfg, roles[0], "adversarial"), roles[0]))
    for (opt, where), role in phases:
        check_names(opt.losses, f"{where}.losses")
        spec = getattr(cfg.model, role)
        for name in opt.losses:
            needs = aux_needed(name)
            if needs and not getattr(models.registry.model_class(spec.name), "has_aux", False):
                raise ValueError(f"{where}.losses.{name}: needs the generator outputs {', '.join(needs)} (a colour-"
                                 f"classification head), which model {spec.name!r} does not have; use "
                                 "model.colorizer.name: semantic or colornet, or drop the loss")
        for name, weight in opt.losses.items():
            if name in VGG_LAYERS and weight > 0:
                vgg_weights_path(name, cfg.train.vgg_weights or None)


def _phase_config(cfg: Config, opt: OptimConfig, device: torch.device, **extra) -> PhaseConfig:
    return PhaseConfig(epochs=opt.epochs, batch_size=opt.batch_size, lr=opt.lr, betas=tuple(opt.betas),
                       seed=cfg.seed, max_batches=opt.max_batches, num_workers=cfg.runtime.num_workers,
                       channels_last=cfg.runtime.channels_last, compile=cfg.runtime.compile,
                       bf16=use_bf16(cfg.runtime.amp, device), losses=dict(opt.losses),
                       checkpoint_every=opt.checkpoint_every, lr_schedule=opt.lr_schedule,
                       # the L1 of an annealed-mean decoding rewards desaturation: classification phases keep the
                       # epoch with the lowest validation objective instead (Zhang et al. 2016)
                       val_metric=validation_metric(opt.losses), **extra)


def build(cfg: Config, role: str, phase: str, device: torch.device | str = "cpu",
          init: str | Path | None = None) -> Recipe:
    """Build one training phase from the params.

    Seeds every RNG with ``cfg.seed`` first, then builds the generator ``model.<role>`` (or loads
    it from the checkpoint ``init``, e.g. the pre-trained one) and, for the adversarial phase,
    the discriminator ``model.discriminator`` with ``in_channels = task.d_channels(train.d_conditional)``.
    The order is fixed, so the same params give bit-identical networks wherever a phase is built.

    Args:
        cfg: the validated params.
        role: ``colorizer``, ``upscaler`` or ``joint`` (model ``model.<role>``).
        phase: ``pretrain`` or ``adversarial``.
        device: where the networks live.
        init: a checkpoint of :func:`huescale.training.checkpoint.save_model` to start the generator from.

    Raises:
        ValueError: unknown role/phase or loss name; discriminator kwargs that contradict the task
            (an explicit ``in_channels``); bad model kwargs.
        FileNotFoundError: weights of a VGG loss are missing.
    """
    if role not in ROLES or phase not in PHASES:
        raise ValueError(f"unknown role {role!r} or phase {phase!r}; roles: {', '.join(ROLES)}; phases: {PHASES}")
    task, device = ROLES[role], torch.device(device)
    opt, where = optim_section(cfg, role, phase)
    seed_everything(cfg.seed)
    netG, spec, extra = _generator(cfg, role, init)
    netD, gan, gan_weight, loop = _discriminator(cfg, task) if phase == "adversarial" else (None, None, 0.0, {})
    objective = GeneratorObjective(opt.losses, LossContext(task, cfg.train.vgg_weights), f"{where}.losses")
    frozen = phase == "pretrain" and has_encoder(netG)
    if frozen:  # first phase of a pretrained-encoder colorizer: the decoder alone, on cached encoder features
        netG.encoder.requires_grad_(False)
        loop["flip"] = False  # features of a flipped photograph are not the flipped features
    phase_cfg = _phase_config(cfg, opt, device, extra=extra, **loop)
    netG = netG.to(device)
    netD = netD.to(device) if netD is not None else None
    if phase_cfg.channels_last:
        netG = netG.to(memory_format=torch.channels_last)
        netD = netD.to(memory_format=torch.channels_last) if netD is not None else None
    fused = True if device.type == "cuda" else None
    optG = torch.optim.Adam(_param_groups(netG, opt.lr, getattr(opt, "encoder_lr_scale", 1.0)), lr=opt.lr,
                            betas=tuple(opt.betas), fused=fused)
    optD = torch.optim.Adam(netD.parameters(), lr=opt.lr, betas=tuple(opt.betas), fused=fused) if netD else None
    return Recipe(role, task, netG, spec, netD, objective.to(device), gan, gan_weight, optG, optD, phase_cfg,
                  cached_features=frozen)


def _generator(cfg: Config, role: str, init: str | Path | None) -> tuple[nn.Module, ModelSpec, dict]:
    """The generator of :func:`build`: ``model.<role>`` built (with its pretrained encoder loaded), or loaded from
    the checkpoint ``init``; with its spec and the phase's extra settings (the checkpoint's validation L1)."""
    extra: dict = {}
    if init is None:
        spec = getattr(cfg.model, role)
        netG = models.build(spec.name, **spec.kwargs)
        if callable(getattr(netG, "load_pretrained", None)):
            netG.load_pretrained()  # type: ignore[operator]  # an ImageNet-pretrained encoder (models.backbones)
    else:
        netG, ck = checkpoint.load_model(init)
        spec = ModelSpec(ck["model"], ck.get("kwargs", {}))
        extra["pretrained_val_l1"] = ck.get("val_l1")
    return netG, spec, extra


def _discriminator(cfg: Config, task: Task) -> tuple[nn.Module, GANLoss, float, dict]:
    """The adversarial phase's discriminator (``in_channels`` from the task), GAN loss, its weight and loop settings.

    Raises:
        ValueError: an explicit ``model.discriminator.kwargs.in_channels`` that contradicts the task.
    """
    t = cfg.train
    d = cfg.model.discriminator
    want = task.d_channels(t.d_conditional)
    if d.kwargs.get("in_channels", want) != want:
        raise ValueError(f"model.discriminator.kwargs.in_channels={d.kwargs['in_channels']} but the {task.name} "
                         f"discriminator sees {want} channels (train.d_conditional={t.d_conditional}); remove it")
    netD = models.build(d.name, **{**d.kwargs, "in_channels": want})
    gan, gan_weight = GANLoss(t.gan_mode), float(t.losses.get(GAN, 0.0))
    loop = dict(gan_mode=t.gan_mode, d_conditional=t.d_conditional, collapse_steps=t.collapse_steps,
                collapse_threshold=t.collapse_threshold)
    return netD, gan, gan_weight, loop


def _param_groups(net: nn.Module, lr: float, encoder_lr_scale: float) -> list[dict]:
    """Adam's parameter groups: the trainable parameters, those of a pretrained encoder (``net.encoder``) at
    ``encoder_lr_scale`` x ``lr`` (``lr_scale``, which the cosine schedule keeps:
    :meth:`huescale.training.trainer.Trainer._schedule_lr`)."""
    encoder = getattr(net, "encoder", None) if has_encoder(net) else None
    enc_ids = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    rest = [p for p in net.parameters() if p.requires_grad and id(p) not in enc_ids]
    enc = [p for p in net.parameters() if p.requires_grad and id(p) in enc_ids]
    groups = [{"params": rest, "lr": lr, "lr_scale": 1.0}]
    if enc:
        groups.append({"params": enc, "lr": lr * encoder_lr_scale, "lr_scale": encoder_lr_scale})
    return groups


@dataclass
class PhaseResult:
    """What :func:`run_phase` returns: where the best generator is and the run's figures.

    Attributes:
        best_path: the best-validation generator's checkpoint (:func:`load` rebuilds it).
        history: one record per epoch (losses, ``val_l1``).
        best_val: the best validation L1 (network units).
        epochs, steps: how far the phase ran.
        d_collapse: the discriminator's loss stayed near 0 (adversarial phase only).
    """

    best_path: Path
    history: list[EpochRecord]
    best_val: float
    epochs: int
    steps: int
    d_collapse: bool = False

    def load(self, device: torch.device | str = "cpu") -> nn.Module:
        """The best-validation generator, in eval mode.

        Raises:
            huescale.training.checkpoint.CheckpointError: the checkpoint is missing or unreadable.
        """
        return checkpoint.load_model(self.best_path, device)[0]

    def figures(self, prefix: str) -> dict[str, float | int | bool]:
        """``<prefix>_best_val_l1``, ``_epochs``, ``_steps`` (``_d_collapse``, ``_final_loss_D`` when adversarial)."""
        out: dict[str, float | int | bool] = {f"{prefix}_best_val_l1": self.best_val, f"{prefix}_epochs": self.epochs,
                                              f"{prefix}_steps": self.steps}
        last = self.history[-1].values if self.history else {}
        if "loss_D" in last:
            out[f"{prefix}_d_collapse"] = self.d_collapse
            out[f"{prefix}_final_loss_D"] = last["loss_D"]
        return out


def run_phase(recipe: Recipe, store: PairStore, name: str, best_path: str | Path, history_csv: str | Path,
              state_path: str | Path, device: torch.device | str = "cpu", resume: bool = True,
              progress: bool = True, features: str | Path | None = None) -> PhaseResult:
    """Train one phase on a pair store to its end and keep the best-validation generator.

    Trains on the store's ``train`` split and validates on ``val``, both of the task's tier. After
    every epoch the history CSV is rewritten (``dvc plots``, the report) and the epoch's values are
    logged to the active MLflow run as ``<name>/<value>`` with the epoch as step. On success the
    resumable state is deleted; after a kill the same call resumes from it (``resume``). The active MLflow run
    gets the tag ``resume.<name>``: ``resumed at epoch E, step S from <file>``, or ``started afresh: <reason>``
    when a state existed but could not be used (unreadable, other settings).

    Args:
        recipe: from :func:`build`.
        store: the pair store (``data/pairs``).
        name: the phase's name in MLflow and logs, e.g. ``pretrain_colorizer``.
        best_path: the best generator's checkpoint; history_csv: per-epoch values; state_path: resumable state.
        features: the encoder feature cache (``data/features``) a frozen-encoder phase reads
            (``recipe.cached_features``) when it was made by this encoder from this store; else (or None) the
            frozen encoder runs on every batch (the same training up to the cache's float16 rounding, slower).

    Raises:
        ValueError: an empty split. huescale.training.trainer.TrainingDiverged: a non-finite loss.
    """
    tier = recipe.task.tier

    def on_epoch(rec: EpochRecord) -> None:
        write_history_csv(trainer.history, history_csv)
        tracking.log_metrics(rec.values, step=rec.epoch, prefix=f"{name}/")

    train_set: Dataset = PairDataset(store, "train", tier)
    val_set: Dataset = PairDataset(store, "val", tier)
    fit_colour_prior(recipe, train_set, device)
    if recipe.cached_features and features is not None:
        key = encoder_key(recipe.netG)
        try:
            train_set, val_set = (FeatureDataset(store, s, features, expect_key=key) for s in ("train", "val"))
        except (FileNotFoundError, ValueError) as exc:  # another store or encoder: same training, slower
            log.warning("%s; the frozen encoder runs on every batch instead", exc)
    trainer = Trainer(recipe, state_path, best_path, device=device, on_epoch=on_epoch, resume=resume,
                      progress=progress)
    try:
        history = trainer.fit(train_set, val_set)
    finally:  # also when training fails: the run shows what it started from
        _tag_resume(name, trainer)
    if trainer.rank == 0:  # under torchrun rank 0 alone writes (the other ranks' losses are over their slices)
        write_history_csv(history, history_csv)
        trainer.state_path.unlink(missing_ok=True)
        checkpoint.previous(trainer.state_path).unlink(missing_ok=True)
    collapse = bool(history and history[-1].values.get("d_collapse", 0))
    return PhaseResult(Path(best_path), history, trainer.best_val, trainer.epoch, trainer.step, collapse)


def fit_colour_prior(recipe: Recipe, train_set: PairDataset, device: torch.device | str = "cpu",
                     batch_size: int = 32) -> bool:
    """Fit the a*b* colour prior of a generator with :class:`huescale.abbins.ABBins` (``colornet``) on the
    training split, before its first step (Zhang et al. 2016's rebalancing weights come from it).

    A generator whose bins are already fitted (initialised from a checkpoint) is left alone; a resumed run
    gets the same buffers back from its state. The counts are exact, so the prior does not depend on batching.

    Returns:
        True if a prior was fitted.
    """
    net = recipe.netG.module if hasattr(recipe.netG, "module") else recipe.netG
    bins = getattr(net, "bins", None)
    if not isinstance(bins, ABBins) or bool(bins.fitted):
        return False
    loader = DataLoader(train_set, batch_size=batch_size, shuffle=False)
    bins.fit(recipe.task.prepare([t.to(device) for t in batch])[1] for batch in loader)
    return True


def _tag_resume(name: str, trainer: Trainer) -> None:
    """Tag the active MLflow run ``resume.<name>`` with where the phase resumed, or why it started afresh."""
    if trainer.fresh_start_reason:
        tracking.set_tags({f"resume.{name}": f"started afresh: {trainer.fresh_start_reason}"})
    elif trainer.resumed_from is not None:
        epoch, step = trainer.resumed_from
        tracking.set_tags({f"resume.{name}": f"resumed at epoch {epoch}, step {step} from {trainer.resumed_file}"})
