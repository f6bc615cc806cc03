"""Reading the params: ``params.yaml`` (or any params mapping) -> a validated :class:`huescale.config.Config`.

Unknown keys and wrong types fail at start-up with the key's dotted name, never deep inside a run; wrong
values too (:mod:`huescale.validation`, run by :func:`parse_config`). Also the dotted-key helpers
(``a.b.c``: :func:`set_dotted`, :func:`to_flat_dict`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from huescale.config import Config
from huescale.errors import ConfigError
from huescale.validation import validate


def _coerce(tp: Any, value: Any, key: str, src: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{src}: {key} must be a mapping, got {value!r}")
        return _from_dict(typing.cast(type, tp), value, key, src)
    if origin in (list,):
        if not isinstance(value, list):
            raise ConfigError(f"{src}: {key} must be a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(item, v, f"{key}[{i}]", src) for i, v in enumerate(value)]
    if origin in (dict,):
        if not isinstance(value, dict):
            raise ConfigError(f"{src}: {key} must be a mapping, got {value!r}")
        _, item = typing.get_args(tp)
        return {k: _coerce(item, v, f"{key}.{k}", src) for k, v in value.items()}
    if tp is Any or origin in (typing.Union, types.UnionType):
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is str and isinstance(value, bool):  # YAML 1.1 reads unquoted on / off / yes / no as booleans
        raise ConfigError(f"{src}: {key} must be a string, got {value!r}: YAML reads an unquoted on, off, yes or no "
                          f"as true / false; quote the value (e.g. {key.rsplit('.', 1)[-1]}: \"off\")")
    if tp in (int, float, str, bool) and (not isinstance(value, tp) or (tp is int and isinstance(value, bool))):
        raise ConfigError(f"{src}: {key} must be {tp.__name__}, got {value!r}")
    return value


def _from_dict(cls: type, d: dict, prefix: str, src: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"{src}: unknown parameter(s) {', '.join(where + u for u in sorted(unknown))}; "
                          f"known: {', '.join(sorted(names))}")
    kwargs = {k: _coerce(hints[k], v, f"{prefix}.{k}" if prefix else k, src) for k, v in d.items()}
    return cls(**kwargs)


def set_dotted(d: dict, key: str, value: Any, src: str) -> None:
    """Set ``a.b.c`` in a nested dict (the ``dvc exp run -S`` form), creating mappings on the way.

    Raises:
        ConfigError: a parent on the way is not a mapping (names the key and ``src``).
    """
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"{src}: cannot set {key}: {p} is not a mapping")
    d[parts[-1]] = value


def read_yaml(path: Path, missing: str) -> dict:
    """A YAML mapping from ``path`` (``{}`` for an empty file).

    Raises:
        ConfigError: the file is absent (``missing`` says what to do) or not valid YAML.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: {missing}")
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def parse_config(raw: dict, src: str = "params.yaml") -> Config:
    """A validated :class:`Config` from a params mapping (as read from YAML); ``src`` names it in messages.

    Raises:
        ConfigError: not a mapping, unknown key, wrong type or value.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{src}: the parameters must be a YAML mapping (key: value), got {type(raw).__name__}")
    return validate(_from_dict(Config, raw, "", src), src)


def load_config(path: str | Path = "params.yaml") -> Config:
    """Read and validate ``params.yaml``.

    Raises:
        ConfigError: missing file, YAML syntax error, unknown key, wrong type or value.
    """
    p = Path(path)
    raw = read_yaml(p, "parameter file not found; run from the project root or pass --params")
    return parse_config(raw, str(p))


def to_flat_dict(cfg: Config | dict) -> dict[str, Any]:
    """Flatten a config (or any nested dict) to dotted keys (``train.losses.l1``), for MLflow."""
    out: dict[str, Any] = {}

    def walk(prefix: str, obj: Any) -> None:
        if isinstance(obj, dict):
            for k, v in obj.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = obj

    walk("", dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else cfg)
    return out
