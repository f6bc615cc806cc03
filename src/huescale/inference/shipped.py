"""The model that ships with the package, so ``huescale colorize photo.jpg --out out.png`` works right after install.

Package data under ``huescale/assets/``: ``colorizer.pt`` and ``upscaler.pt`` (the long CPU profile's
champion, weights stored as float16 to stay small; loaded back into float32 modules) and ``MODEL_CARD.md``
(training data, params, git commit, held-out metrics, how to retrain it). :func:`ship` writes them from a
run's checkpoints; :func:`load` reads them with ``torch.load(weights_only=True)`` through
:mod:`huescale.training.checkpoint`.
"""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from huescale.atomic import write_json, write_text
from huescale.config_io import load_config
from huescale.evaluation.tables import markdown_table
from huescale.training import checkpoint, recipe

ASSETS = "assets"
FILES = ("colorizer.pt", "upscaler.pt")
MAX_BYTES = 25 * 2**20  # both weight files together (issue 24: a pretrained-encoder colorizer, fp16, <= 25 MB)


def assets_dir() -> Path:
    """The installed package's ``assets`` folder (inside the wheel or the source checkout)."""
    return Path(str(resources.files("huescale") / ASSETS))


def available() -> bool:
    """Whether the shipped colorizer and upscaler are installed."""
    return all((assets_dir() / f).is_file() for f in FILES)


def load(device: torch.device | str = "cpu") -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """The shipped ``(colorizer, upscaler, card)``: float32 modules in eval mode and the card's metadata
    (``MODEL_CARD.json``).

    Raises:
        FileNotFoundError: the package was installed without its assets (names the folder and what to do).
    """
    folder = assets_dir()
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: the shipped model ({', '.join(missing)}) is not installed; "
                                "reinstall huescale, or pass --checkpoint/--upscaler (or --model champion)")
    colorizer, _ = checkpoint.load_model(folder / FILES[0], device)
    upscaler, _ = checkpoint.load_model(folder / FILES[1], device)
    card_path = folder / "MODEL_CARD.json"
    card = json.loads(card_path.read_text()) if card_path.is_file() else {}
    return colorizer.float(), upscaler.float(), card


def half_copy(src: str | Path, dst: str | Path, **meta: Any) -> int:
    """Write checkpoint ``src`` to ``dst`` with its floating-point tensors as float16 (integer buffers kept);
    returns the file size in bytes. ``meta`` is added to the checkpoint dict.

    Raises:
        huescale.training.checkpoint.CheckpointError: ``src`` is unreadable or not a model checkpoint.
    """
    ck = checkpoint.load(src)
    if "state_dict" not in ck:
        raise checkpoint.CheckpointError(f"{src}: not a model checkpoint (no state_dict)")
    sd = {k: v.half() if v.is_floating_point() else v for k, v in ck["state_dict"].items()}
    checkpoint.save_atomic({**ck, "state_dict": sd, "dtype": "float16", **meta}, dst)
    return Path(dst).stat().st_size


def ship(colorizer: str | Path, upscaler: str | Path, card: dict[str, Any], out: str | Path | None = None) -> dict:
    """Write the shipped model: fp16 copies of the two checkpoints and the model card (JSON + Markdown).

    Args:
        colorizer, upscaler: checkpoints of :func:`huescale.training.checkpoint.save_model`.
        card: what the card says: ``data``, ``params`` (flat), ``git_commit``, ``holdout`` metrics, ``retrain``.
        out: the assets folder (default: this package's).

    Returns:
        ``{"bytes": total size, "files": [...]}``.

    Raises:
        ValueError: the two files exceed :data:`MAX_BYTES` (25 MB) together (a model that large does not ship in
            the wheel).
    """
    out = Path(out) if out is not None else assets_dir()
    sizes = [half_copy(src, out / name, shipped=True) for src, name in zip((colorizer, upscaler), FILES)]
    if sum(sizes) > MAX_BYTES:
        for name in FILES:
            (out / name).unlink(missing_ok=True)
        raise ValueError(f"the shipped model would take {sum(sizes) / 2**20:.1f} MB "
                         f"(limit {MAX_BYTES / 2**20:.0f} MB); ship a smaller one")
    write_json(card, out / "MODEL_CARD.json")
    write_text(model_card_markdown(card), out / "MODEL_CARD.md")
    return {"bytes": sum(sizes), "files": [str(out / f) for f in (*FILES, "MODEL_CARD.md", "MODEL_CARD.json")]}


def model_card_markdown(card: dict[str, Any]) -> str:
    """The human-readable model card of :func:`ship` (Markdown)."""
    lines = ["# huescale shipped model", "", card.get("summary", ""), "",
             f"- git commit: `{card.get('git_commit', '?')}`",
             f"- trained on: {card.get('data', '?')}",
             f"- colorizer: `{card.get('colorizer', '?')}`; upscaler: `{card.get('upscaler', '?')}`",
             *([f"- checkpoints: `{ck['colorizer']}`, `{ck['upscaler']}` (the held-out figures below are theirs)"]
               if (ck := card.get("checkpoints")) else []),
             f"- training: {card.get('training', '?')}", "",
             "## Held-out photographs (never used in training)", ""]
    rows = []
    for name, sections in (card.get("holdout") or {}).items():
        for section, size, base in (("colorization_64", 64, "gray_baseline"), ("two_step_256", 256,
                                                                               "gray_bicubic_baseline")):
            if sections.get(section):
                m, g = sections[section]["model"], sections[section][base]
                rows.append(([name, f"{size} px"], {**m, "gray_delta_e2000": g.get("delta_e2000")}))
    lines.append(markdown_table(["set", "size"], rows, extra=(("gray_delta_e2000", "gray's ΔE2000", 2),)))
    lines += ["", "## Retrain it", "", "```bash", card.get("retrain", ""), "```", "",
              "Weights are stored as float16 and loaded as float32 (`huescale.inference.shipped.load`).", ""]
    return "\n".join(lines)


def card_from_run(project: str | Path = ".", retrain: str = "huescale profile offline && dvc repro",
                  holdout: dict[str, Any] | None = None, checkpoints: dict[str, str] | None = None) -> dict[str, Any]:
    """A model card from a finished ``dvc repro`` in ``project``: its params, git commit, data and held-out metrics.

    ``holdout``: the shipped checkpoints' own held-out metrics (``{set: {"colorization_64": {"model": ...,
    "gray_baseline": ...}, "two_step_256": {...}}}``, what ``huescale ship`` scores); None: ``metrics.json``'s
    ``holdout`` section (evaluate's figures, which are ``models/colorizer.pt``'s). ``checkpoints``: the shipped
    files (``{"colorizer": path, "upscaler": path}``), named on the card.

    Raises:
        FileNotFoundError: ``metrics.json`` or ``params.yaml`` is missing (run ``dvc repro`` first).
    """
    root = Path(project)
    for f in ("metrics.json", "params.yaml"):
        if not (root / f).is_file():
            raise FileNotFoundError(f"{root / f}: not found; ship from a project where `dvc repro` has finished")
    cfg = load_config(root / "params.yaml")
    metrics = json.loads((root / "metrics.json").read_text())
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    m, p, ft = cfg.model, cfg.pretrain.colorizer, cfg.pretrain.finetune
    finetuned = recipe.finetunes(cfg, "colorizer")
    holdout = holdout if holdout is not None else metrics.get("holdout") or {}
    return {"summary": f"{m.colorizer.name} colorizer + {m.upscaler.name} x4 upscaler of L, trained by "
                       f"`{retrain}`; held out: {', '.join(holdout) or 'none'}",
            "git_commit": commit or "unknown",
            "data": f"{cfg.data.source} {cfg.data.folders or ''} ({cfg.data.n_images} photographs at most, "
                    f"splits {cfg.data.splits})",
            "colorizer": f"{m.colorizer.name} {m.colorizer.kwargs}",
            "upscaler": f"{m.upscaler.name} {m.upscaler.kwargs}",
            "training": f"pretrain {p.epochs} epochs, losses {p.losses}, lr {p.lr} ({p.lr_schedule})"
                        + (f"; fine-tuning of the whole network {ft.epochs} epoch(s), losses {ft.losses}, "
                           f"lr {ft.lr}, encoder x{ft.encoder_lr_scale}" if finetuned else "")
                        + f" (-> models/colorizer_pretrained.pt); adversarial {cfg.train.epochs} epoch(s), losses "
                          f"{cfg.train.losses} (-> models/colorizer.pt)",
            "holdout": holdout, "retrain": retrain, **({"checkpoints": checkpoints} if checkpoints else {})}
