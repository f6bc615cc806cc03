"""Colorizers side by side on every held-out set of a run, beside gray. Prints JSON (and a markdown table).

    python benchmarks/holdout.py [--holdout data/holdout_pairs] [--model NAME=CKPT ...]
                                 [--decoding NAME=MODE,T,GAIN,ALPHA ...] [--markdown]

Each ``--model`` is a colorizer checkpoint (``shipped`` = the model installed with huescale, ``models/colorizer.pt``
= the run's), decoded as its calibration chose or, with ``--decoding``, another way (the modes of
``huescale.models.colornet.DECODES``, e.g. ``--decoding run=regression,1,1.8,0``). Every one is scored at 64 px
(kind ``colorizer``) with :func:`huescale.evaluation.evaluate.score_row`, the function the ablation rows and the
report use, on the held-out pair stores that ``dvc repro prepare`` made from ``data.holdout`` (photographs training
never read). Per set and model: colourfulness (Hasler & Suesstrunk) of the output and of the truth, their ratio, mean
CIEDE2000 and its ratio to gray's, and the CPU seconds it took.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from huescale.evaluation import evaluate
from huescale.training.checkpoint import load_model


def _load(spec: str) -> torch.nn.Module:
    if spec == "shipped":
        from huescale.inference import shipped

        return shipped.load()[0]
    return load_model(spec)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--holdout", default="data/holdout_pairs")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=CKPT",
                    help="a colorizer checkpoint (or 'shipped'); repeat for several")
    ap.add_argument("--decoding", action="append", default=[], metavar="NAME=MODE,T,GAIN,ALPHA",
                    help="decode model NAME this way instead of its calibrated decoding")
    ap.add_argument("--markdown", action="store_true", help="also print a markdown table")
    args = ap.parse_args()
    models = dict(m.split("=", 1) for m in args.model) or {"run": "models/colorizer.pt"}
    decodings = {name: spec.split(",") for name, spec in (d.split("=", 1) for d in args.decoding)}
    if set(decodings) - set(models):
        ap.error(f"--decoding names {sorted(set(decodings) - set(models))}, not a --model")
    device = torch.device("cpu")
    stores = evaluate.holdout_stores(args.holdout)
    out: dict = {"load_average_1min": round(os.getloadavg()[0], 2), "threads": torch.get_num_threads(), "sets": {}}
    rows = []
    for set_name, store in stores.items():
        gray = evaluate.score_row("colorizer", evaluate.gray_pipeline("colorizer"), store, device, 0.05, fps=False)
        res = {"gray": gray}
        for name, spec in models.items():
            c0 = time.process_time()
            model = _load(spec)
            if name in decodings:
                mode, T, gain, alpha = decodings[name]
                model.set_decoding(mode, T=float(T), gain=float(gain), alpha=float(alpha))
            m = evaluate.score_row("colorizer", evaluate.row_pipeline("colorizer", {"colorizer": model}),
                                   store, device, 0.05, fps=False)
            m["cpu_s"] = round(time.process_time() - c0, 1)
            m["delta_e2000_over_gray"] = m["delta_e2000"] / gray["delta_e2000"]
            res[name] = m
            rows.append((set_name, name, m))
        out["sets"][set_name] = res
    json.dump(out, sys.stdout, indent=2, default=float)
    print()
    if args.markdown:
        print("| held-out set | model | colourfulness / truth's | CIEDE2000 (gray's) | ratio to gray |")
        print("|---|---|---|---|---|")
        for set_name, name, m in rows:
            g = out["sets"][set_name]["gray"]["delta_e2000"]
            print(f"| {set_name} | {name} | {m['colorfulness_ratio']:.2f} | {m['delta_e2000']:.2f} ({g:.2f}) | "
                  f"x{m['delta_e2000_over_gray']:.3f} |")


if __name__ == "__main__":
    main()
