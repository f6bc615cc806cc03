"""A training phase's loop settings (:class:`PhaseConfig`, built by :mod:`huescale.training.recipe`) and the
learning-rate schedule, a function of them and the step alone (so a resumed run continues it exactly)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field


def scheduled_lr(base: float, step: int, total: int, warmup: int = 200) -> float:
    """Learning rate of ``step`` (0-based) of ``total`` under the cosine schedule: a linear warm-up over
    ``min(warmup, total // 10)`` steps, then ``base * (1 + cos(pi * t)) / 2`` with ``t`` going 0 -> 1 (SGDR,
    Loshchilov & Hutter 2017, without restarts); >= 1 % of ``base`` so the last steps still move."""
    warm = min(warmup, total // 10)
    if step < warm:
        return base * (step + 1) / warm
    t = min(1.0, (step - warm) / max(1, total - warm))
    return max(base * 0.5 * (1.0 + math.cos(math.pi * t)), base * 0.01)


@dataclass
class PhaseConfig:
    """The loop settings of one training phase (built from the params by :mod:`huescale.training.recipe`)."""

    epochs: int
    batch_size: int
    lr: float
    betas: tuple[float, float]
    seed: int = 0
    max_batches: int = 0
    losses: dict[str, float] = field(default_factory=dict)  # name -> weight (huescale.training.losses)
    gan_mode: str | None = None  # None = no discriminator (pre-training)
    d_conditional: bool = True  # D sees condition ++ output (pix2pix); False: output only (SRGAN)
    collapse_steps: int = 200
    collapse_threshold: float = 1e-3
    checkpoint_every: int = 50
    num_workers: int = 0
    channels_last: bool = False  # NHWC memory format for the conv nets
    compile: bool = False  # torch.compile the forward passes
    bf16: bool = False  # bf16 autocast of the forward passes (runtime.amp resolved for the device)
    flip: bool = True
    lr_schedule: str = "constant"  # constant | cosine (linear warm-up, then cosine decay to 0 over the phase)
    val_metric: str = "l1"  # l1 | objective: what picks the best epoch (recipe: objective for ab_ce phases)
    extra: dict = field(default_factory=dict)  # anything else that must match on resume

    def settings(self, *parts: object) -> dict[str, str]:
        """The settings a resumed run must share with the killed one, as ``{name: JSON text}``: every field but
        ``epochs`` (so a finished run can be extended by raising it), plus ``parts`` as ``part0``, ``part1``..."""
        out = {k: json.dumps(v, sort_keys=True, default=str) for k, v in self.__dict__.items() if k != "epochs"}
        out.update({f"part{i}": str(p) for i, p in enumerate(parts)})
        return out

    def fingerprint(self, *parts: object) -> str:
        """A hash (16 hex digits) of the same settings as :meth:`settings` (computed as before it existed, so
        states written by earlier versions still match)."""
        settings = {k: v for k, v in self.__dict__.items() if k != "epochs"}
        blob = json.dumps([settings, [str(p) for p in parts]], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
