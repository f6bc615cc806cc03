"""The champion: the registered colorizer that ``huescale colorize --model champion`` loads. One module decides,
registers and loads it (the Prefect flow, ``huescale ablate`` and the CLI all come here).

The MLflow model ``huescale-colorizer`` has one version per promoted colorizer; the alias ``champion`` points at
the best. A version's source is the ``champion`` artifact folder of the run that registered it, and its tag
``checkpoint`` names the file in that folder.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from huescale import tracking
from huescale.redact import redact
from huescale.training import checkpoint
from huescale.training.scoring import mean_l1
from huescale.training.tasks import COLORIZATION

tracking.quiet_env()
import mlflow  # noqa: E402  (after quiet_env: no telemetry, no progress bars)
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

NAME = "huescale-colorizer"


class RegistryError(RuntimeError):
    """The MLflow model registry could not be read (not the same as "no champion"); names the tracking URI."""


def _not_found(exc: Exception) -> bool:
    """Whether an MLflow error says the registered model, or its alias, does not exist."""
    code = getattr(exc, "error_code", "")
    text = str(exc)
    return code == "RESOURCE_DOES_NOT_EXIST" or (
        code == "INVALID_PARAMETER_VALUE" and "alias" in text and "not found" in text)


def current(name: str = NAME):
    """The model version with alias ``champion`` of registered model ``name``, or None when there is none.

    Only "not found" (the registered model or its ``champion`` alias does not exist) means no champion.

    Args:
        name: the registered model (in the registry of MLflow's current tracking URI).

    Raises:
        RegistryError: any other failure (a database that cannot be read, an unreachable tracking server):
            the message names the tracking URI; never taken as "no champion" (which would promote).
    """
    try:
        return MlflowClient().get_model_version_by_alias(name, "champion")
    except MlflowException as exc:
        if _not_found(exc):
            return None
        error: Exception = exc
    except Exception as exc:  # noqa: BLE001 - the store's own errors (sqlalchemy, alembic, OSError)
        error = exc
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    raise RegistryError(f"cannot read the MLflow model registry at {mlflow.get_tracking_uri()} to find "
                        f"{name}@champion ({type(error).__name__}: {first[:300]}); fix tracking.uri or the "
                        "database, or start the tracking server") from error


def register(checkpoint: str | Path, run_id: str, val_l1: float, name: str = NAME) -> str:
    """Log ``checkpoint`` to ``run_id``, register it as a new version of ``name`` and alias it ``champion``.

    Returns:
        The new model version (a string number).
    """
    client = MlflowClient()
    client.log_artifact(run_id, str(checkpoint), "champion")
    try:
        client.create_registered_model(name, description="huescale colorizer (L -> ab); alias champion = best")
    except MlflowException:
        pass  # already exists
    source = f"{client.get_run(run_id).info.artifact_uri}/champion"
    mv = client.create_model_version(name, source=source, run_id=run_id,
                                     tags={"val_l1": f"{val_l1:.6f}", "checkpoint": Path(checkpoint).name})
    client.set_registered_model_alias(name, "champion", mv.version)
    return mv.version


def download(mv, dst: str | Path) -> Path:
    """The checkpoint file of champion model version ``mv`` (an MLflow ``ModelVersion``), downloaded into ``dst``.

    Raises:
        huescale.training.checkpoint.CheckpointError: the version's artifacts hold no ``.pt`` checkpoint.
    """
    local = Path(MlflowClient().download_artifacts(mv.run_id, "champion", str(dst))) if mv.run_id else \
        Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=str(dst)))
    tagged = (mv.tags or {}).get("checkpoint")  # the file this version registered (a run may hold several)
    files = [local / tagged] if tagged and (local / tagged).is_file() else sorted(local.glob("*.pt"))
    if not files:
        raise checkpoint.CheckpointError(f"{mv.name}@champion (version {mv.version}, run {mv.run_id}): no .pt "
                                         "checkpoint under its 'champion' artifacts")
    return files[0]


def score(candidate: str | Path, val_set) -> float:
    """The champion rule's score of colorizer checkpoint ``candidate``: the mean L1 of its decoded ab (network
    units, ab / 110, lower is better) on ``val_set`` (a tier-64 :class:`PairDataset`), the figure :func:`decide`
    compares. Every choice between colorizers that ends in :func:`decide` (the ablation grid's best row
    included) ranks them by this score, never by a phase's own validation objective (a classification
    colorizer's is its cross-entropy, not comparable with an L1 row's).

    Raises:
        huescale.training.checkpoint.CheckpointError: the checkpoint is unreadable.
    """
    model, _ = checkpoint.load_model(candidate)
    return mean_l1(model, COLORIZATION, val_set)


def decide(candidate: str | Path, run_id: str, val_set, name: str = NAME) -> dict:
    """The one champion rule, used by the Prefect flow (:func:`huescale.pipeline.flow.promote_champion`) and
    ``huescale ablate``: the
    colorizer checkpoint ``candidate`` becomes ``<name>@champion`` only if there is no champion yet or its
    mean L1 on ``val_set`` is strictly lower than the current champion's on the same ``val_set`` (equal: keep).

    Args:
        candidate: a colorizer checkpoint (:func:`huescale.training.checkpoint.save_model`).
        run_id: the MLflow run the new version is registered from (its checkpoint is logged there).
        val_set: the validation split both models are scored on (a tier-64 :class:`PairDataset`).
        name: the registered model.

    Returns:
        ``{"promoted": bool, "new_val_l1": float, "champion_val_l1": float | None, "version": str | None}``
        (``version``: the new version when promoted).

    Raises:
        RegistryError: the registry cannot be read (never taken as "no champion").
        huescale.training.checkpoint.CheckpointError: a checkpoint (the candidate's or the champion's) is unreadable.
    """
    mv = current(name)  # first: an unreadable registry fails before any scoring
    new_l1 = score(candidate, val_set)
    champ_l1 = None
    if mv is not None:
        with tempfile.TemporaryDirectory() as tmp:
            champ_l1 = score(download(mv, tmp), val_set)
    result: dict = {"promoted": False, "new_val_l1": new_l1, "champion_val_l1": champ_l1, "version": None}
    if champ_l1 is None or new_l1 < champ_l1:
        result.update(promoted=True, version=register(candidate, run_id, new_l1, name))
    return result


def load(tracking_uri: str, dst: str | Path, name: str = NAME) -> Path:
    """Download the checkpoint of MLflow model ``name`` alias ``champion`` into ``dst``; return its path.

    ``huescale colorize --model champion`` uses it; the version is the one :func:`register` made.

    Raises:
        FileNotFoundError: a ``sqlite:///`` tracking database that does not exist.
        LookupError: no model ``name`` with alias ``champion`` (says how to make one).
    """
    prefix = "sqlite:///"
    if tracking_uri.startswith(prefix) and not Path(tracking_uri[len(prefix):]).is_file():
        raise FileNotFoundError(f"MLflow tracking database {tracking_uri[len(prefix):]} not found; "
                                "pass --tracking-uri or run the pipeline first")
    mlflow.set_tracking_uri(tracking_uri)
    mv = current(name)
    if mv is None:
        raise LookupError(f"no MLflow model {name!r} with alias 'champion' at {redact(tracking_uri)}; run the retrain "
                          "flow (python flows/retrain.py run) to register one, or pass --checkpoint")
    return download(mv, dst)
