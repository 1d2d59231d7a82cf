"""The two settings that say where a run is tracked besides its run folder, written once for every recipe.

As in scale_settings.py, each is a function returning a fresh `setting(...)`, so every recipe's
settings declare the same name, type, default and help. TensorBoard needs no setting: every run
writes its event files into its own run folder. The names and addresses both the training side
(modules/tracking.py) and the run-folder side (runs/tracking.py) use are here too, free of torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from workbench.settings import setting

TRACKING_CHOICES = ("none", "mlflow")
URI_SCHEMES = ("http://", "https://", "sqlite:///", "postgresql://", "mysql://", "databricks")
TRACKING_FILE_DB = "mlflow.db"  # the default store's file, beside the runs folder (experiments/mlflow.db)
TENSORBOARD_DIR = "tensorboard"  # in the run folder: `tensorboard --logdir experiments/runs` shows every run
TRACKING_FILE = "tracking.json"  # in the run folder: where the run was tracked besides it
ARTIFACTS_DIR = "mlflow-artifacts"  # beside a local sqlite store: the artifacts of its runs
EXPERIMENT_PREFIX = "workbench/"  # MLflow experiment per run kind: workbench/pretrain, workbench/finetune, ...


def tracking_setting():
    return setting("none", "none | mlflow: also log the parameters, curves, final metrics, model card and "
                   "checkpoint to an MLflow tracking server (TensorBoard event files go into the run folder "
                   "either way)", choices=TRACKING_CHOICES,
                   section="tracking (where else the run is recorded; neither changes what is learned)")


def tracking_uri_setting():
    return setting(None, "the MLflow tracking URI, for tracking=mlflow: http://host:5000 for a server, "
                   f"sqlite:///path.db for a local store; None = sqlite {TRACKING_FILE_DB} beside the runs "
                   f"folder (experiments/{TRACKING_FILE_DB})")


def tracking_problems(tracking: str, tracking_uri: str | None) -> Iterator[str]:
    """A tracking URI MLflow would refuse or that nothing would use, said before the run starts."""
    if tracking_uri is not None and tracking == "none":
        yield f"tracking_uri={tracking_uri!r} is set but tracking='none'; set tracking='mlflow' to use it"
    if tracking_uri is not None and not tracking_uri.startswith(URI_SCHEMES):
        yield (f"tracking_uri={tracking_uri!r} is not a tracking URI MLflow reads here; it starts with one of "
               f"{', '.join(URI_SCHEMES)} (MLflow 3 refuses plain folders: its file store is in maintenance mode)")



def default_tracking_uri(runs_dir: str | Path) -> str:
    """sqlite:///<runs folder's parent>/mlflow.db: experiments/mlflow.db for runs in experiments/runs."""
    return f"sqlite:///{Path(runs_dir).resolve().parent / TRACKING_FILE_DB}"


def artifact_location(tracking_uri: str) -> str | None:
    """Beside a sqlite store, its artifacts folder (MLflow's default is ./mlruns wherever Python runs)."""
    if tracking_uri.startswith("sqlite:///"):
        return str(Path(tracking_uri.removeprefix("sqlite:///")).parent / ARTIFACTS_DIR)
    return None  # a server keeps its own
