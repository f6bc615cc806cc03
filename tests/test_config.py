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


# (dotted key, the last accepted value, the first refused one, what the message must say): each check at its
# boundary (the mutation run of validation.py, docs/reliability.md, found the bad values tested far from it)
EDGES = [
    ("calibrate.min_colourfulness", 0.0, -0.01, r"calibrate needs 0 <= min_colourfulness <= max_colourfulness"),
    ("calibrate.min_colourfulness", 1.25, 1.26, r"calibrate needs 0 <= min_colourfulness"),  # max is 1.25
    ("calibrate.images", 1, 0, r"calibrate needs .* images >= 1, got .*, 0$"),
    ("data.splits", {"train": 0.5, "val": 0.25, "test": 0.25}, {"train": 0.5, "val": 0.25, "test": 0.25001},
     r"data\.splits must give train/val/test fractions summing to 1"),
    ("data.splits", {"train": 0.9, "val": 0.0, "test": 0.1}, {"train": 1.0, "val": -0.1, "test": 0.1},
     r"data\.splits must give"),
    ("data.scale", 2, 1, r"data\.hr_size \(256\) must be a multiple of data\.scale \(1 >= 2\)"),
    ("data.hr_size", 260, 258, r"data\.hr_size \(258\) must be a multiple of data\.scale \(4 >= 2\)"),
    ("data.n_images", 1, 0, r"data\.n_images and data\.shard_size must be >= 1"),
    ("data.shard_size", 1, 0, r"data\.n_images and data\.shard_size must be >= 1"),
    ("data.gray_tolerance", 0.0, -0.5, r"data\.gray_tolerance is a colour distance .* got -0\.5"),
    ("data.workers", 0, -1, r"data\.workers must be >= 0, got -1"),
    ("data.max_extract_ratio", 1.0, 0.99, r"data\.max_extract_ratio must be >= 1 .* got 0\.99 and"),
    ("data.max_extract_bytes", 1, 0,
     r"data\.max_extract_ratio must be >= 1 .* data\.max_extract_bytes >= 1, got .* and 0$"),
    ("pretrain.finetune.epochs", 0, -1, r"pretrain\.finetune needs epochs >= 0 .* got -1,"),
    ("pretrain.finetune.encoder_lr_scale", 1e-9, 0.0, r"pretrain\.finetune needs .* encoder_lr_scale > 0"),
    ("pretrain.colorizer.losses", {"ab_ce": 0.0, "reg_l1": 5.0}, {"ab_ce": -1e-9, "reg_l1": 5.0},
     r"pretrain\.colorizer\.losses: weights must be finite numbers >= 0"),
    ("train.losses", {"ab_ce": 1.0, "reg_l1": 5.0, "gan": 1e-9}, {"ab_ce": 1.0, "reg_l1": 5.0, "gan": 0.0},
     r"train\.losses\.gan must be > 0: the train stage is the adversarial phase \(lambda_GAN"),
    ("train.losses", {"ab_ce": 1.0, "reg_l1": 5.0, "gan": 1e-9}, {"ab_ce": 1.0, "reg_l1": 5.0},
     r"train\.losses\.gan must be > 0"),
    ("pretrain.colorizer.epochs", 1, 0, r"pretrain\.colorizer: epochs and batch_size must be >= 1"),
    ("pretrain.colorizer.batch_size", 1, 0, r"pretrain\.colorizer: epochs and batch_size must be >= 1"),
    ("pretrain.colorizer.lr", 1e-12, 0.0, r"pretrain\.colorizer: .* lr a finite number > 0"),
    ("pretrain.colorizer.betas", [0.0, 0.999], [0.9, 1.0], r"pretrain\.colorizer\.betas must be two numbers in"),
    ("pretrain.colorizer.max_batches", 0, -1, r"pretrain\.colorizer\.max_batches must be >= 0"),
    ("pretrain.colorizer.checkpoint_every", 0, -1, r"pretrain\.colorizer\.checkpoint_every must be >= 0"),
    ("evaluate.epsilon", 0.999, 1.0, r"evaluate\.epsilon is a fraction of 255 in \(0, 1\), got 1\.0"),
    ("evaluate.epsilon", 0.001, 0.0, r"evaluate\.epsilon is a fraction"),
    ("evaluate.batch_size", 1, 0, r"evaluate\.batch_size must be >= 1, got 0"),
    ("evaluate.grid_rows", 0, -1, r"evaluate\.grid_rows must be >= 0"),
    ("evaluate.holdout_rows", 0, -1, r"evaluate\.holdout_rows must be >= 0"),
    ("train.collapse_threshold", 0.0, -0.1, r"train\.collapse_steps must be >= 1 and train\.collapse_threshold"),
    ("train.collapse_steps", 1, 0, r"train\.collapse_steps must be >= 1"),
    ("benchmark.samples", 0, -1, r"benchmark\.samples must be >= 0, got -1"),
]


@pytest.mark.parametrize("key,ok,bad,message", EDGES, ids=[f"{e[0]}={e[2]}" for e in EDGES])
def test_each_check_at_its_boundary(key, ok, bad, message):
    """The last accepted value of each checked param loads; the first refused one fails at load, naming the
    params file, the key and the allowed values."""
    import copy

    import yaml

    from huescale.config_io import parse_config
    from huescale.errors import ConfigError

    base = yaml.safe_load((ROOT / "params.yaml").read_text())

    def with_value(value):
        raw = copy.deepcopy(base)
        node = raw
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
        return raw

    parse_config(with_value(ok), "p.yaml")
    with pytest.raises(ConfigError, match=r"^p\.yaml: " + message.removeprefix("^")):
        parse_config(with_value(bad), "p.yaml")


SOURCE_EDGES = [  # (params set, accepted?, what the message must say): the sources' own checks
    ({"data.imagenette.variant": "full"}, True, ""),
    ({"data.imagenette.variant": "640"}, False, r"data\.imagenette\.variant"),
    ({"data.source": "coco", "data.coco.archives": ["val2017"]}, True, ""),
    ({"data.source": "coco", "data.coco.archives": ["test2017"]}, False, r"data\.coco\.archives"),
    ({"data.imagenette.url": "https://example.org/x.tgz", "data.imagenette.md5": ""}, False,
     r"data\.imagenette\.url is set without data\.imagenette\.md5"),
    ({"data.source": "coco", "data.imagenette.url": "https://example.org/x.tgz", "data.imagenette.md5": ""}, True,
     ""),  # the imagenette check applies only when imagenette is used
    ({"data.source": "voc", "data.voc.md5": ""}, False, r"data\.voc\.md5 is empty"),
    ({"data.source": "imagenette", "data.voc.md5": ""}, True, ""),
    ({"data.split_map": {"imagenette/val": "val", "x/": "test", "y/": "train"}}, True, ""),
    ({"data.split_map": {"imagenette/val": "dev"}}, False, r"data\.split_map"),
    ({"data.holdout_images": 1}, True, ""),
    ({"data.holdout_images": 0}, False, r"data\.holdout_images must be >= 1, got 0"),
    ({"data.fetch_margin": 0.0}, True, ""),
    ({"data.fetch_margin": -0.01}, False, r"data\.test_source\.n_images and data\.fetch_margin must be >= 0"),
    ({"data.test_source.n_images": -1}, False, r"data\.test_source\.n_images and data\.fetch_margin must be >= 0"),
]


@pytest.mark.parametrize("changes,accepted,message", SOURCE_EDGES, ids=[str(e[0]) for e in SOURCE_EDGES])
def test_each_source_check(changes, accepted, message):
    import copy

    import yaml

    from huescale.config_io import parse_config
    from huescale.errors import ConfigError

    raw = copy.deepcopy(yaml.safe_load((ROOT / "params.yaml").read_text()))
    for key, value in changes.items():
        node = raw
        *path, last = key.split(".")
        for part in path:
            node = node[part]
        node[last] = value
    if accepted:
        parse_config(raw, "p.yaml")
    else:
        with pytest.raises(ConfigError, match=r"^p\.yaml: .*" + message):
            parse_config(raw, "p.yaml")
