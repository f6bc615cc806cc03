"""Pick a colorizer's decoding on validation photographs: colour where it is believable, not a uniform tint.

A classification colorizer (``colornet``: Zhang, Isola & Efros 2016) can turn its per-pixel colour
distribution into one ab in many ways: the annealed mean at a temperature T (T = 1: the mean, washed out;
towards 0: the mode, vivid but noisy), its regression head scaled by a gain, or a blend. The right point
trades colourfulness (Hasler & Suesstrunk 2003) against colour error (CIEDE2000), and it depends on the
trained weights, so it is chosen after training on data training did not fit: the validation split.

The rule (``calibrate`` params): among the candidates whose colourfulness is between ``min_colourfulness``
and ``max_colourfulness`` x the photographs', the lowest mean CIEDE2000; if none is, the most colourful one
under the ceiling. The ceiling keeps out garish decodings, e.g. the output of a head the phase did not train
(a regression head with ``reg_l1: 0`` is random and very colourful). The choice is written into the model's
decoding buffers, so the checkpoint carries it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from huescale import metrics, tracking
from huescale.color import uint8_to_lab_normalized
from huescale.models.pipelines import lab_to_uint8
from huescale.training import checkpoint

# (mode, T, gain, alpha): Zhang et al.'s T = 0.38 and the neighbourhood the screening runs spanned, regression
# gains in steps of 0.1 where the default model's colourfulness crosses 0.75-0.9 x, and blends of the two heads
# (a quarter or half annealed mean), amplified: on the default model they lie on a better colourfulness /
# CIEDE2000 frontier than either head alone (docs/colour.md, "Decoding")
CANDIDATES: tuple[tuple[str, float, float, float], ...] = (
    *(("annealed", t, 1.0, 1.0) for t in (1.0, 0.6, 0.45, 0.38, 0.3, 0.22, 0.15)),
    *(("regression", 1.0, g, 0.0) for g in (1.0, 1.5, 1.7, 1.8, 1.9, 2.0, 2.5)),
    *(("blend", t, 1.0, 0.5) for t in (0.38, 0.22)),
    *(("blend", 0.22, g, 0.25) for g in (1.2, 1.4, 1.6)),
    ("blend", 0.22, 1.2, 0.5),
)


def candidate_name(mode: str, T: float, gain: float, alpha: float) -> str:
    """A short label, e.g. ``annealed_T0.38``, ``regression_x2``, ``blend0.5_T0.22``, ``blend0.5_T0.22_x1.4``."""
    if mode == "regression":
        return f"regression_x{gain:g}"
    label = f"annealed_T{T:g}" if mode == "annealed" else f"blend{alpha:g}_T{T:g}"
    return label if gain == 1 else f"{label}_x{gain:g}"


@torch.no_grad()
def score_candidates(model: Any, images: np.ndarray, device: torch.device | str = "cpu",
                     batch_size: int = 64, candidates: tuple = CANDIDATES) -> dict[str, dict]:
    """Every decoding of ``candidates`` (default :data:`CANDIDATES`) on ``images``.

    Args:
        model: a colorizer with ``heads(L)`` and ``decode(aux, mode, T, gain, alpha)`` (``colornet``).
        images: ``N x H x W x 3`` uint8 sRGB photographs (their L is the input; they are the truth).
        device: where the model runs.
        batch_size: images per forward pass (the heads run once per batch for all candidates).
        candidates: ``(mode, T, gain, alpha)`` tuples (e.g. to study decodings outside the rule's set).

    Returns:
        label -> ``{"mode", "T", "gain", "alpha", "colourfulness_ratio", "delta_e2000"}`` (ratio to the
        photographs' colourfulness; mean CIEDE2000 per image, Lab units), plus ``"gray"`` (ab = 0).
    """
    model.eval()
    outs: dict[str, list[np.ndarray]] = {candidate_name(*c): [] for c in candidates}
    outs["gray"] = []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[i:i + batch_size])).permute(0, 3, 1, 2).to(device)
        L, _ = uint8_to_lab_normalized(x)
        aux = model.heads(L)
        for c in candidates:
            ab = model.decode(aux, *c)
            outs[candidate_name(*c)].append(lab_to_uint8(L, ab).permute(0, 2, 3, 1).cpu().numpy())
        outs["gray"].append(lab_to_uint8(L, torch.zeros_like(L).repeat(1, 2, 1, 1)).permute(0, 2, 3, 1).cpu().numpy())
    truth_cf = metrics.colorfulness(images)
    table: dict[str, dict] = {}
    for c in (*candidates, ("gray", 0.0, 0.0, 0.0)):
        label = "gray" if c[0] == "gray" else candidate_name(*c)
        pred = np.concatenate(outs[label])
        table[label] = {"mode": c[0], "T": c[1], "gain": c[2], "alpha": c[3],
                        "colourfulness_ratio": metrics.colorfulness(pred) / max(truth_cf, 1e-9),
                        "delta_e2000": metrics.delta_e2000(pred, images)}
    return table


def choose(table: dict[str, dict], min_colourfulness: float, max_colourfulness: float = 1.25) -> str:
    """The label chosen by the rule of this module's docstring (``gray`` is never chosen; if every candidate is
    above the ceiling, the least colourful one)."""
    rows = {k: v for k, v in table.items() if k != "gray"}
    under = {k: v for k, v in rows.items() if v["colourfulness_ratio"] <= max_colourfulness}
    if not under:
        return min(rows, key=lambda k: rows[k]["colourfulness_ratio"])
    ok = [k for k, v in under.items() if v["colourfulness_ratio"] >= min_colourfulness]
    if ok:
        return min(ok, key=lambda k: under[k]["delta_e2000"])
    return max(under, key=lambda k: under[k]["colourfulness_ratio"])


def calibrate_checkpoint(path: str | Path, images: np.ndarray, min_colourfulness: float,
                         device: torch.device | str = "cpu", max_colourfulness: float = 1.25) -> dict | None:
    """Choose the decoding of the colorizer saved at ``path`` on ``images`` and save it back (atomically).

    Args:
        path: a checkpoint of :func:`huescale.training.checkpoint.save_model`.
        images: ``N x H x W x 3`` uint8 validation photographs.
        min_colourfulness, max_colourfulness: the rule's floor and ceiling (``calibrate.*``).
        device: where the model runs.

    Returns:
        ``{"chosen": label, "table": ...}``, or None for a model with a single decoding (nothing to choose).

    Raises:
        huescale.training.checkpoint.CheckpointError: the checkpoint is missing or unreadable.
        ValueError: no images.
    """
    if len(images) == 0:
        raise ValueError(f"{path}: no validation images to calibrate the decoding on")
    model: Any
    model, ck = checkpoint.load_model(path, device)
    if not hasattr(model, "set_decoding"):
        return None
    table = score_candidates(model, images, device)
    chosen = choose(table, min_colourfulness, max_colourfulness)
    row = table[chosen]
    model.set_decoding(row["mode"], T=row["T"], gain=row["gain"], alpha=row["alpha"])
    meta = {k: v for k, v in ck.items() if k not in ("model", "kwargs", "state_dict")}
    checkpoint.save_model(model, ck["model"], ck.get("kwargs", {}), path,
                          **{**meta, "decoding": {"chosen": chosen, "min_colourfulness": min_colourfulness,
                                                  "max_colourfulness": max_colourfulness,
                                                  "images": len(images), "table": table}})
    return {"chosen": chosen, "table": table}


def calibrate_phase(cfg, best_path: str | Path, store, name: str, device: torch.device | str = "cpu") -> dict:
    """Calibrate a training phase's best colorizer on the validation split and record the choice.

    Args:
        cfg: the :class:`huescale.config.Config` (``calibrate`` section).
        best_path: the phase's best checkpoint (rewritten with the chosen decoding).
        store: the :class:`huescale.data.store.PairStore` whose ``val`` split (tier 64) is used.
        name: the phase's name (``pretrain_colorizer``, ``train``): MLflow tag ``decoding.<name>`` and the
            returned figures' prefix.
        device: where the model runs.

    Returns:
        ``{<name>_decode_T, _decode_gain, _decode_alpha, _decode_colourfulness_ratio, _decode_delta_e2000,
        _gray_delta_e2000}`` (empty for a model with one decoding).
    """
    images = store.images("val", "gt64")[: cfg.calibrate.images]
    res = calibrate_checkpoint(best_path, images, cfg.calibrate.min_colourfulness, device,
                               cfg.calibrate.max_colourfulness)
    if res is None:
        return {}
    row, gray = res["table"][res["chosen"]], res["table"]["gray"]
    tracking.set_tags({f"decoding.{name}": res["chosen"]})
    out = {f"{name}_decode_T": row["T"], f"{name}_decode_gain": row["gain"], f"{name}_decode_alpha": row["alpha"],
           f"{name}_decode_colourfulness_ratio": row["colourfulness_ratio"],
           f"{name}_decode_delta_e2000": row["delta_e2000"], f"{name}_gray_delta_e2000": gray["delta_e2000"]}
    tracking.log_metrics({k[len(name) + 1:]: v for k, v in out.items()}, prefix=f"{name}/")
    return out
