"""Parameter profiles: small overlays of ``params.yaml`` (``params/<name>.yaml``) applied by one command.

A profile holds only what differs from ``params.yaml``, e.g. ``params/gpu.yaml`` for the source
documents' full protocol on a GPU, or ``params/offline.yaml`` for the photographs in a local
folder. ``huescale profile gpu`` writes the merged values into ``params.yaml`` (comments and
key order kept, the result validated before it replaces the file); several profiles apply in
order (``huescale profile offline gpu``). Merge rule: a section (``train``, ``data.coco``...)
is merged key by key; a value, including a mapping-valued field such as
``train.losses`` or ``model.colorizer.kwargs``, is replaced whole, so a profile states the
full set of losses or kwargs it wants. ``git checkout params.yaml`` undoes it.
"""

from __future__ import annotations

import dataclasses
import io
import typing
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from huescale.atomic import write_text
from huescale.config import Config
from huescale.config_io import load_config, read_yaml
from huescale.errors import ConfigError


def available_profiles(folder: str | Path = "params") -> dict[str, str]:
    """Profile name -> the first comment line of its file, for every ``*.yaml`` in ``folder``."""
    out = {}
    for p in sorted(Path(folder).glob("*.yaml")):
        first = next((ln.lstrip("# ").strip() for ln in p.read_text().splitlines() if ln.startswith("#")), "")
        out[p.stem] = first
    return out


def changes(overlay: dict, cls: type = Config, prefix: str = "", src: str = "") -> dict[str, Any]:
    """The dotted keys an overlay sets (sections merged, values replaced whole), checked against the schema.

    Raises:
        ConfigError: a key that is not a parameter (names it and the known keys of its section).
    """
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if key not in hints:
            raise ConfigError(f"{src}: unknown parameter {dotted}; known: {', '.join(sorted(hints))}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            out.update(changes(value, tp, f"{dotted}.", src))
        else:
            out[dotted] = value
    return out


def _set(doc: Any, dotted: str, value: Any) -> Any:
    """Set ``dotted`` in a ruamel round-trip mapping, creating sections; returns the old value (None if new)."""
    parts = dotted.split(".")
    for p in parts[:-1]:
        if p not in doc or doc[p] is None:
            doc[p] = {}
        doc = doc[p]
    old = doc.get(parts[-1])
    doc[parts[-1]] = value
    return old


def apply_profiles(names: list[str], params: str | Path = "params.yaml",
                   folder: str | Path = "params") -> dict[str, tuple[Any, Any]]:
    """Apply the profiles ``names`` (in order) to ``params``; returns ``{dotted key: (old, new)}`` of the values
    that changed.

    The merged file is validated (:func:`huescale.config_io.load_config`) before it atomically replaces
    ``params``; on any error ``params`` is left as it was.

    Raises:
        ConfigError: an unknown profile (lists the known ones), an unknown key, or a merged file that does
            not validate (names the key).
    """
    params = Path(params)
    for name in names:  # every profile exists before anything is read or written
        if not (Path(folder) / f"{name}.yaml").is_file():
            known = ", ".join(available_profiles(folder)) or "none"
            raise ConfigError(f"{Path(folder) / f'{name}.yaml'}: no such profile; profiles in {folder}: {known}")
    yaml = YAML()  # round-trip: comments and key order survive
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap the lines of the file
    doc = yaml.load(read_yaml_text(params))
    done: dict[str, tuple[Any, Any]] = {}
    for name in names:
        path = Path(folder) / f"{name}.yaml"
        for key, value in changes(read_yaml(path, "profile not found"), src=str(path)).items():
            old = _set(doc, key, value)
            if old != value:
                done[key] = (done.get(key, (old, None))[0], value)
    buf = io.StringIO()
    yaml.dump(doc, buf)
    tmp = params.with_name(f".{params.name}.profile.yaml")
    write_text(buf.getvalue(), tmp)
    try:
        load_config(tmp)
    except ConfigError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{params} with profile(s) {', '.join(names)} does not validate: "
                          f"{str(exc).replace(str(tmp), str(params))}") from None
    tmp.replace(params)
    return done


def read_yaml_text(path: Path) -> str:
    """The text of a params file.

    Raises:
        ConfigError: the file is missing (says to run from the project root).
    """
    if not path.is_file():
        raise ConfigError(f"{path}: parameter file not found; run from the project root or pass --params")
    return path.read_text()
