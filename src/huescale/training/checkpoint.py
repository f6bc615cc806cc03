"""The one checkpoint writer and reader: atomic writes, ``weights_only`` loads."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from huescale import models
from huescale.atomic import clean_stale_tmp, commit, tmp_path


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt or not a huescale checkpoint; names the file."""


def previous(path: str | Path) -> Path:
    """Where :func:`save_atomic` keeps the previous version of ``path`` (``keep_previous=True``)."""
    path = Path(path)
    return path.with_name(path.stem + ".prev" + path.suffix)


def save_atomic(obj: dict[str, Any], path: str | Path, keep_previous: bool = False) -> None:
    """``torch.save`` to a process-private temp file in the same folder, fsync it, ``os.replace``, fsync the folder.

    A reader never sees a half-written file, even if the process is killed, and the new file
    survives a power cut once this returns. With ``keep_previous`` the file being replaced is
    kept as :func:`previous`, a fallback should the new one ever be unreadable. Temporaries left
    by killed processes next to ``path`` are removed (:func:`huescale.atomic.clean_stale_tmp`).

    Raises:
        CheckpointError: the file cannot be written (disk full, read-only folder); names the
            file, and the previous checkpoint is left untouched.
    """
    path = Path(path)
    tmp = None
    try:
        tmp = tmp_path(path)
        clean_stale_tmp(path)
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous and path.exists():
            os.replace(path, previous(path))
        commit(tmp, path)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write checkpoint {path}: {exc}; free disk space or fix permissions") from None


def load_with_fallback(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[dict[str, Any], Path]:
    """Load ``path``, or its :func:`previous` version when ``path`` is missing or corrupt.

    Returns:
        ``(checkpoint dict, the file it came from)``.

    Raises:
        CheckpointError: neither file is a readable checkpoint (the message names both).
    """
    errors = []
    for p in (Path(path), previous(path)):
        try:
            return load(p, map_location), p
        except CheckpointError as exc:
            errors.append(str(exc))
    raise CheckpointError("; ".join(errors))


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict with ``torch.load(weights_only=True)``.

    Raises:
        CheckpointError: file missing or unreadable (corrupt, truncated, not a checkpoint).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; run the stage that makes it (see dvc.yaml)")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({type(exc).__name__}: {exc}); "
                              "delete it and re-run the stage") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: not a huescale checkpoint (got {type(obj).__name__})")
    return obj


def save_model(model: nn.Module, name: str, kwargs: dict, path: str | Path, **meta: Any) -> None:
    """Save a model so :func:`load_model` can rebuild it: registry name, kwargs, weights, metadata."""
    sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_atomic({"model": name, "kwargs": dict(kwargs), "state_dict": sd, **meta}, path)


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a model saved by :func:`save_model`; returns ``(model in eval mode, checkpoint dict)``.

    Raises:
        CheckpointError: unreadable file or a checkpoint without a model spec.
    """
    ck = load(path, map_location)
    if "model" not in ck or "state_dict" not in ck:
        raise CheckpointError(f"{path}: no model spec in checkpoint (keys: {sorted(ck)})")
    model = models.build(ck["model"], **ck.get("kwargs", {}))
    model.load_state_dict(ck["state_dict"])
    return model.to(map_location).eval(), ck
