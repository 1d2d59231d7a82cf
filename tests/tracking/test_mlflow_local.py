"""tracking=mlflow without a server: the default store beside the runs folder, resumes, and bad settings."""

import json

import pytest
from mlflow import MlflowClient

from workbench.modules import PretrainSettings
from workbench.modules.finetune_settings import FinetuneSettings
from workbench.modules.tracking import run_loggers
from workbench.modules.tracking_settings import TRACKING_FILE, default_tracking_uri
from workbench.runs.run_folder import RunFolder
from workbench.runs.tracking import log_run_artifacts
from workbench.settings import SettingsError


def test_the_default_store_is_a_sqlite_file_beside_the_runs_folder_and_a_resume_logs_into_the_same_run(tmp_path):
    run_dir = tmp_path / "experiments" / "runs" / "2026-12-03-pretrain-quick"
    run_dir.mkdir(parents=True)
    settings = PretrainSettings.from_dict({"tracking": "mlflow", "seed": 3})
    first = run_loggers(run_dir, settings, "pretrain")
    recorded = RunFolder(run_dir).tracking["mlflow"]
    assert recorded["tracking_uri"] == default_tracking_uri(run_dir.parent)
    assert recorded["tracking_uri"] == f"sqlite:///{tmp_path / 'experiments' / 'mlflow.db'}"
    first[1].log_metrics({"val_loss": 2.5}, step=10)
    first[1].finalize("failed")  # killed part-way: the resumed attempt goes on in the same MLflow run
    again = run_loggers(run_dir, PretrainSettings.from_dict({"tracking": "mlflow", "seed": 3, "checkpoint_every": 7}),
                        "pretrain")
    assert again[1].run_id == recorded["run_id"]
    again[1].log_metrics({"val_loss": 2.0}, step=20)
    client = MlflowClient(recorded["tracking_uri"])
    assert [(m.step, m.value) for m in client.get_metric_history(recorded["run_id"], "val_loss")] == [(10, 2.5),
                                                                                                      (20, 2.0)]
    run = client.get_run(recorded["run_id"])
    assert run.data.params["seed"] == "3" and run.data.params["checkpoint_every"] == "50"  # the first attempt's
    (run_dir / "metrics.json").write_text(json.dumps({"val_loss": 2.0}))
    (run_dir / "checkpoint").mkdir()
    (run_dir / "checkpoint" / "config.json").write_text("{}")
    assert log_run_artifacts(run_dir) == recorded["run_id"]
    assert client.get_run(recorded["run_id"]).info.status == "FINISHED"
    artifacts = {a.path for a in client.list_artifacts(recorded["run_id"])}
    assert {"metrics.json", "checkpoint"} <= artifacts
    assert (tmp_path / "experiments" / "mlflow-artifacts").is_dir()  # beside the store, not ./mlruns


def test_a_run_folder_without_tracking_logs_nothing(tmp_path):
    assert log_run_artifacts(tmp_path) is None
    assert not (tmp_path / TRACKING_FILE).exists()


@pytest.mark.parametrize("settings_class", [PretrainSettings, FinetuneSettings])
def test_tracking_settings_are_checked_before_anything_runs(settings_class):
    with pytest.raises(SettingsError) as caught:
        settings_class.from_dict({"tracking": "wandb"})
    assert "tracking" in str(caught.value) and "mlflow" in str(caught.value)
    with pytest.raises(SettingsError, match=r"tracking_uri='http://x:5000' is set but tracking='none'"):
        settings_class.from_dict({"tracking_uri": "http://x:5000"})
    with pytest.raises(SettingsError, match=r"tracking_uri='mlruns'.*starts with one of http://, https://, sqlite:///"):
        settings_class.from_dict({"tracking": "mlflow", "tracking_uri": "mlruns"})
