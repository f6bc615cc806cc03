#!/usr/bin/env bash
# Does a refactor change results? Runs the same reduced-budget `dvc repro` (real photographs of
# ../shared/data, the default semantic colorizer at its smallest working size, fp32, FID off) in clean clones
# of two commits and compares metrics.json (timings excluded) and every model's weights, tensor by tensor.
#
#   bash scripts/same_results.sh BEFORE AFTER        # e.g. 9806d1e HEAD: ~3 min each on 2 cores
#
# Exit status 0 when both agree to the last digit, 1 otherwise. HUESCALE_TEST_DATA overrides ../shared/data.
set -euo pipefail
repo=$(git rev-parse --show-toplevel)
data=${HUESCALE_TEST_DATA:-$repo/../shared/data}
py=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DVC_NO_ANALYTICS=1 MLFLOW_DISABLE_TELEMETRY=true PATH="$(dirname "$py"):$PATH"
for side in before after; do
  commit=$([ "$side" = before ] && echo "$1" || echo "$2")
  d=$work/$side
  git clone -q "$repo" "$d" && git -C "$d" checkout -q "$(git -C "$repo" rev-parse "$commit")"
  "$py" - "$d" "$data" <<'PY'
import sys
from pathlib import Path

import yaml

work, s = Path(sys.argv[1]), Path(sys.argv[2]).resolve()
p = yaml.safe_load((work / "params.yaml").read_text())
p["data"].update(source="folder", folders=[str(s / "imagenet_sample")], n_images=240,
                 holdout={"bsds500_test": str(s / "bsds500/test")}, holdout_images=24)
for k in ("colorizer", "upscaler"):
    p["pretrain"][k].update(epochs=2, max_batches=6)
p["pretrain"]["finetune"].update(max_batches=6)
p["model"]["colorizer"]["kwargs"].update(size=64, decoder_channels=[32, 24, 16, 16], convs=1, global_dim=16)
p["train"].update(epochs=2, max_batches=6)
p["evaluate"].update(fid=False)
p["runtime"].update(amp="off", threads=2)
p["benchmark"] = {"sets": {"Set5": str(s / "benchmarks/Set5/GTmod12")}, "lr_check": {}, "samples": 1}
(work / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
PY
  echo "$side ($commit): dvc repro ..."
  (cd "$d" && PYTHONPATH="$d/src" HUESCALE_CACHE="$work/cache-$side" dvc repro > "$work/$side.log" 2>&1) \
    || { tail -30 "$work/$side.log"; exit 1; }
done
"$py" - "$work/before" "$work/after" <<'PY'
import json
import sys
from pathlib import Path

import torch

a, b = Path(sys.argv[1]), Path(sys.argv[2])
TIMING = ("fps", "wall_s", "cpu_s", "seconds", "load_average", "img_per_s")


def walk(x, y, path=""):
    if isinstance(x, dict) and isinstance(y, dict):
        return [d for k in sorted(set(x) | set(y)) if not any(t in k for t in TIMING)
                for d in walk(x.get(k), y.get(k), f"{path}.{k}")]
    return [] if x == y else [(path, x, y)]


diffs = walk(json.loads((a / "metrics.json").read_text()), json.loads((b / "metrics.json").read_text()))
print("metrics.json (timings excluded):", "identical" if not diffs else f"{len(diffs)} differences, e.g. {diffs[:5]}")
same = not diffs
for pt in sorted((a / "models").glob("*.pt")):
    x = torch.load(pt, weights_only=True, map_location="cpu")["state_dict"]
    y = torch.load(b / "models" / pt.name, weights_only=True, map_location="cpu")["state_dict"]
    ok = x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    same &= ok
    print(f"models/{pt.name}: {len(x)} tensors", "identical" if ok else "DIFFER")
sys.exit(0 if same else 1)
PY
