"""Where the code runs: the torch device, and data-parallel training with ``torchrun`` (DDP).

``torchrun --nproc_per_node=N stages/train.py`` starts N processes with
``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set; :func:`init_from_env` joins them
into one process group (NCCL on CUDA, gloo on CPU). The Trainer then wraps its
networks in DDP and gives each rank an equal slice of every global batch, so
N processes at global batch B follow one process at batch B (up to BatchNorm,
whose statistics are per rank).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int]:
    """``(rank, world size)`` of this process; ``(0, 1)`` outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Whether this process is rank 0 (the one that writes files and logs)."""
    return int(os.environ.get("RANK", "0")) == 0 and world()[0] == 0


def init_from_env(device: torch.device) -> torch.device:
    """Join the ``torchrun`` process group if ``WORLD_SIZE > 1``; returns this rank's device.

    Args:
        device: the configured device; on CUDA each rank takes ``cuda:LOCAL_RANK``.

    Returns:
        The device this rank should use.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or (dist.is_available() and dist.is_initialized()):
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU.

    Raises:
        RuntimeError: ``cuda`` asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("runtime.device=cuda but no CUDA device is available; set runtime.device=auto or cpu")
    return torch.device(name)


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` runs bfloat16 matmuls/convolutions natively: a CUDA GPU with bf16, or a CPU with
    AMX tiles or AVX512-BF16 (oneDNN then uses them under ``torch.autocast("cpu", torch.bfloat16)``)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        cpu = torch.cpu
        return bool(getattr(cpu, "_is_amx_tile_supported", lambda: False)()
                    or getattr(cpu, "_is_avx512_bf16_supported", lambda: False)())
    return False


def use_bf16(mode: str, device: torch.device) -> bool:
    """Resolve ``runtime.amp`` for ``device``: ``auto`` -> bf16 autocast where :func:`bf16_supported`, else fp32;
    ``bf16`` -> always (slow where emulated); ``off`` -> fp32.

    Raises:
        ValueError: an unknown mode.
    """
    if mode not in ("auto", "bf16", "off"):
        raise ValueError(f"runtime.amp must be auto, bf16 or off, got {mode!r}")
    return mode == "bf16" or (mode == "auto" and bf16_supported(device))
