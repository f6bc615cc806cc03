"""Prefect entry point for scheduled huescale retraining (see huescale.orchestration).

    python flows/retrain.py run   [--project .] [--stages train evaluate] [--force]
    python flows/retrain.py serve [--project .] [--cron "0 3 * * *"] [--name nightly]
    python flows/retrain.py deploy --pool gpu [--project .] [--cron ...] [--name nightly-gpu]

``serve`` runs a long-lived process that executes scheduled runs on this
machine; ``deploy`` registers a deployment on a work pool (start workers with
``prefect worker start --pool gpu`` on GPU machines).
"""

from __future__ import annotations

import argparse
import os

from huescale.orchestration import retrain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "serve", "deploy"])
    ap.add_argument("--project", default=".", help="huescale checkout to retrain (default: .)")
    ap.add_argument("--stages", nargs="*", default=None)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--cron", default="0 3 * * *", help="schedule for serve/deploy (default: 03:00 daily)")
    ap.add_argument("--name", default="nightly")
    ap.add_argument("--pool", default="gpu", help="work pool for deploy")
    args = ap.parse_args()
    params = {"project_dir": os.path.abspath(args.project), "stages": args.stages, "force": args.force}
    if args.command == "run":
        print(retrain(**params))
    elif args.command == "serve":
        retrain.serve(name=args.name, cron=args.cron, parameters=params)
    else:
        retrain.from_source(source=os.path.abspath(os.path.dirname(__file__)), entrypoint="retrain.py:retrain").deploy(
            name=args.name, work_pool_name=args.pool, cron=args.cron, parameters=params)


if __name__ == "__main__":
    main()
