"""params.yaml: the shipped files load; wrong params fail early, naming the key."""

from pathlib import Path

import pytest
import yaml

from conftest import default_params_text
from huescale.config_io import load_config
from huescale.errors import ConfigError

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


@pytest.mark.parametrize("patch,match", [
    ({"model": {"colorizer": {"name": "unett"}}},
     r"model\.colorizer\.name: unknown model 'unett'; known models: .*\bunet\b"),
    ({"model": {"upscaler": {"name": "espcnn"}}}, r"model\.upscaler\.name: unknown model 'espcnn'; .*espcn.*bicubic"),
    ({"model": {"joint": {"name": "patchgann"}}}, r"model\.joint\.name: unknown model 'patchgann'"),
    ({"model": {"discriminator": {"name": "patchgan", "kwargs": {"base_chanels": 8}}}},
     r"model\.discriminator\.kwargs\.base_chanels: model 'patchgan' takes no parameter 'base_chanels'; "
     r"its parameters: in_channels, base_channels, n_layers"),
    ({"model": {"colorizer": {"name": "semantic", "kwargs": {"backbone": "efficientnet_lite0", "weight": "none"}}}},
     r"model\.colorizer\.kwargs\.weight: model 'semantic' takes no parameter"),
    ({"train": {"losses": {"l1": 100, "gan": 1, "perceptual": 1}}},
     r"train\.losses\.perceptual: unknown loss; known losses: .*\bgan\b.*\bl1\b.*vgg16_conv7"),
    ({"pretrain": {"upscaler": {"losses": {"L1": 1.0}}}}, r"pretrain\.upscaler\.losses\.L1: unknown loss"),
    ({"pretrain": {"finetune": {"losses": {"l2": 1.0}}}}, r"pretrain\.finetune\.losses\.l2: unknown loss"),
    ({"train": {"betas": [2, 0.9]}}, r"train\.betas must be two numbers in \[0, 1\) .* got \[2\.0, 0\.9\]"),
    ({"pretrain": {"colorizer": {"betas": [0.9, 1.0]}}}, r"pretrain\.colorizer\.betas must be two numbers in \[0, 1\)"),
    ({"pretrain": {"upscaler": {"betas": [0.9]}}}, r"pretrain\.upscaler\.betas"),
    ({"train": {"lr": float("nan")}}, r"train: .*lr a finite number > 0, .*lr=nan"),
    ({"pretrain": {"colorizer": {"lr": float("inf")}}}, r"pretrain\.colorizer: .*lr a finite number > 0"),
    ({"train": {"losses": {"l1": float("nan"), "gan": 1.0}}}, r"train\.losses: weights must be finite numbers >= 0"),
    ({"evaluate": {"batch_size": 0}}, r"evaluate\.batch_size must be >= 1, got 0"),
    ({"evaluate": {"metrics": ["psnr", "sharpness"]}},
     r"evaluate\.metrics: unknown metric 'sharpness'; known metrics: mae, epsilon_accuracy, psnr"),
    ({"evaluate": {"metrics": ["psnr", "psnr"]}}, r"evaluate\.metrics lists a metric twice"),
    ({"evaluate": {"fid_batch_size": -3}}, r"evaluate\.fid_batch_size must be >= 1"),
    ({"data": {"gray_tolerance": -1}}, r"data\.gray_tolerance .* must be >= 0 .* got -1"),
    ({"data": {"gray_tolerance": float("nan")}}, r"data\.gray_tolerance"),
    ({"data": {"max_pixels": 0}}, r"data\.max_pixels must be >= 1"),
    ({"runtime": {"threads": -1}}, r"runtime\.num_workers and runtime\.threads must be >= 0"),
])
def test_values_a_stage_would_trip_on_fail_at_load_naming_key_and_allowed_values(tmp_path, patch, match):
    """Issue 23 item 5: unknown model and loss names, betas outside [0, 1), a nan/inf lr, evaluate.batch_size 0,
    a negative data.gray_tolerance... passed load_config and failed (or not) after download and prepare."""
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(patch))
    with pytest.raises(ConfigError, match=match) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}: ")


def test_model_kwargs_are_checked_without_building_the_model(tmp_path, monkeypatch):
    """The kwargs check reads the constructor's signature: a model that would load pretrained weights when built
    (semantic, ImageNet encoder) is not built, nothing is fetched or loaded."""
    import inspect

    from huescale.models import registry

    built = []
    real = registry._REGISTRY["semantic"]

    class Spy(real):
        """The semantic colorizer, recording every build."""

        def __init__(self, *args, **kwargs):
            built.append(kwargs)
            super().__init__(*args, **kwargs)

    Spy.__signature__ = inspect.signature(real)  # what the check sees: the real parameters
    monkeypatch.setitem(registry._REGISTRY, "semantic", Spy)
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({"model": {"colorizer": {"name": "semantic", "kwargs": {
        "backbone": "efficientnet_lite0", "weights": "imagenet", "size": 128}}}}))
    assert load_config(p).model.colorizer.name == "semantic" and built == []
    p.write_text(yaml.safe_dump({"model": {"colorizer": {"name": "semantic", "kwargs": {"wieghts": "imagenet"}}}}))
    with pytest.raises(ConfigError, match="model.colorizer.kwargs.wieghts"):
        load_config(p)
    assert built == []


def test_a_bad_value_fails_the_first_stage_before_it_does_any_work(shared_data, tmp_path, monkeypatch, capsys):
    """`huescale stage download` with an unknown model: one line naming the key, rc 1, no listing, no MLflow run."""
    from huescale.cli import main

    monkeypatch.chdir(tmp_path)
    folder = shared_data / "benchmarks" / "Set5" / "GTmod12"
    raw = {"data": {"source": "folder", "folders": [str(folder)], "min_images": 1},
           "model": {"colorizer": {"name": "unett"}}, "tracking": {"uri": "sqlite:///mlflow.db"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(SystemExit) as done:
        main(["stage", "download"])
    err = capsys.readouterr().err
    assert done.value.code == 1 and "model.colorizer.name: unknown model 'unett'" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]  # no data/, metrics/, mlflow.db


def test_test_projects_take_the_committed_params_whatever_profile_was_applied(tmp_path):
    """Issue 23 item 9: after `huescale profile offline` in the working tree, the project copies the tests make
    (conftest.copy_project, tiny_project) named ../shared/data/... folders, absent beside the copy: 19 failures.
    They take the committed params.yaml instead; so do the tests that read the defaults."""
    from conftest import copy_project, default_params, project_env, run_checked
    from huescale.profiles import apply_profiles

    checkout = copy_project(tmp_path / "checkout")  # a clone whose user then applied the offline profile
    env = project_env()
    run_checked(["git", "init", "-q"], checkout, env)
    run_checked(["git", "add", "-A"], checkout, env)
    run_checked(["git", "commit", "-qm", "clone"], checkout, env)
    committed = (checkout / "params.yaml").read_text()
    apply_profiles(["offline"], checkout / "params.yaml", checkout / "params")
    assert "../shared/data" in (checkout / "params.yaml").read_text()
    assert default_params_text(checkout) == committed and default_params(checkout) == yaml.safe_load(committed)
    copy = copy_project(tmp_path / "copy", root=checkout)
    assert (copy / "params.yaml").read_text() == committed
    assert "../shared" not in committed and load_config(copy / "params.yaml").data.source == "imagenette"


def test_an_unquoted_off_for_a_string_param_says_to_quote_it(tmp_path):
    """`runtime.amp: off` (unquoted) is the boolean false in YAML 1.1; the error says so and how to write it."""
    import yaml

    from huescale.config_io import load_config
    from huescale.errors import ConfigError

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    text = yaml.safe_dump(raw, sort_keys=False).replace("amp: auto", "amp: off")
    (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r'runtime\.amp must be a string, got False: YAML reads .* quote the value '
                                          r'\(e\.g\. amp: "off"\)'):
        load_config(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text(text.replace("amp: off", 'amp: "off"'))
    assert load_config(tmp_path / "params.yaml").runtime.amp == "off"
