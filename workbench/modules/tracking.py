"""Lightning's loggers for a run folder: TensorBoard event files always, MLflow when the settings ask.

The run folder stays the record a run is read back from (metrics.json, history.json, ...); these
loggers copy the same `self.log` metrics to the tools a team already watches. Only rank 0 logs:
the other ranks of a distributed run get no loggers, so one run is one TensorBoard folder and one
MLflow run. The MLflow run's id is kept in the run folder's tracking.json, so a resumed run logs
into the same MLflow run and `finish_run` adds the card and checkpoint to it as artifacts.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, TensorBoardLogger

from workbench.errors import RequestError
from workbench.files import atomic_write
from workbench.modules.distributed import launched_rank
from workbench.modules.tracking_settings import (
    EXPERIMENT_PREFIX,
    TENSORBOARD_DIR,
    TRACKING_FILE,
    artifact_location,
    default_tracking_uri,
)

HEALTH_TIMEOUT_S = 5.0


def run_loggers(run_dir: str | os.PathLike | None, settings: Any, kind: str) -> list[Logger]:
    """The loggers of a run writing into `run_dir` (none without one, and none on ranks other than 0).

    The recipe has called `check_tracking` at its start, before any data was read.
    """
    if run_dir is None or launched_rank() != 0:
        return []
    run_dir = Path(run_dir)
    parameters = _flat_settings(settings)
    tensorboard = TensorBoardLogger(save_dir=run_dir, name=TENSORBOARD_DIR, version="", default_hp_metric=False)
    tensorboard.log_hyperparams(parameters)  # hparams.yaml, rewritten by a resumed attempt
    loggers: list[Logger] = [tensorboard]
    if getattr(settings, "tracking", "none") == "mlflow":
        mlflow, resumed = _mlflow_logger(run_dir, settings.tracking_uri, kind)
        if not resumed:  # MLflow refuses a parameter logged twice with another value (checkpoint_every may change)
            mlflow.log_hyperparams(parameters)
        loggers.append(mlflow)
    return loggers


def check_tracking(settings: Any) -> None:
    """Fail before any data is read when tracking=mlflow names a server nobody answers at.

    MLflow's own client retries an unreachable server for minutes; a health check with a short
    timeout says so in seconds, naming the URI.
    """
    uri = getattr(settings, "tracking_uri", None)
    if getattr(settings, "tracking", "none") != "mlflow" or not uri or not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=HEALTH_TIMEOUT_S) as answer:
            answer.read()
    except (urllib.error.URLError, OSError) as error:
        raise RequestError(f"tracking_uri={uri!r}: no MLflow server answers there ({error}); start one with "
                           "`mlflow server --host 127.0.0.1 --port 5000`, or set tracking='none'") from None


def _read_tracking(run_dir: Path) -> dict[str, Any]:
    """The MLflow run a first attempt started, so that a resumed one goes on logging into it."""
    path = run_dir / TRACKING_FILE
    try:
        return json.loads(path.read_text()).get("mlflow", {})
    except (OSError, ValueError, AttributeError):
        return {}


def finish_loggers(loggers: list[Logger], metrics: dict[str, Any], step: int) -> None:
    """MLflow gets the final evaluation's measures as `final/<name>`; then every logger flushes and closes.

    TensorBoard keeps to curves (a one-point card per final metric would bury them); counts (steps,
    tokens, parameters) are ints, no measure, and MLflow has them among the parameters.
    """
    numbers = {f"final/{k}": v for k, v in metrics.items() if isinstance(v, float) and math.isfinite(v)}
    for logger in loggers:
        if not isinstance(logger, TensorBoardLogger):
            logger.log_metrics(numbers, step=step)
        logger.finalize("success")


def _mlflow_logger(run_dir: Path, tracking_uri: str | None, kind: str) -> tuple[Logger, bool]:
    """The run's MLflow logger, and whether it continues the MLflow run of an earlier attempt."""
    from lightning.pytorch.loggers import MLFlowLogger

    uri = tracking_uri or default_tracking_uri(run_dir.parent)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    before = _read_tracking(run_dir)
    resumed_id = before.get("run_id") if before.get("tracking_uri") == uri else None
    logger = MLFlowLogger(
        experiment_name=EXPERIMENT_PREFIX + kind, run_name=run_dir.name, tracking_uri=uri,
        artifact_location=artifact_location(uri), tags={"workbench.run_dir": str(run_dir.resolve())},
        run_id=resumed_id,
    )
    record = {"tracking_uri": uri, "experiment_name": EXPERIMENT_PREFIX + kind,
              "experiment_id": logger.experiment_id, "run_id": logger.run_id}
    with atomic_write(run_dir / TRACKING_FILE) as staged:
        staged.write_text(json.dumps({"mlflow": record}, indent=1) + "\n")
    return logger, resumed_id is not None


def _flat_settings(settings: Any) -> dict[str, Any]:
    """Settings as MLflow and TensorBoard take parameters: scalars, with lists and dicts as JSON text."""
    return {k: v if v is None or isinstance(v, (bool, int, float, str)) else json.dumps(v)
            for k, v in asdict(settings).items()}
