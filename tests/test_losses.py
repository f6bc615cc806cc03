"""Losses: VGG content (random weights in a temp cache), cosine distance, RGB gradients through kornia."""

from __future__ import annotations

import pytest
import torch

from huescale import models
from huescale.color import lab_normalized_to_rgb, uint8_to_lab_normalized
from huescale.losses import GeneratorObjective, VGGContentLoss, cosine_distance
from huescale.train import colorization_task, joint_task, upscaling_task


@pytest.fixture
def torch_home(vgg_home, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(vgg_home))
    return vgg_home


def small(real_batch, n: int = 4, size: int = 32) -> torch.Tensor:
    """``n`` real photos as ``n x 3 x size x size`` uint8 (MATLAB bicubic): VGG on CPU stays fast."""
    from huescale.resize import imresize

    hr = torch.from_numpy(real_batch[:n]).permute(0, 3, 1, 2)
    return imresize(hr.float(), (size, size)).round().clamp(0, 255).byte()


@pytest.fixture(scope="module")
def lab(real_batch):
    return uint8_to_lab_normalized(small(real_batch))


def test_missing_vgg_weights_fail_at_start_up_naming_the_file(tmp_path, monkeypatch):
    from huescale.train import PhaseConfig, Trainer

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        VGGContentLoss("vgg16_conv7")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        VGGContentLoss("vgg19", tmp_path / "nope.pth")
    cfg = PhaseConfig(epochs=1, batch_size=4, lr=1e-3, betas=(0.9, 0.999), content_loss="vgg19", lambda_content=1.0)
    with pytest.raises(FileNotFoundError, match="vgg19-dcbb9e9d.pth"):  # when the Trainer is built, before any step
        Trainer(models.build("unet", base_channels=4), colorization_task, cfg, tmp_path / "s.pt", tmp_path / "b.pt",
                ("unet", {}))
    with pytest.raises(ValueError, match="unknown content loss"):
        GeneratorObjective(content="vgg11", lambda_content=1.0)


def test_wrong_weights_file_is_named(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="bad.pth"):
        VGGContentLoss("vgg16_conv13", bad)


@pytest.mark.parametrize("name", ["vgg16_conv7", "vgg16_conv13", "vgg19"])
def test_content_loss_is_zero_on_itself_positive_otherwise_and_frozen(torch_home, lab, name):
    L, ab = lab
    loss = VGGContentLoss(name).train()
    assert not loss.features.training and not any(p.requires_grad for p in loss.parameters())
    real = lab_normalized_to_rgb(L, ab)
    gray = lab_normalized_to_rgb(L, torch.zeros_like(ab))
    assert loss(real, real).item() == 0.0
    assert loss(gray, real).item() > 0.0


@pytest.mark.parametrize("task,name,kwargs,content", [
    (colorization_task, "unet", {"base_channels": 8}, "vgg16_conv7"),
    (joint_task, "joint", {"base_channels": 8, "n_blocks": 2, "n_up_blocks": 1}, "vgg16_conv13"),
    (upscaling_task, "srresnet", {"features": 8, "n_blocks": 1}, "vgg19"),
])
def test_rgb_losses_send_a_finite_gradient_to_the_generator(torch_home, real_batch, task, name, kwargs, content):
    """Content and RGB-L1 terms go Lab -> sRGB through kornia; the generator's first conv gets a finite,
    non-zero gradient (seed 004's joint model failed on a broken RGB gradient)."""
    from huescale.resize import imresize

    torch.manual_seed(0)
    hr = small(real_batch, 2)
    batch = (hr,) if task is colorization_task else (imresize(hr.float(), (8, 8)).round().clamp(0, 255).byte(), hr)
    x, y = task(batch)
    net = models.build(name, **kwargs)
    obj = GeneratorObjective(lambda_l1=100, content=content, lambda_content=10, lambda_rgb=1,
                             to_rgb=task.to_rgb)
    terms = obj(x, net(x), y)
    assert {"loss_G_L1", "loss_G_content", "loss_G_rgb"} <= set(terms)
    terms["loss_G_content"].backward(retain_graph=True)  # the content term alone reaches the generator
    first = next(p for p in net.parameters() if p.ndim == 4)
    assert torch.isfinite(first.grad).all() and first.grad.abs().sum() > 0
    net.zero_grad()
    terms["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


@pytest.mark.parametrize("content,l1,lc,cos", [
    ("vgg16_conv7", 100.0, 10.0, 0.0),  # seed 004: conv7 with L1, lambda1 = 100, lambda2 = 10
    ("vgg16_conv13", 0.0, 1.0, 0.0),  # seed 004: conv13 alone
    ("none", 1.0, 0.0, 1.0),  # seed 003: L1 + cosine distance
])
def test_one_step_lowers_the_objective_on_a_real_batch(torch_home, lab, content, l1, lc, cos):
    torch.manual_seed(0)
    L, ab = lab
    net = models.build("unet", base_channels=8)
    obj = GeneratorObjective(lambda_l1=l1, content=content, lambda_content=lc, lambda_cosine=cos,
                             to_rgb=colorization_task.to_rgb)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    first = None
    for _ in range(3):
        total = obj(L, net(L), ab)["total"]
        first = total.item() if first is None else first
        opt.zero_grad()
        total.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        final = obj(L, net(L), ab)["total"].item()
    assert torch.isfinite(torch.tensor(final)) and final < first, (first, final)


def test_cosine_distance_on_real_ab(lab):
    _, ab = lab
    assert cosine_distance(ab, ab).item() == pytest.approx(0.0, abs=1e-5)
    assert cosine_distance(-ab, ab).item() == pytest.approx(2.0, abs=0.05)  # gray pixels (ab ~ 0) count as 1
    assert 0 < cosine_distance(ab.flip(0), ab).item() < 2


def test_adversarial_trainer_with_content_loss_and_srgan_weights(torch_home, tmp_path, real_batch):
    """One adversarial epoch with seed 004's conv7 + L1 objective; then SRGAN's (VGG19 + 1e-3 GAN, D on HR only)."""
    from torch.utils.data import TensorDataset

    from huescale.resize import imresize
    from huescale.train import PhaseConfig, Trainer

    hr = small(real_batch, 8)
    ds = TensorDataset(hr)
    cfg = PhaseConfig(epochs=1, batch_size=4, lr=2e-4, betas=(0.5, 0.999), gan_loss="vanilla", max_batches=1,
                      content_loss="vgg16_conv7", lambda_content=10.0)
    t = Trainer(models.build("unet", base_channels=8), colorization_task, cfg, tmp_path / "a.pt", tmp_path / "ab.pt",
                ("unet", {"base_channels": 8}), netD=models.build("patchgan", base_channels=8), progress=False)
    rec = t.fit(ds, ds)[-1].values
    assert {"loss_G_content", "loss_D", "loss_G_GAN"} <= set(rec) and all(map(torch.isfinite, map(torch.tensor, rec.values())))
    lr = imresize(hr.float(), (8, 8)).round().clamp(0, 255).byte()
    sr = PhaseConfig(epochs=1, batch_size=4, lr=2e-4, betas=(0.5, 0.999), gan_loss="vanilla", lambda_l1=0.0, max_batches=1,
                     lambda_gan=1e-3, content_loss="vgg19", lambda_content=1.0, d_conditional=False)
    t = Trainer(models.build("srresnet", features=8, n_blocks=1), upscaling_task, sr, tmp_path / "s.pt",
                tmp_path / "sb.pt", ("srresnet", {}), netD=models.build("srgan", base_channels=4, dense=16),
                progress=False)
    rec = t.fit(TensorDataset(lr, hr), TensorDataset(lr, hr))[-1].values
    assert rec["loss_G_content"] > 0 and all(map(torch.isfinite, map(torch.tensor, rec.values())))


def test_loss_params_are_checked_with_their_dotted_names(tmp_path):
    import yaml

    from huescale.config import ConfigError, load_config
    from huescale.stages import loss_terms

    base = yaml.safe_load(open("params.yaml"))
    assert loss_terms(load_config("params.yaml").train)["lambda_content"] == 0.0  # name none: no content term
    for key, value, match in (("content_loss", {"name": "vgg11"}, "train.content_loss.name"),
                              ("init", "warm", "train.init"), ("lambda_rgb", -1.0, "lambda_rgb"),
                              ("content_loss", {"lambda": 1.0}, "train.content_loss.lambda")):
        raw = {**base, "train": {**base["train"], key: value}}
        (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError, match=match):
            load_config(tmp_path / "p.yaml")
