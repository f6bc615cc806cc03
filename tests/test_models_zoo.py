"""The models of the source documents (Brescia et al., the CIFAR-10 cGAN report, Singh et al., Frison et al. 2025): shapes, ranges, registry, one step on real photos."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from huescale import models
from huescale.color import uint8_to_lab_normalized
from huescale.models.pipelines import JointPipeline, TwoStepPipeline
from huescale.resize import imresize

SMALL = {
    "resunet": {"base_channels": 8, "n_blocks": 6},
    "residual": {"features": 16, "n_blocks": 3},
    "encdec32": {"base_channels": 8},
    "joint": {"base_channels": 8, "n_blocks": 4, "n_up_blocks": 2},
    "srresnet": {"features": 16, "n_blocks": 2},
    "srgan": {"base_channels": 8, "dense": 64},
    "dense128": {"base_channels": 8, "image_size": 64},
}


@pytest.fixture(scope="module")
def lab(real_batch):
    """Normalised (L, ab) of the 16 real 64 px photos."""
    return uint8_to_lab_normalized(torch.from_numpy(real_batch).permute(0, 3, 1, 2))


@pytest.mark.parametrize("name,kwargs,inp,out", [
    ("resunet", SMALL["resunet"], (2, 1, 64, 64), (2, 2, 64, 64)),
    ("resunet", {**SMALL["resunet"], "upsample": True, "n_up_blocks": 2}, (2, 1, 64, 64), (2, 2, 256, 256)),
    ("resunet", {"base_channels": 8, "n_blocks": 4}, (2, 1, 32, 48), (2, 2, 32, 48)),
    ("residual", SMALL["residual"], (2, 1, 40, 56), (2, 2, 40, 56)),
    ("encdec32", SMALL["encdec32"], (2, 1, 32, 32), (2, 2, 32, 32)),
    ("encdec32", SMALL["encdec32"], (2, 1, 64, 64), (2, 2, 64, 64)),
    ("encdec32", {**SMALL["encdec32"], "n_down": 5}, (2, 1, 64, 64), (2, 2, 64, 64)),
    ("joint", SMALL["joint"], (2, 1, 64, 64), (2, 3, 256, 256)),
    ("srresnet", SMALL["srresnet"], (2, 1, 16, 20), (2, 1, 64, 80)),
    ("srgan", SMALL["srgan"], (2, 1, 256, 256), (2, 1)),
    ("srgan", {**SMALL["srgan"], "in_channels": 4}, (2, 4, 64, 64), (2, 1)),
    ("dense128", SMALL["dense128"], (2, 3, 64, 64), (2, 1)),
    ("dense128", {"base_channels": 8}, (2, 3, 32, 32), (2, 1)),
])
def test_shapes_and_generator_ranges(name, kwargs, inp, out):
    torch.manual_seed(0)
    net = models.build(name, **kwargs).eval()
    with torch.no_grad():
        y = net(torch.rand(*inp) * 2 - 1)
    assert tuple(y.shape) == out and torch.isfinite(y).all()
    if name not in ("srgan", "dense128"):  # generators: normalised L / ab / Lab
        assert y.min() >= -1 and y.max() <= 1


def test_every_model_is_registered_and_cites_its_source_document():
    docs = models.available()
    for name, source in (("resunet", "Singh et al."), ("residual", "Singh et al."),
                         ("encdec32", "CIFAR-10 cGAN report"), ("joint", "Frison et al. 2025"),
                         ("srresnet", "Brescia et al."), ("srgan", "Brescia et al."),
                         ("dense128", "CIFAR-10 cGAN report")):
        assert source in docs[name], name


def test_encoder_decoder_reaches_2x2x512_at_32_px():
    net = models.build("encdec32").eval()
    x = net.stem(torch.zeros(2, 1, 32, 32))
    for block in net.down:
        x = block(x)
    assert tuple(x.shape[1:]) == (512, 2, 2)
    with pytest.raises(ValueError, match="multiple of 16"):
        net(torch.zeros(1, 1, 40, 40))


def test_size_errors_are_clear():
    with pytest.raises(ValueError, match="multiple of 64"):
        models.build("resunet", base_channels=4)(torch.zeros(2, 1, 48, 48))
    with pytest.raises(ValueError, match="image_size"):
        models.build("dense128", base_channels=4)(torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match="N x 1 x h x w"):
        models.build("joint", base_channels=4, n_blocks=2).eval()(torch.zeros(1, 3, 16, 16))


def test_joint_contract_and_pipeline(lab):
    """Registry name joint: normalised L N x 1 x h x w -> N x 3 x 4h x 4w Lab in [-1, 1], scale = 4;
    JointPipeline returns (L_hr, ab_hr) like TwoStepPipeline; untrained, its L is bicubic(L)."""
    L = lab[0][:4]
    gen = models.build("joint", **SMALL["joint"]).eval()
    assert gen.scale == 4
    with torch.no_grad():
        out = gen(L)
        L_hr, ab_hr = JointPipeline(gen)(L)
        L2, ab2 = TwoStepPipeline(None, None)(L)
    assert out.shape == (4, 3, 256, 256) and L_hr.shape == L2.shape and ab_hr.shape == ab2.shape
    assert torch.equal(L_hr, out[:, :1]) and torch.equal(ab_hr, out[:, 1:])
    bicubic = F.interpolate(L, size=(256, 256), mode="bicubic", align_corners=False).clamp(-1, 1)
    assert torch.allclose(L_hr, bicubic, atol=1e-5)


def test_srresnet_output_is_normalised_l():
    net = models.build("srresnet", **SMALL["srresnet"])
    with torch.no_grad():
        net.out.bias.fill_(-100.0)  # sigmoid -> 0: L = 0, normalised -1
        assert torch.allclose(net(torch.zeros(1, 1, 8, 8)), torch.full((1, 1, 32, 32), -1.0))


def test_residual_srresnet_starts_at_bicubic(lab):
    L = imresize(lab[0][:2], (16, 16))
    net = models.build("srresnet", **SMALL["srresnet"], residual=True).eval()
    with torch.no_grad():
        assert torch.allclose(net(L), imresize(L, (64, 64)).clamp(-0.999, 0.999), atol=1e-4)


def _steps(net, inp, target, n=5, lr=1e-3):
    opt = torch.optim.Adam(net.parameters(), lr)
    first = None
    for _ in range(n):
        loss = (net(inp) - target).abs().mean()
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
        opt.step()
    net.eval()
    with torch.no_grad():
        return first, (net(inp) - target).abs().mean().item()


@pytest.mark.parametrize("name", ["resunet", "residual", "encdec32", "joint", "srresnet"])
def test_training_steps_lower_the_l1_on_a_real_batch(lab, name):
    torch.manual_seed(0)
    L, ab = lab
    if name == "srresnet":
        inp, target = imresize(L, (16, 16)), L
    elif name == "joint":  # 16 px gray -> 64 px Lab
        inp, target = imresize(L, (16, 16)), torch.cat([L, ab], 1)
    else:
        inp, target = L, ab
    kwargs = {**SMALL[name], "n_blocks": 2} if name == "joint" else SMALL[name]
    first, final = _steps(models.build(name, **kwargs), inp, target)
    assert final < first, (name, first, final)


@pytest.mark.parametrize("name", ["srgan", "dense128", "patchgan"])
def test_discriminator_step_lowers_its_loss_on_real_vs_gray(lab, name):
    """D learns to tell real colour (L ++ ab) from the gray guess (L ++ 0) on real photos."""
    from huescale.training.gan_loss import GANLoss

    torch.manual_seed(0)
    L, ab = lab
    real, fake = torch.cat([L, ab], 1), torch.cat([L, torch.zeros_like(ab)], 1)
    kwargs = {"base_channels": 8} if name == "patchgan" else {**SMALL[name], "in_channels": 3}
    D = models.build(name, **kwargs)
    crit = GANLoss("vanilla")
    opt = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
    losses = []
    for _ in range(6):
        loss = 0.5 * (crit(D(real), True) + crit(D(fake), False))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses
