"""Model registry: shapes, the ESPCN residual start, one step that lowers the loss on real data."""

import re

import pytest
import torch

from huescale import models
from huescale.color import uint8_to_lab_normalized
from huescale.resize import imresize


@pytest.mark.parametrize("name,kwargs,inp,out", [
    ("unet", {"depth": 3, "base_channels": 16}, (2, 1, 64, 64), (2, 2, 64, 64)),
    ("unet", {"depth": 4, "base_channels": 8}, (1, 1, 32, 48), (1, 2, 32, 48)),
    ("espcn", {"scale": 4}, (2, 1, 16, 20), (2, 1, 64, 80)),
    ("patchgan", {"base_channels": 16}, (2, 3, 64, 64), (2, 1, 6, 6)),
])
def test_output_shapes(name, kwargs, inp, out):
    net = models.build(name, **kwargs).eval()
    with torch.no_grad():
        assert tuple(net(torch.randn(*inp)).shape) == out


def test_unknown_model_and_bad_kwargs_are_clear():
    with pytest.raises(ValueError, match="known models"):
        models.build("nope")
    with pytest.raises(ValueError, match="bad parameters"):
        models.build("unet", colour=3)
    with pytest.raises(ValueError, match="multiple of 8"):
        models.build("unet", depth=3)(torch.zeros(1, 1, 60, 60))


def test_every_model_cites_a_source_named_in_docs_sources():
    """Each registered model's first docstring line names a source document or paper of docs/sources.md."""
    from pathlib import Path

    sources = (Path(__file__).resolve().parents[1] / "docs" / "sources.md").read_text()
    names = set(re.findall(r"\*\*([^*]+)\*\*", sources)) | set(re.findall(r"^\| ([A-Z][^|]+?\d{4}[a-z]?) \|", sources, re.M))
    names |= {"Brescia et al.", "Singh et al.", "CIFAR-10 cGAN report"}
    for name, doc in models.available().items():
        assert any(n.strip() in doc for n in names), f"{name}: docstring {doc!r} cites no source of docs/sources.md"


def test_untrained_residual_espcn_equals_bicubic(real_batch):
    x = torch.from_numpy(real_batch[:4]).permute(0, 3, 1, 2)
    L, _ = uint8_to_lab_normalized(x)
    net = models.build("espcn", scale=4)
    with torch.no_grad():
        assert torch.allclose(net(L), imresize(L, (256, 256)), atol=1e-5)


@pytest.mark.parametrize("name,kwargs", [("unet", {"base_channels": 16}), ("espcn", {})])
def test_one_step_lowers_the_loss_on_a_real_batch(real_batch, name, kwargs):
    torch.manual_seed(0)
    x = torch.from_numpy(real_batch).permute(0, 3, 1, 2)
    L, ab = uint8_to_lab_normalized(x)
    if name == "espcn":
        inp, target = imresize(L, (16, 16)), L
    else:
        inp, target = L, ab
    net = models.build(name, **kwargs)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    losses = []
    for _ in range(4):
        loss = (net(inp) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    net.eval()
    with torch.no_grad():
        final = (net(inp) - target).abs().mean().item()
    assert final < losses[0], (losses, final)
