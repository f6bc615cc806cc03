"""Every decoding of a colornet checkpoint on validation and held-out photographs: its frontier. Prints JSON.

    python benchmarks/decoding.py [--checkpoint models/colorizer.pt | --shipped] [--pairs data/pairs]
                                  [--holdout data/holdout_pairs] [--val 256 1000]

For each candidate of ``huescale.training.calibrate.CANDIDATES`` (plus gray): colourfulness / the photographs'
(Hasler & Suesstrunk 2003) and CIEDE2000 / gray's, on the first N photographs of the validation split (tier 64)
for each ``--val`` N, and on every held-out set of the ``--holdout`` store (its test split); plus the decoding
the calibration rule (``calibrate`` params of params.yaml) picks on each validation sample. Run it in a project
where ``dvc repro`` has finished (docs/colour.md, "Decoding", shows its output for the default model).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from huescale.config_io import load_config
    from huescale.data.store import PairStore
    from huescale.inference import shipped
    from huescale.training import calibrate, checkpoint

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="models/colorizer.pt")
    ap.add_argument("--shipped", action="store_true", help="the model shipped with the package instead")
    ap.add_argument("--pairs", default="data/pairs")
    ap.add_argument("--holdout", default="data/holdout_pairs")
    ap.add_argument("--val", type=int, nargs="+", default=[256, 1000])
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args()
    model = shipped.load("cpu")[0] if args.shipped else checkpoint.load_model(args.checkpoint, "cpu")[0]
    if not hasattr(model, "heads"):
        sys.exit(f"{args.checkpoint}: not a colorizer with several decodings (colornet)")
    rule = load_config(args.params).calibrate
    val = PairStore(args.pairs).images("val", "gt64")
    sets = {f"val{n}": val[:n] for n in args.val}
    hold = Path(args.holdout)
    for name in json.loads((hold / "sets.json").read_text())["sets"] if (hold / "sets.json").is_file() else []:
        sets[name] = PairStore(hold / name).images("test", "gt64")
    cpu = time.process_time()
    out: dict = {"model": "shipped" if args.shipped else args.checkpoint, "threads": torch.get_num_threads(),
                 "load_average_1min": round(os.getloadavg()[0], 2),
                 "rule": {"min_colourfulness": rule.min_colourfulness, "max_colourfulness": rule.max_colourfulness},
                 "images": {k: len(v) for k, v in sets.items()}, "sets": {}, "chosen": {}}
    for name, images in sets.items():
        table = calibrate.score_candidates(model, images)
        gray = table["gray"]["delta_e2000"]
        out["sets"][name] = {k: {"colourfulness_ratio": round(v["colourfulness_ratio"], 3),
                                 "delta_e2000_vs_gray": round(v["delta_e2000"] / gray, 3)} for k, v in table.items()}
        if name.startswith("val"):
            out["chosen"][name] = calibrate.choose(table, rule.min_colourfulness, rule.max_colourfulness)
    out["cpu_s"] = round(time.process_time() - cpu, 1)
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
