"""params.yaml: the shipped files load; wrong params fail early, naming the key."""

from pathlib import Path

import pytest
import yaml

from huescale.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_params_load():
    cfg = load_config(ROOT / "params.yaml")
    assert cfg.train.lambda_l1 == 100 and cfg.train.gan_loss == "lsgan" and cfg.data.lr_size == 64
    for p in sorted((ROOT / "params").glob("*.yaml")):
        load_config(p)


@pytest.mark.parametrize("patch,match", [
    ({"train": {"lamda_l1": 10}}, "train.lamda_l1"),
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


def test_every_params_file_has_every_key_dvc_yaml_declares():
    """`cp params/X.yaml params.yaml && dvc repro` needs each stage's declared params in the file."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    declared = {p for st in yaml.safe_load((root / "dvc.yaml").read_text())["stages"].values()
                for p in st.get("params", [])}

    def has(d, key: str) -> bool:
        for part in key.split("."):
            if not isinstance(d, dict) or part not in d:
                return False
            d = d[part]
        return True

    for f in [root / "params.yaml", *sorted((root / "params").glob("*.yaml"))]:
        raw = yaml.safe_load(f.read_text())
        assert not [k for k in sorted(declared) if not has(raw, k)], f.name
