"""ONNX export of the colorizer and the upscaler, checked with onnxruntime against PyTorch.

``huescale export-onnx`` writes ``colorizer.onnx`` and ``upscaler.onnx``
(opset 18, the ``torch.onnx.export(dynamo=True)`` path of torch 2.x) with a
dynamic batch axis and dynamic spatial axes where the model allows them (the
U-Net needs multiples of ``2**depth``), runs both with onnxruntime on the
same inputs as PyTorch and reports the largest absolute difference.

The global residual of the upscalers (ESPCN, SRResNet with ``residual=True``) is
a MATLAB bicubic upscale (:mod:`huescale.resize`) built from size-dependent
dense matrices, which would freeze the spatial size of the graph. For export
the upscaler is called with ``bicubic=`` :class:`BicubicUpsample`, the same
resize written as a fixed convolution (one 2-D kernel per sub-pixel phase)
plus ``PixelShuffle``: equal to :func:`huescale.resize.imresize` up to float
rounding (tested), and size-independent. The onnxruntime check compares the
graph with the model as trained (its own forward, ``imresize`` included), not
with this export form.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from huescale.data.images import read_image
from huescale.inference.paths import iter_inputs
from huescale.inference.tiling import l_normalized
from huescale.resize import imresize, resize_matrix
from huescale.training import checkpoint

OPSET = 18


def bicubic_phase_taps(scale: int) -> tuple[np.ndarray, int]:
    """1-D taps of MATLAB's bicubic ``imresize`` for an integer upscale, one row per sub-pixel phase.

    Output pixel ``scale * i + p`` (0-based) of an upscale by ``scale`` is
    ``sum_j taps[p, j] * x[i + j - R]`` away from the borders (Keys cubic,
    a = -0.5, no antialiasing when upscaling; MATLAB ``imresize``).

    Args:
        scale: integer scale factor >= 1.

    Returns:
        ``(taps, R)``: float64 array ``scale x (2R + 1)`` whose rows sum to 1, and the radius R in
        input pixels.
    """
    n = 16 + 8 * scale  # long enough that the middle row is far from both borders
    mat = resize_matrix(n, n * scale, antialias=True)
    i = n // 2
    rows = mat[scale * i: scale * i + scale]  # phases 0..scale-1 of input pixel i
    nz = np.nonzero(np.abs(rows).sum(axis=0) > 0)[0]
    R = int(max(i - nz.min(), nz.max() - i))
    return rows[:, i - R: i + R + 1].copy(), R


class BicubicUpsample(nn.Module):
    """MATLAB bicubic upscale by an integer factor as conv + PixelShuffle (ONNX-exportable, any size).

    Symmetric border padding (edge pixel repeated), as MATLAB's ``imresize``
    and :func:`huescale.resize.imresize`; inputs must be at least ``R`` pixels
    (2 for x4) on each side.

    Input ``N x C x h x w`` float; output ``N x C x (scale*h) x (scale*w)``, same dtype.
    """

    def __init__(self, scale: int):
        super().__init__()
        taps, self.R = bicubic_phase_taps(scale)
        k = np.einsum("pi,qj->pqij", taps, taps).reshape(scale * scale, 1, 2 * self.R + 1, 2 * self.R + 1)
        self.register_buffer("weight", torch.tensor(k, dtype=torch.float32), persistent=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        R = self.R
        y = x.reshape(n * c, 1, h, w)
        y = torch.cat([y[..., :R, :].flip(-2), y, y[..., h - R:, :].flip(-2)], dim=-2)
        y = torch.cat([y[..., :R].flip(-1), y, y[..., w - R:].flip(-1)], dim=-1)
        y = torch.nn.functional.pixel_shuffle(torch.nn.functional.conv2d(y, self.weight.to(y.dtype)), self.scale)
        return y.reshape(n, c, h * self.scale, w * self.scale)


class ExportableUpscaler(nn.Module):
    """An upscaler whose MATLAB-bicubic residual (``residual=True`` of :mod:`huescale.models.upscalers`) is
    computed by :class:`BicubicUpsample` (passed as the upscaler's ``bicubic`` argument), so the exported graph
    keeps dynamic spatial axes; upscalers without a residual are exported unchanged.

    Same input/output as the wrapped upscaler: L ``N x 1 x h x w`` -> ``N x 1 x (s*h) x (s*w)``.

    Raises:
        ValueError: a residual upscaler whose ``forward`` takes no ``bicubic`` argument (its residual cannot be
            made size-independent; the message names its class).
    """

    def __init__(self, upscaler: nn.Module):
        super().__init__()

        self.net = copy.deepcopy(upscaler).eval()
        self.residual = bool(getattr(upscaler, "residual", False))
        if self.residual and "bicubic" not in inspect.signature(upscaler.forward).parameters:
            raise ValueError(f"{type(upscaler).__name__}: cannot export a residual upscaler whose forward takes no "
                             "`bicubic` argument (its bicubic upscale would freeze the graph's size); add one as "
                             "huescale.models.upscalers.ESPCN does")
        self.bicubic = BicubicUpsample(upscaler.scale) if self.residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.residual:
            return self.net(x, bicubic=self.bicubic)
        return self.net(x)


def size_multiple(model: nn.Module) -> int:
    """The number the input sides of a colorizer must be multiples of: ``2**depth`` (U-Net), ``2**n_blocks``
    (ResidualUNet, joint), ``2**n_down`` (encdec32), each halving the size that many times; 1 for a model
    without such an attribute (no downsampling, e.g. ``residual``)."""
    for attr in ("depth", "n_blocks", "n_down"):
        value = getattr(model, attr, None)
        if isinstance(value, int):
            return 2**value
    return 1


def _export(model: nn.Module, example: torch.Tensor, path: Path, in_name: str, out_name: str, multiple: int,
            min_side: int, dynamo: bool) -> None:
    """Export ``model`` to ``path`` atomically, batch and spatial axes dynamic (sides a multiple of ``multiple``)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.onnx")
    # the dynamo exporter prints its progress on stdout: keep stdout for the JSON report
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        if dynamo:
            from torch.export import Dim

            n = Dim("batch", min=1, max=4096)
            lo = max(1, -(-min_side // multiple))
            if multiple > 1:
                h, w = multiple * Dim("h_blocks", min=lo, max=4096), multiple * Dim("w_blocks", min=lo, max=4096)
            else:
                h, w = Dim("height", min=lo, max=65536), Dim("width", min=lo, max=65536)
            arg = next(iter(__import__("inspect").signature(model.forward).parameters))
            prog = torch.onnx.export(model, (example,), dynamo=True, opset_version=OPSET, input_names=[in_name],
                                     output_names=[out_name], dynamic_shapes={arg: {0: n, 2: h, 3: w}},
                                     verbose=False)
            prog.save(str(tmp))
        else:
            axes = {0: "batch", 2: "height", 3: "width"}
            torch.onnx.export(model, (example,), str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=[in_name], output_names=[out_name],
                              dynamic_axes={in_name: axes, out_name: axes})
    os.replace(tmp, path)


def _check_inputs(images: list[str] | None, model_size: int, max_side: int = 160,
                  ) -> tuple[torch.Tensor, list[torch.Tensor], str]:
    """Normalised L inputs for the check: a ``N x 1 x m x m`` batch for the colorizer and a list of
    ``1 x 1 x h x w`` L maps (aspect kept, long side <= ``max_side``) for the upscaler."""
    if not images:
        g = torch.Generator().manual_seed(0)
        lr = [torch.rand(1, 1, h, w, generator=g) * 2 - 1 for h, w in ((64, 64), (48, 80), (37, 29))]
        return torch.rand(4, 1, model_size, model_size, generator=g) * 2 - 1, lr, "random (pass --images)"
    files = iter_inputs(images)[:8]
    small, lr = [], []
    for f in files:
        L = l_normalized(read_image(f))
        h, w = L.shape[-2:]
        k = min(1.0, max_side / max(h, w))
        lr.append(imresize(L, (max(8, round(h * k)), max(8, round(w * k)))).clamp(-1, 1))
        small.append(imresize(L, (model_size, model_size)).clamp(-1, 1))
    return torch.cat(small), lr, f"{len(files)} photos: " + ", ".join(f.name for f in files)


def _ort_session(path: Path):
    import onnxruntime as ort  # lazy: onnxruntime, only to check an export

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def export_models(colorizer_ckpt: str | Path, upscaler_ckpt: str | Path | None, out_dir: str | Path,
                  images: list[str] | None = None, tolerance: float = 1e-4, model_size: int = 64,
                  dynamo: bool = True) -> dict[str, Any]:
    """Export the colorizer (and upscaler) checkpoints to ONNX and check them with onnxruntime.

    Args:
        colorizer_ckpt: colorizer checkpoint (:func:`huescale.training.checkpoint.save_model`, loaded with
            ``weights_only=True``).
        upscaler_ckpt: upscaler checkpoint, or None to export only the colorizer.
        out_dir: folder for ``colorizer.onnx`` and ``upscaler.onnx`` (written atomically).
        images: photos (files, folders, globs) for the check; None: seeded random L.
        tolerance: the largest max abs difference (normalised units, [-1, 1] range) accepted.
        model_size: colorizer input side for the check (its training size).
        dynamo: ``torch.onnx.export(dynamo=True)`` (default) or the TorchScript exporter.

    Returns:
        JSON-able dict: per model ``path``, ``exporter``, ``dynamic_axes``, ``max_abs_diff`` (onnxruntime vs
        the model as trained, PyTorch eager fp32), ``checked_shapes``, ``export_s``; plus ``tolerance``,
        ``check_inputs`` and ``ok`` (every diff <= tolerance).

    Raises:
        huescale.training.checkpoint.CheckpointError: a missing or unreadable checkpoint (names it).
        ValueError: a model the exporter cannot make size-independent (names its class).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    small, lr, described = _check_inputs(images, model_size)
    report: dict[str, Any] = {"tolerance": tolerance, "check_inputs": described, "opset": OPSET,
                              "torch": torch.__version__}
    specs = [("colorizer", colorizer_ckpt, "L", "ab")]
    if upscaler_ckpt is not None:
        specs.append(("upscaler", upscaler_ckpt, "L", "L_hr"))
    for name, ckpt, in_name, out_name in specs:
        report[name] = _export_one(name, ckpt, in_name, out_name, out, small, lr, model_size, dynamo)
    report["ok"] = all(report[n]["max_abs_diff"] <= tolerance for n, *_ in specs)
    return report


def _export_one(name: str, ckpt: str | Path, in_name: str, out_name: str, out: Path, small: torch.Tensor,
                lr: list[torch.Tensor], model_size: int, dynamo: bool) -> dict[str, Any]:
    """Export one checkpoint (``name``: ``colorizer`` or ``upscaler``) to ``out/<name>.onnx`` and run the check
    inputs through onnxruntime and PyTorch; returns its entry of :func:`export_models`' report.

    Raises:
        ValueError: a colorizer whose input side multiple does not divide ``model_size``.
        RuntimeError: onnxruntime's output shape differs from PyTorch's.
    """
    trained, ck = checkpoint.load_model(ckpt, "cpu")  # the check's reference: the model as trained
    if name == "upscaler":
        model = ExportableUpscaler(trained).eval()
        multiple, inputs = 1, lr + [torch.cat([lr[0], lr[0].flip(-1)])]  # + a batch of 2
        min_side = model.bicubic.R + 1 if model.bicubic is not None else 1
    else:
        model = trained
        multiple, inputs = size_multiple(model), [small]
        min_side = multiple
        if model_size % multiple:
            raise ValueError(f"{ckpt}: {ck['model']} needs input sides that are multiples of {multiple}; "
                             f"model_size={model_size} is not")
    path = out / f"{name}.onnx"
    t = time.perf_counter()
    example = inputs[0][:2]  # the check runs other batch sizes and shapes through the same graph
    _export(model, example, path, in_name, out_name, multiple, min_side, dynamo)
    export_s = time.perf_counter() - t
    sess = _ort_session(path)
    diff = 0.0
    with torch.no_grad():
        for x in inputs:
            ref = trained(x).numpy()
            got = sess.run(None, {in_name: x.numpy()})[0]
            if got.shape != ref.shape:
                raise RuntimeError(f"{path}: onnxruntime output {got.shape} != PyTorch {ref.shape}")
            diff = max(diff, float(np.abs(got - ref).max()))
    return {"checkpoint": str(ckpt), "model": ck["model"], "path": str(path),
            "exporter": "dynamo" if dynamo else "torchscript",
            "dynamic_axes": {"batch": True, "height": f"multiple of {multiple}" if multiple > 1 else True,
                             "width": f"multiple of {multiple}" if multiple > 1 else True},
            "max_abs_diff": diff, "exported_with": "x".join(map(str, example.shape)),
            "checked_shapes": ["x".join(map(str, x.shape)) for x in inputs],
            "export_s": round(export_s, 2)}


def two_step_for_export(colorizer: nn.Module, upscaler: nn.Module) -> nn.Module:
    """The two-step pipeline (:class:`huescale.models.pipelines.TwoStepPipeline`) in exportable form.

    ``forward(L)``: normalised L ``N x 1 x h x w`` -> Lab ``N x 3 x (s*h) x (s*w)`` (L_hr ++ ab_hr,
    normalised, clamped to [-1, 1]); ab upscaled with :class:`BicubicUpsample` (= MATLAB bicubic).
    """
    return _TwoStep(colorizer, ExportableUpscaler(upscaler))


class _TwoStep(nn.Module):
    def __init__(self, colorizer: nn.Module, upscaler: ExportableUpscaler):
        super().__init__()
        self.colorizer, self.upscaler = colorizer, upscaler
        self.bicubic = BicubicUpsample(upscaler.net.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.upscaler(x).clamp(-1, 1), self.bicubic(self.colorizer(x)).clamp(-1, 1)], dim=1)
