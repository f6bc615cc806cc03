"""The ablation grid file: which rows to train, each a set of dotted-key overrides of the base params.

:mod:`huescale.pipeline.ablation` runs a grid; this module reads and checks it. Format (YAML)::

    base: params.yaml            # the base parameters
    pairs: data/pairs            # the prepared pair store (dvc repro prepare)
    holdout: data/holdout_pairs  # the held-out sets' stores (default; every row is also scored on them)
    out: ablations               # the rows' params, checkpoints, samples
    metrics: metrics/ablations.json
    report: reports/ablations.html
    templates: my/templates     # optional: Jinja2 templates (default: the package's)
    register_champion: true
    benchmark: true              # score upscaler rows on benchmark.sets (Set5/Set14/BSD100)
    set: {pretrain.colorizer.epochs: 2}     # overrides for every row (the budget)
    rows:
      - name: U-Net + L1                    # a Table 7 row name (compared in the report)
        kind: colorizer                     # colorizer | upscaler | joint | two_step
        adversarial: true                   # run the adversarial phase (default: true, except upscalers)
        pairs: data/pairs_other             # optional: this row's pair store
        set: {train.init: scratch}

Row kinds: ``colorizer`` (L1 pre-training when ``train.init: pretrained``, then the
adversarial phase; scored at 64 px), ``upscaler`` (``model.upscaler``, ``bicubic`` = no
model; L1 training, adversarial when asked: SRGAN; scored x4 on Y), ``joint``
(``model.joint``, 64 L -> 256 Lab; scored at 256 px), ``two_step`` (a colorizer and an
upscaler chained, Frison et al. 2025; scored at 256 px).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from huescale.atomic import write_text
from huescale.config import Config
from huescale.config_io import parse_config, read_yaml, set_dotted
from huescale.data.store import PairStore
from huescale.errors import ConfigError
from huescale.redact import redact
from huescale.training import recipe

KINDS = ("colorizer", "upscaler", "joint", "two_step")
GRID_KEYS = {"base", "pairs", "holdout", "out", "metrics", "report", "templates", "register_champion", "benchmark",
             "set", "rows", "name"}
ROW_KEYS = {"name", "kind", "adversarial", "set", "pairs"}


def load_grid(path: str | Path) -> dict:
    """Read and check a grid file.

    Raises:
        ConfigError: missing file, bad YAML, unknown keys, a row without name or with an unknown kind.
    """
    p = Path(path)
    grid = read_yaml(p, "grid file not found")
    unknown = set(grid) - GRID_KEYS
    if unknown:
        raise ConfigError(f"{p}: unknown grid key(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(sorted(GRID_KEYS))}")
    rows = grid.get("rows") or []
    if not rows:
        raise ConfigError(f"{p}: rows: the grid has no rows")
    names = set()
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or "name" not in r:
            raise ConfigError(f"{p}: rows[{i}] needs a name")
        bad = set(r) - ROW_KEYS
        if bad:
            raise ConfigError(f"{p}: rows[{i}] ({r['name']}): unknown key(s) {', '.join(sorted(bad))}")
        if r.get("kind", "colorizer") not in KINDS:
            raise ConfigError(f"{p}: rows[{i}] ({r['name']}): kind must be one of {', '.join(KINDS)}")
        if r["name"] in names:
            raise ConfigError(f"{p}: rows[{i}]: duplicate row name {r['name']!r}")
        names.add(r["name"])
    grid.setdefault("name", p.stem)
    return grid


def slug(name: str) -> str:
    """A file-name-safe form of a row name."""
    out = "".join(c.lower() if c.isalnum() else "-" for c in name)
    return "-".join(filter(None, out.split("-")))


def row_config(grid: dict, row: dict, row_dir: Path) -> Config:
    """The row's Config: base params + grid ``set`` + row ``set``, checked (every override type-checked with its
    dotted name, messages naming ``row_dir/params.yaml``).

    ``row_dir/params.yaml`` records the row's params with secrets masked (:func:`huescale.redact.redact`: a URL's
    ``user:password@``, tokens, signed-URL parameters), as the MLflow params are: the file is uploaded to the
    row's MLflow run. The Config itself keeps the real values.
    """
    raw = read_yaml(Path(grid.get("base", "params.yaml")), "base parameter file of the grid not found")
    for key, value in {**(grid.get("set") or {}), **(row.get("set") or {})}.items():
        set_dotted(raw, key, copy.deepcopy(value), f"row {row['name']!r}")
    record = row_dir / "params.yaml"
    write_text(redact(yaml.safe_dump(raw, sort_keys=False, width=4096)), record)
    return parse_config(copy.deepcopy(raw), str(record))


def check_rows(grid: dict) -> list[tuple[dict, Config, Any]]:
    """Every row's Config and pair store, checked before any training: params, pair store, loss names,
    VGG weights.

    Raises:
        ConfigError: a bad override (names the key); FileNotFoundError: no pair store, no VGG weights;
        ValueError: an unknown loss name.
    """
    stores: dict[str, PairStore] = {}
    rows = []
    for row in grid["rows"]:
        cfg = row_config(grid, row, Path(grid.get("out", "ablations")) / slug(row["name"]))
        pairs = Path(row.get("pairs", grid.get("pairs", "data/pairs")))
        if not (pairs / "manifest.json").is_file():
            raise FileNotFoundError(f"row {row['name']!r}: {pairs}: no prepared pair store; run `dvc repro prepare`")
        stores.setdefault(str(pairs), PairStore(pairs))
        kind = row.get("kind", "colorizer")
        roles = {"upscaler": ("upscaler",), "joint": ("joint",), "two_step": ("colorizer", "upscaler")}.get(kind,
                                                                                                         ("colorizer",))
        recipe.check(cfg, roles, adversarial=adversarial(row))
        rows.append((row, cfg, stores[str(pairs)]))
    return rows


def adversarial(row: dict) -> bool:
    """Whether a row runs the adversarial phase: its ``adversarial`` key, else true except for upscalers."""
    return bool(row.get("adversarial", row.get("kind", "colorizer") != "upscaler"))
