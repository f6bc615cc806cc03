"""ONNX export of every registered colorizer and upscaler, checked against the module as trained (issue 13, item 11).

Each model (tiny widths, seeded weights; zero-initialised last layers re-drawn so every branch matters) is saved
as a checkpoint, exported with ``huescale.inference.export.export_models`` on real photographs, then run here with
onnxruntime on other real photographs and sizes and compared with the original ``nn.Module``'s forward (not the
export wrapper): an exported graph that differs from what was trained fails here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from huescale import models
from huescale.data.images import read_image
from huescale.inference.tiling import l_normalized
from huescale.models.registry import _REGISTRY
from huescale.resize import imresize
from huescale.training import checkpoint

pytestmark = pytest.mark.timeout(1200)

COLORIZERS = {  # tiny kwargs of every registered colorizer (and the joint generator, 64 L -> 256 Lab)
    "unet": {"depth": 2, "base_channels": 4},
    "resunet": {"base_channels": 4, "n_blocks": 3},
    "residual": {"features": 4, "n_blocks": 1},
    "encdec32": {"base_channels": 4, "n_down": 3},
    "joint": {"base_channels": 4, "n_blocks": 2, "n_up_blocks": 1},
    "colornet": {"depth": 4, "base_channels": 4, "convs": 1, "max_channels": 16, "global_dim": 8},
    "semantic": {"size": 64, "decoder_channels": [8, 8, 8, 8], "convs": 1, "global_dim": 8, "weights": "none"},
}
UPSCALERS = {  # (name, kwargs): with and without the global bicubic residual
    "espcn": {"scale": 4, "features": 8, "residual": True},
    "espcn-plain": {"scale": 4, "features": 8, "residual": False},
    "srresnet": {"scale": 4, "features": 8, "n_blocks": 1, "residual": False},
    "srresnet-residual": {"scale": 4, "features": 8, "n_blocks": 1, "residual": True},
}


def _kind(name: str) -> str:
    return _REGISTRY[name].__module__.rsplit(".", 1)[-1]


def test_every_registered_generator_is_covered():
    names = {n for n in models.available() if _kind(n) != "discriminators"}
    assert names == set(COLORIZERS) | {k.split("-")[0] for k in UPSCALERS}, "add the new model to this test"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _save(name: str, kwargs: dict, path) -> torch.nn.Module:
    """A seeded model with every zero-initialised output layer re-drawn and BatchNorm statistics that are not the
    identity, saved with save_model; returns the module as it was saved (eval mode)."""
    torch.manual_seed(0)
    net = models.build(name, **kwargs)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.Conv2d) and not mod.weight.any():
                torch.nn.init.normal_(mod.weight, std=0.05)
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    checkpoint.save_model(net, name, kwargs, path)
    return net.eval()


def _photos(shared_data, n: int = 3) -> list:
    return sorted((shared_data / "benchmarks" / "Set14" / "GTmod12").glob("*.png"))[:n]


def _L(photo, size: tuple[int, int]) -> torch.Tensor:
    return imresize(l_normalized(read_image(photo)), size).clamp(-1, 1)


def _ort(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _compare(sess, module: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        ref = module(x).numpy()
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == ref.shape
    return float(np.abs(got - ref).max() / max(1.0, float(np.abs(ref).max())))


@pytest.mark.parametrize("name", sorted(COLORIZERS))
def test_colorizer_onnx_equals_the_trained_module_on_real_photos(name, shared_data, tmp_path):
    from huescale.inference.export import export_models

    module = _save(name, COLORIZERS[name], tmp_path / "c.pt")
    photos = _photos(shared_data)
    report = export_models(tmp_path / "c.pt", None, tmp_path / "onnx", images=[str(p) for p in photos])
    assert report["ok"] and report["colorizer"]["max_abs_diff"] <= 1e-4, report
    # 2**(downsamplings); semantic resizes L to its encoder's size inside, so any (even) size
    multiple = {"unet": 4, "resunet": 8, "encdec32": 8, "joint": 4, "residual": 1, "colornet": 16, "semantic": 1}[name]
    assert report["colorizer"]["dynamic_axes"]["height"] == (f"multiple of {multiple}" if multiple > 1 else True)
    sess = _ort(tmp_path / "onnx" / "colorizer.onnx")
    for size, batch in (((64, 64), photos), ((96, 128), photos[:1])):  # batch and size other than the export's
        x = torch.cat([_L(p, size) for p in batch])
        assert _compare(sess, module, x) <= 1e-4, (name, size)


@pytest.mark.parametrize("key", sorted(UPSCALERS))
def test_upscaler_onnx_equals_the_trained_module_on_real_photos(key, shared_data, tmp_path):
    from huescale.inference.export import export_models

    name = key.split("-")[0]
    _save("unet", COLORIZERS["unet"], tmp_path / "c.pt")
    module = _save(name, UPSCALERS[key], tmp_path / "u.pt")
    photos = _photos(shared_data)
    report = export_models(tmp_path / "c.pt", tmp_path / "u.pt", tmp_path / "onnx",
                           images=[str(p) for p in photos])
    assert report["ok"] and report["upscaler"]["max_abs_diff"] <= 1e-4, report
    sess = _ort(tmp_path / "onnx" / "upscaler.onnx")
    for size in ((37, 29), (48, 80), (64, 64)):
        for p in photos:
            assert _compare(sess, module, _L(p, size)) <= 1e-4, (key, size, p.name)
    x = torch.cat([_L(p, (40, 56)) for p in photos])  # a batch of 3
    assert _compare(sess, module, x) <= 1e-4


def test_a_model_the_exporter_does_not_know_is_refused_by_name(tmp_path):
    """An upscaler with a residual the exporter cannot rewrite is refused with a message naming it."""
    from huescale.inference.export import ExportableUpscaler

    class Odd(torch.nn.Module):
        scale, residual = 4, True

        def __init__(self):
            super().__init__()
            self.body = torch.nn.Conv2d(1, 16, 3, padding=1)

        def forward(self, x):
            return torch.nn.functional.pixel_shuffle(self.body(x), 4)

    with pytest.raises(ValueError, match="Odd"):
        ExportableUpscaler(Odd())
