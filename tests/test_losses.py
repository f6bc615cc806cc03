"""Losses by name: the registry, VGG content (random weights in a temp cache), cosine distance, RGB gradients
through kornia, and the recipe that builds the objective from the params."""

from __future__ import annotations

import pytest
import torch

from huescale import models
from huescale.color import lab_normalized_to_rgb, uint8_to_lab_normalized
from huescale.training.colour_losses import cosine_distance
from huescale.training.loss_registry import LossContext
from huescale.training.losses import GeneratorObjective
from huescale.training.tasks import COLORIZATION, JOINT, UPSCALING
from huescale.training.vgg_loss import VGGContentLoss


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
    from test_train import tiny_config

    from huescale.training import recipe

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        VGGContentLoss("vgg16_conv7")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        VGGContentLoss("vgg19", tmp_path / "nope.pth")
    cfg = tiny_config(True, losses={"l1": 100.0, "vgg19": 1.0, "gan": 1.0})
    with pytest.raises(FileNotFoundError, match="vgg19-dcbb9e9d.pth"):  # when the phase is built, before any step
        recipe.build(cfg, "colorizer", "adversarial")
    with pytest.raises(FileNotFoundError, match="vgg19-dcbb9e9d.pth"):  # and by the pre-start check of every phase
        recipe.check(cfg)


def test_unknown_loss_names_are_refused_with_the_known_ones(tmp_path):
    """A misspelt name fails at start-up with its dotted key and the list of registered losses."""
    from test_train import tiny_config

    from huescale.training import recipe

    known = r"known losses: gan, ab_ce, colourfulness, cosine, l1, reg_l1"
    with pytest.raises(ValueError, match=r"losses\.vgg11: unknown loss; " + known):
        GeneratorObjective({"vgg11": 1.0}, LossContext(COLORIZATION))
    with pytest.raises(ValueError, match="no reconstruction loss"):
        GeneratorObjective({"gan": 1.0}, LossContext(COLORIZATION))
    cfg = tiny_config(True, losses={"l1": 100.0, "gan": 1.0, "cosin": 0.5})
    with pytest.raises(ValueError, match=r"train\.losses\.cosin: unknown loss"):
        recipe.check(cfg)


def test_adding_a_loss_is_one_registered_class(tmp_path):
    """A new loss registered in a test is used by the params at once: its term enters the total with its weight."""
    from test_train import tiny_config

    from huescale.training import loss_registry, losses, recipe

    @loss_registry.register("test_mean_ab")
    class MeanAB(loss_registry.Loss):
        """Mean of the output (a test loss)."""

        metric = "loss_G_test_mean_ab"

        def forward(self, inp):
            return inp.out.mean()

    try:
        r = recipe.build(tiny_config(False, losses={"l1": 1.0, "test_mean_ab": 0.5}), "colorizer", "pretrain")
        x = torch.zeros(2, 1, 16, 16)
        y = torch.full((2, 2, 16, 16), 0.25)
        out = torch.full((2, 2, 16, 16), 0.5)
        terms = r.objective(x, out, y)
        assert terms["loss_G_test_mean_ab"].item() == pytest.approx(0.5)
        assert terms["total"].item() == pytest.approx(0.25 + 0.5 * 0.5)
        assert "test_mean_ab" in losses.available()
    finally:
        loss_registry._REGISTRY.pop("test_mean_ab")


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
    assert loss.distance(real, real).item() == 0.0
    assert loss.distance(gray, real).item() > 0.0


@pytest.mark.parametrize("task,name,kwargs,content", [
    (COLORIZATION, "unet", {"base_channels": 8}, "vgg16_conv7"),
    (JOINT, "joint", {"base_channels": 8, "n_blocks": 2, "n_up_blocks": 1}, "vgg16_conv13"),
    (UPSCALING, "srresnet", {"features": 8, "n_blocks": 1}, "vgg19"),
])
def test_rgb_losses_send_a_finite_gradient_to_the_generator(torch_home, real_batch, task, name, kwargs, content):
    """Content and RGB-L1 terms go Lab -> sRGB through kornia; the generator's first conv gets a finite,
    non-zero gradient (Singh et al.'s joint model failed on a broken RGB gradient)."""
    from huescale.resize import imresize

    torch.manual_seed(0)
    hr = small(real_batch, 2)
    batch = (hr,) if task is COLORIZATION else (imresize(hr.float(), (8, 8)).round().clamp(0, 255).byte(), hr)
    x, y = task.prepare(batch)
    net = models.build(name, **kwargs)
    obj = GeneratorObjective({"l1": 100.0, content: 10.0, "rgb_l1": 1.0}, LossContext(task))
    terms = obj(x, net(x), y)
    assert {"loss_G_L1", f"loss_G_{content}", "loss_G_rgb_l1"} <= set(terms)
    terms[f"loss_G_{content}"].backward(retain_graph=True)  # the content term alone reaches the generator
    first = next(p for p in net.parameters() if p.ndim == 4)
    assert torch.isfinite(first.grad).all() and first.grad.abs().sum() > 0
    net.zero_grad()
    terms["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


@pytest.mark.parametrize("weights", [
    {"l1": 100.0, "vgg16_conv7": 10.0},  # Singh et al.: conv7 with L1, lambda1 = 100, lambda2 = 10
    {"vgg16_conv13": 1.0},  # Singh et al.: conv13 alone
    {"l1": 1.0, "cosine": 1.0},  # the CIFAR-10 cGAN report: L1 + cosine distance
])
def test_one_step_lowers_the_objective_on_a_real_batch(torch_home, lab, weights):
    torch.manual_seed(0)
    L, ab = lab
    net = models.build("unet", base_channels=8)
    obj = GeneratorObjective(weights, LossContext(COLORIZATION))
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
    """One adversarial epoch with Singh et al.'s conv7 + L1 objective; then SRGAN's (VGG19 + 1e-3 GAN, D on HR only),
    both built by the one recipe from params."""
    from test_train import tiny_config
    from torch.utils.data import TensorDataset

    from huescale.config import ModelSpec
    from huescale.resize import imresize
    from huescale.training import recipe
    from huescale.training.trainer import Trainer

    hr = small(real_batch, 8)
    ds = TensorDataset(hr)
    cfg = tiny_config(True, epochs=1, batch_size=4, max_batches=1, gan_mode="vanilla",
                      losses={"l1": 100.0, "vgg16_conv7": 10.0, "gan": 1.0})
    t = Trainer(recipe.build(cfg, "colorizer", "adversarial"), tmp_path / "a.pt", tmp_path / "ab.pt", progress=False)
    rec = t.fit(ds, ds)[-1].values
    assert {"loss_G_vgg16_conv7", "loss_D", "loss_G_GAN"} <= set(rec)
    assert all(map(torch.isfinite, map(torch.tensor, rec.values())))
    lr = imresize(hr.float(), (8, 8)).round().clamp(0, 255).byte()
    cfg = tiny_config(True, epochs=1, batch_size=4, max_batches=1, gan_mode="vanilla", d_conditional=False,
                      losses={"vgg19": 1.0, "gan": 1e-3})
    cfg.model.upscaler = ModelSpec("srresnet", {"features": 8, "n_blocks": 1})
    cfg.model.discriminator = ModelSpec("srgan", {"base_channels": 4, "dense": 16})
    r = recipe.build(cfg, "upscaler", "adversarial")
    assert r.netD.features[0].in_channels == 1  # d_conditional: false -> D sees the HR L only
    t = Trainer(r, tmp_path / "s.pt", tmp_path / "sb.pt", progress=False)
    rec = t.fit(TensorDataset(lr, hr), TensorDataset(lr, hr))[-1].values
    assert rec["loss_G_vgg19"] > 0 and all(map(torch.isfinite, map(torch.tensor, rec.values())))


def test_loss_params_are_checked_with_their_dotted_names(tmp_path):
    import yaml

    from conftest import default_params_text
    from huescale.config_io import load_config
    from huescale.errors import ConfigError

    (tmp_path / "default.yaml").write_text(default_params_text())  # as committed, whatever profile was applied
    base = yaml.safe_load(default_params_text())
    assert load_config(tmp_path / "default.yaml").train.losses == {"ab_ce": 1.0, "reg_l1": 5.0, "gan": 0.1}
    for key, value, match in (("losses", {"l1": -1.0, "gan": 1.0}, "train.losses"),
                              ("losses", {"l1": "x", "gan": 1.0}, "train.losses.l1 must be float"),
                              ("losses", {"l1": 100.0}, "train.losses.gan must be > 0"),
                              ("init", "warm", "train.init"), ("gan_mode", "wgan", "train.gan_mode"),
                              ("lambda_l1", 100.0, "train.lambda_l1")):
        raw = {**base, "train": {**base["train"], key: value}}
        (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
        with pytest.raises(ConfigError, match=match):
            load_config(tmp_path / "p.yaml")
