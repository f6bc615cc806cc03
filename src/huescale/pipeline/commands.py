"""git and DVC as subprocesses in a project checkout: the ``dvc`` executable, the environment a command runs in,
a logged run, DVC remotes, and ablation rows as DVC experiments.

The Prefect flow (:mod:`huescale.pipeline.flow`) runs its ``dvc`` and ``git`` commands through :func:`run_logged`
with its run logger. :func:`rows_as_dvc_experiments` runs the rows of an ablation grid as DVC experiments of the
``ablate_row`` stage (``dvc exp run -S ablation.row=i``), so ``dvc exp show`` lists them with their params and
metrics.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from huescale.pipeline.grid import slug


def dvc_path() -> str:
    """The ``dvc`` executable: the one beside this Python when there is one, else the one on PATH."""
    local = Path(sys.executable).parent / "dvc"
    return str(local) if local.exists() else (shutil.which("dvc") or "dvc")


def project_env(project_dir: str | Path, **extra: str) -> dict[str, str]:
    """The environment of a command in the project: this Python's scripts first on PATH and the project's
    own ``src`` first on PYTHONPATH (stages run the code of the checkout they hash, not another install)."""
    src = Path(project_dir).resolve() / "src"
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""), **extra}
    if (src / "huescale").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH", "")) if p)
    return env


def run_logged(cmd: list[str], project_dir: str | Path, what: str,
               logger: logging.Logger | logging.LoggerAdapter) -> str:
    """Run ``cmd`` in the project and log its output's last lines to ``logger`` (the flow's run logger); returns
    the output.

    Raises:
        RuntimeError: it exited non-zero (the message says ``what`` failed and holds the output's tail).
    """
    logger.info("%s: %s", what, " ".join(cmd))
    res = subprocess.run(cmd, cwd=project_dir, env=project_env(project_dir), capture_output=True, text=True)
    out = (res.stdout + res.stderr).strip()
    for line in out.splitlines()[-20:]:
        if line.split("\r")[-1].strip():
            logger.info(line.split("\r")[-1].strip())
    if res.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {res.returncode}) in {project_dir}: `{' '.join(cmd)}`\n{out[-3000:]}")
    return out


def remote_args(project_dir: str | Path, remote: str, logger: logging.Logger | logging.LoggerAdapter) -> list[str]:
    """``-r NAME`` for a DVC remote given by name (configured in the project) or URL (added to the local,
    uncommitted config as ``huescale-remote``; the ``dvc remote add`` is logged to ``logger``)."""
    listed = subprocess.run([dvc_path(), "remote", "list"], cwd=project_dir, capture_output=True, text=True).stdout
    if remote in listed.split()[0::2]:
        return ["-r", remote]
    run_logged([dvc_path(), "remote", "add", "--local", "--force", "huescale-remote", remote], project_dir,
               "dvc remote add", logger)
    return ["-r", "huescale-remote"]


def rows_as_dvc_experiments(grid_path: Path, grid: dict, parent_run_id: str, progress: bool = False) -> list[dict]:
    """Run each row of a grid as a DVC experiment of the ``ablate_row`` stage: ``dvc exp run -n <grid>-<row>
    -S ablation.grid=... -S ablation.row=<i> -s ablate_row`` (the row's params and metrics are in
    ``dvc exp show``). The rows nest under MLflow run ``parent_run_id`` (passed to the stage as
    ``HUESCALE_PARENT_RUN_ID``). ``params.yaml`` is restored afterwards (``-S`` edits it).

    Returns:
        Each row's result (its ``result.json``), in grid order.

    Raises:
        RuntimeError: ``dvc exp run`` failed (its output's tail in the message).
    """
    params = Path("params.yaml")
    original = params.read_text() if params.is_file() else None
    env = {**os.environ, "HUESCALE_PARENT_RUN_ID": parent_run_id}
    results = []
    try:
        for i, row in enumerate(grid["rows"]):
            name = f"{slug(grid['name'])}-{slug(row['name'])}"
            cmd = [dvc_path(), "exp", "run", "-n", name, "-S", f"ablation.grid={grid_path}", "-S",
                   f"ablation.row={i}", "-s", "ablate_row"]
            res = subprocess.run(cmd, env=env, capture_output=not progress, text=True)
            if res.returncode != 0:
                tail = ((res.stdout or "") + (res.stderr or ""))[-3000:]
                raise RuntimeError(f"row {row['name']!r}: `{' '.join(cmd)}` failed:\n{tail}")
            out = Path(grid.get("out", "ablations")) / slug(row["name"]) / "result.json"
            results.append(json.loads(out.read_text()))
    finally:
        if original is not None:
            params.write_text(original)
    return results
