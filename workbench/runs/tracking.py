"""What a completed run writes last: its model card, then its records as artifacts of its MLflow run.

Training logged the parameters and curves as it went (modules/tracking.py); the card and the
checkpoint exist only once the notebook has finished, so `workbench run` and `finish_run` add them
here, to the MLflow run named in the folder's tracking.json. Neither a card nor an unreachable
tracking server may fail a run that trained: each problem is a warning naming the folder.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path

from workbench.modules.tracking_settings import EXPERIMENT_PREFIX as _PREFIX
from workbench.modules.tracking_settings import default_tracking_uri
from workbench.runs.model_card import write_model_card
from workbench.runs.outputs import (
    CHECKPOINT_DIR,
    COMPUTE_FILE,
    DATA_FILE,
    ENVIRONMENT_FILE,
    FINETUNED_DIR,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_CARD_FILE,
    PARAMS_FILE,
    SPEC_FILE,
)
from workbench.runs.run_folder import RunFolder

__all__ = ["default_tracking_uri", "finish_records", "format_tracked_runs", "log_run_artifacts", "tracked_runs"]

RECORD_FILES = (MODEL_CARD_FILE, METRICS_FILE, HISTORY_FILE, DATA_FILE, COMPUTE_FILE, ENVIRONMENT_FILE, PARAMS_FILE,
                SPEC_FILE)  # artifacts at the MLflow run's top level; the model folder goes under its own name


def finish_records(run_dir: str | Path, *, stacklevel: int = 2) -> None:
    """Write the model card, then hand card, records and model to the run's tracking server, if it has one."""
    run_dir = Path(run_dir)
    try:
        write_model_card(run_dir)  # training runs only; from the other files, so written last
    except Exception as error:  # noqa: BLE001 - a card that cannot be written must not fail a finished run
        warnings.warn(f"{run_dir}: {MODEL_CARD_FILE} not written ({type(error).__name__}: {error})",
                      stacklevel=stacklevel + 1)
    try:
        log_run_artifacts(run_dir)
    except Exception as error:  # noqa: BLE001 - the run folder has everything; the server can be caught up later
        warnings.warn(f"{run_dir}: artifacts not logged to MLflow ({type(error).__name__}: {error}); the run "
                      "folder has them all", stacklevel=stacklevel + 1)


def log_run_artifacts(run_dir: str | Path) -> str | None:
    """Log the run folder's card, records and model to its MLflow run; the run id, or None if it has none."""
    run_dir = Path(run_dir)
    tracked = (RunFolder(run_dir).tracking or {}).get("mlflow")
    if not isinstance(tracked, dict) or not tracked.get("run_id"):
        return None
    from mlflow import MlflowClient

    client = MlflowClient(tracked["tracking_uri"])
    run_id = tracked["run_id"]
    for name in RECORD_FILES:
        if (run_dir / name).is_file():
            client.log_artifact(run_id, str(run_dir / name))
    for model in (CHECKPOINT_DIR, FINETUNED_DIR):
        if (run_dir / model).is_dir():
            client.log_artifacts(run_id, str(run_dir / model), artifact_path=model)
    client.set_terminated(run_id, "FINISHED")
    return run_id


def tracked_runs(tracking_uri: str) -> list[dict]:
    """The workbench runs an MLflow tracking server holds, newest first, as `workbench runs` lists them."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    experiments = {e.experiment_id: e.name for e in client.search_experiments(filter_string=f"name LIKE '{_PREFIX}%'")}
    if not experiments:
        return []
    rows = []
    for run in client.search_runs(list(experiments), order_by=["attributes.start_time DESC"], max_results=1000):
        rows.append({"source": "mlflow", "id": run.info.run_name, "mlflow_run_id": run.info.run_id,
                     "kind": experiments[run.info.experiment_id].removeprefix(_PREFIX), "status": run.info.status,
                     "started": _iso(run.info.start_time), "path": run.data.tags.get("workbench.run_dir"),
                     "metrics": dict(sorted(run.data.metrics.items())), "tracking_uri": tracking_uri})
    return rows


def format_tracked_runs(rows: list[dict], tracking_uri: str) -> str:
    """A plain table of `tracked_runs`: id, kind, status, started, the final val_loss, the local folder."""
    header = ("run", "kind", "status", "started", "final val_loss", "run folder here")
    lines = [header]
    for row in rows:
        loss = row["metrics"].get("final/val_loss")
        here = "yes" if row["path"] and Path(row["path"]).is_dir() else "no"
        lines.append((row["id"] or row["mlflow_run_id"], row["kind"], row["status"], row["started"] or "-",
                      f"{loss:.4f}" if loss is not None else "-", here))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    body = "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)
    return f"MLflow runs at {tracking_uri}: {len(rows)}\n{body}"


def _iso(milliseconds: int | None) -> str | None:
    if milliseconds is None:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
