"""Prefect entry point for scheduled huescale retraining (see huescale.pipeline.flow).

    python flows/retrain.py run   [--project .] [--stages train evaluate] [--force] [SYNC]
    python flows/retrain.py serve [--project .] [--cron "0 3 * * *"] [--name nightly] [SYNC]
    python flows/retrain.py deploy --pool gpu [--repo URL] [--branch B] [--cron ...] [--name nightly-gpu] [SYNC]

    SYNC: [--dvc-remote NAME|URL] [--tracking-uri http://mlflow:5000] [--git-push]

``serve`` runs a long-lived process that executes scheduled runs on this
machine; ``deploy`` registers a deployment on a work pool whose workers
(``prefect worker start --pool gpu``) may be other machines: its source is the
git repository (``--repo``, default this checkout's ``origin``; ``--branch``,
default the current one), cloned by the worker for each run. There the flow
pulls data and models from the DVC remote, pushes its outputs back, commits
``dvc.lock`` and the metrics to the branch (``--git-push``) and logs to the MLflow
server (``--tracking-uri``). A checkout without ``origin`` deploys this folder,
which only workers on this machine can reach.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
if (SRC / "huescale").is_dir() and str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))  # a worker's clone runs its own code, whatever else is installed

from huescale.pipeline.flow import retrain  # noqa: E402


def _git(project: str, *args: str) -> str:
    res = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else ""


def main() -> None:
    """Parse the command line and run, serve or deploy the flow.

    Raises:
        SystemExit: bad arguments (argparse), or ``--branch`` given without a git repository to deploy.
    """
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "serve", "deploy"])
    ap.add_argument("--project", default=".", help="huescale checkout to retrain (default: .)")
    ap.add_argument("--stages", nargs="*", default=None)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--cron", default="0 3 * * *", help="schedule for serve/deploy (default: 03:00 daily)")
    ap.add_argument("--name", default="nightly")
    ap.add_argument("--pool", default="gpu", help="work pool for deploy")
    ap.add_argument("--repo", default=None,
                    help="deploy: git URL the workers clone (default: this checkout's origin)")
    ap.add_argument("--branch", default=None, help="deploy: branch to run (default: the checked-out one)")
    ap.add_argument("--dvc-remote", default=None,
                    help="DVC remote (name or URL): dvc pull before the stages, dvc push after")
    ap.add_argument("--tracking-uri", default=None,
                    help="MLflow tracking URI for the runs and the champion, e.g. http://mlflow:5000")
    ap.add_argument("--git-push", action="store_true",
                    help="commit dvc.lock and the metrics and push them to the branch after the run")
    args = ap.parse_args()
    project = os.path.abspath(args.project)
    params = {"project_dir": project, "stages": args.stages, "force": args.force, "dvc_remote": args.dvc_remote,
              "tracking_uri": args.tracking_uri, "git_push": args.git_push}
    if args.command == "run":
        print(retrain(**params))
    elif args.command == "serve":
        retrain.serve(name=args.name, cron=args.cron, parameters=params)
    else:
        deploy(args, params, project)


def deploy(args: argparse.Namespace, params: dict, project: str) -> None:
    """Register the deployment on work pool ``args.pool`` with the cron schedule.

    Its source is the git repository (``args.repo`` or the ``origin`` of ``project``) at ``args.branch``
    (default: the current branch), and the flow runs in the worker's clone of it (``project_dir=.``).
    Without a repository it falls back to this folder (workers on this machine only).

    Raises:
        SystemExit: ``--branch`` without a repository, or a detached HEAD without ``--branch``.
    """
    from prefect.runner.storage import GitRepository

    repo = args.repo or _git(project, "remote", "get-url", "origin")
    if not repo:
        if args.branch:
            sys.exit(f"--branch {args.branch}: {project} has no git remote 'origin'; pass --repo URL")
        print(f"note: {project} has no git remote 'origin' (pass --repo URL): deploying this folder, "
              "which only workers on this machine can run", file=sys.stderr)
        source = retrain.from_source(source=str(Path(__file__).resolve().parent), entrypoint="retrain.py:retrain")
    else:
        branch = args.branch or _git(project, "rev-parse", "--abbrev-ref", "HEAD")
        if not branch or branch == "HEAD":
            sys.exit(f"{project}: HEAD is detached; pass --branch NAME (the branch the workers run)")
        source = retrain.from_source(source=GitRepository(url=repo, branch=branch),
                                     entrypoint="flows/retrain.py:retrain")  # relative to the repository
        params = {**params, "project_dir": "."}  # the worker's clone
    source.deploy(name=args.name, work_pool_name=args.pool, cron=args.cron, parameters=params)


if __name__ == "__main__":
    main()
