"""Per-image means of a network's scores over a dataset: the validation metrics of training (mean L1, the
phase's objective) and of the champion decision."""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from huescale.training.colour_losses import l1_loss
from huescale.training.tasks import Task


def worker_context(num_workers: int) -> str | None:
    """Loader workers start by forkserver: forking a process with running thread pools can hang or crash."""
    return "forkserver" if num_workers > 0 and os.name != "nt" else None


@torch.no_grad()
def mean_l1(net: nn.Module, task: Task, dataset: Dataset, device: torch.device | str = "cpu",
            batch_size: int = 32, num_workers: int = 0, bf16: bool = False) -> float:
    """Mean L1 of ``net`` over ``dataset`` (network units, lower is better); the validation metric.

    Leaves ``net`` in eval mode; ``bf16``: autocast as in training.
    """
    return dataset_means(net, task, dataset, {"l1": lambda x, out, y, aux: l1_loss(out, y)}, device, batch_size,
                         num_workers, bf16)["l1"]


@torch.no_grad()
def mean_objective(net: nn.Module, task: Task, objective: nn.Module, dataset: Dataset,
                   device: torch.device | str = "cpu", batch_size: int = 32, num_workers: int = 0,
                   bf16: bool = False) -> float:
    """Mean of a phase's weighted reconstruction objective (:class:`huescale.training.losses.GeneratorObjective`,
    ``total``) over ``dataset``; the validation metric of classification colorizers, whose decoded L1 rewards
    desaturation (Zhang et al. 2016). Leaves ``net`` in eval mode."""
    return dataset_means(net, task, dataset, {"objective": lambda x, out, y, aux: objective(x, out, y, aux)["total"]},
                         device, batch_size, num_workers, bf16)["objective"]


@torch.no_grad()
def dataset_means(net: nn.Module, task: Task, dataset: Dataset, scores: dict, device: torch.device | str = "cpu",
                  batch_size: int = 32, num_workers: int = 0, bf16: bool = False) -> dict[str, float]:
    """Per-image means over ``dataset`` of ``scores`` (name -> ``fn(x, out, target, aux)`` -> scalar tensor, a
    batch mean), in one pass of ``net`` (eval mode, left so; ``bf16``: autocast as in training)."""
    device = torch.device(device)
    net = net.to(device).eval()
    totals, count = dict.fromkeys(scores, 0.0), 0
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                            multiprocessing_context=worker_context(num_workers)):
        pair, extra = task.split(tuple(b.to(device) for b in batch))
        x, y = task.prepare(pair)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out, aux = net(x, return_aux=True, **extra) if getattr(net, "has_aux", False) else (net(x, **extra), {})
        for name, fn in scores.items():
            totals[name] += fn(x, out, y, aux).item() * x.shape[0]
        count += x.shape[0]
    return {name: t / max(count, 1) for name, t in totals.items()}
