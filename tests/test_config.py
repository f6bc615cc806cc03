"""params.yaml: the shipped files load; wrong params fail early, naming the key."""

from pathlib import Path

import pytest
import yaml

from conftest import default_params_text
from huescale.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_params_load(tmp_path):
    (tmp_path / "params.yaml").write_text(default_params_text())  # as committed, whatever profile was applied
    cfg = load_config(tmp_path / "params.yaml")
    assert cfg.train.losses == {"ab_ce": 1.0, "reg_l1": 5.0, "gan": 0.1} and cfg.train.gan_mode == "lsgan"
    assert cfg.model.colorizer.name == "semantic" and cfg.pretrain.colorizer.lr_schedule == "cosine"
    assert cfg.model.colorizer.kwargs["backbone"] == "efficientnet_lite0" and cfg.pretrain.finetune.epochs >= 1
    assert cfg.data.lr_size == 64


@pytest.mark.parametrize("patch,match", [
    ({"train": {"lamda_l1": 10}}, "train.lamda_l1"),
    ({"train": {"losses": {"l1": "ten", "gan": 1}}}, "train.losses.l1 must be float"),
    ({"pretrain": {"colorizer": {"losses": {"l1": 1, "gan": 1}}}}, "pretrain.colorizer.losses.gan"),
    ({"train": {"epochs": "ten"}}, "train.epochs must be int"),
    ({"data": {"source": "flickr"}}, "data.source"),
    ({"data": {"source": "folder"}}, "data.folders"),
    ({"data": {"splits": {"train": 0.9, "val": 0.2, "test": 0.1}}}, "data.splits"),
    ({"data": {"imagenette": {"variant": "640"}}}, "data.imagenette.variant"),
    ({"data": {"coco": {"archives": ["test2017"]}}}, "data.coco.archives"),
    ({"data": {"source": "hf"}}, "data.hf.name"),
    ({"data": {"hf": {"streaming": "yes"}}}, "data.hf.streaming must be bool"),
    ({"data": {"test_source": {"source": "folder"}}}, "data.test_source.folders"),
    ({"data": {"test_source": {"sauce": "folder"}}}, "data.test_source.sauce"),
    ({"data": {"split_map": {"coco/val2017": "holdout"}}}, "data.split_map.coco/val2017"),
    ({"data": {"splits": {"train": 0.8, "val": 0.2, "test": 0.0}}}, "no test set is given"),
])
def test_bad_params_name_the_key(tmp_path, patch, match):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(patch))
    with pytest.raises(ConfigError, match=match):
        load_config(p)


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/params.yaml")


def test_every_profile_is_an_overlay_that_applies_and_validates(tmp_path):
    """Each params/<name>.yaml holds only keys that differ from params.yaml, and `huescale profile <name>` turns
    params.yaml into a valid file with those values (comments kept)."""
    from huescale.profiles import apply_profiles, changes

    base = yaml.safe_load(default_params_text())

    def base_value(key):
        node = base
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return object()
            node = node[part]
        return node

    profiles = sorted((ROOT / "params").glob("*.yaml"))
    assert {p.stem for p in profiles} >= {"offline", "gpu", "pix2pix-srgan", "cifar-encdec", "unet-ablation"}
    for p in profiles:
        overlay = changes(yaml.safe_load(p.read_text()), src=str(p))
        same = [k for k, v in overlay.items() if base_value(k) == v]
        assert not same, f"{p.name} repeats values of params.yaml: {same}"
        target = tmp_path / f"{p.stem}.yaml"
        target.write_text(default_params_text())
        done = apply_profiles([p.stem], target, ROOT / "params")
        assert set(done) == set(overlay), p.name
        load_config(target)
        merged = yaml.safe_load(target.read_text())
        for key, value in overlay.items():
            node = merged
            for part in key.split("."):
                node = node[part]
            assert node == value, (p.name, key)
        assert "# huescale parameters" in target.read_text()  # the comments survive


def test_a_bad_profile_key_is_named_and_params_yaml_is_left_alone(tmp_path):
    from huescale.profiles import apply_profiles

    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "typo.yaml").write_text("train:\n  epoch: 3\n")
    (tmp_path / "profiles" / "bad.yaml").write_text("train:\n  epochs: 0\n")
    target = tmp_path / "params.yaml"
    target.write_text(default_params_text())
    before = target.read_text()
    with pytest.raises(ConfigError, match="unknown parameter train.epoch"):
        apply_profiles(["typo"], target, tmp_path / "profiles")
    with pytest.raises(ConfigError, match="epochs and batch_size must be >= 1"):
        apply_profiles(["bad"], target, tmp_path / "profiles")
    with pytest.raises(ConfigError, match="no such profile; profiles in .*: bad, typo"):
        apply_profiles(["gpu2"], target, tmp_path / "profiles")
    assert target.read_text() == before and sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "profiles"]


def test_a_held_out_folder_that_training_reads_is_refused(tmp_path):
    """data.holdout must be photographs training never reads: inside, equal to or above a training folder fails."""
    base = yaml.safe_load(default_params_text())
    train = tmp_path / "photos"
    (train / "sub").mkdir(parents=True)
    (tmp_path / "other").mkdir()
    for held, ok in ((train / "sub", False), (train, False), (tmp_path, False), (tmp_path / "other", True)):
        raw = {**base, "data": {**base["data"], "source": "folder", "folders": [str(train)],
                                "holdout": {"h": str(held)}}}
        p = tmp_path / "p.yaml"
        p.write_text(yaml.safe_dump(raw))
        if ok:
            assert load_config(p).data.holdout == {"h": str(held)}
        else:
            with pytest.raises(ConfigError, match="data.holdout.h .* overlaps the training folder"):
                load_config(p)
