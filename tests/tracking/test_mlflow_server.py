"""tracking=mlflow against a real `mlflow server` on 127.0.0.1: the quick spec logs to it, MLflow reads it back.

The server is MLflow's own (`mlflow server`, a sqlite store and an artifact folder in tmp_path) at a
free port; the run goes through `workbench run`, as an unattended run would; everything is read back
through `MlflowClient`, compared with what the run folder holds, and the server is stopped at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient
from process_groups import stop_group

from workbench.cli import main
from workbench.runs import run_spec

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "experiments" / "pretrain-quick.yaml"
STARTUP_S = 120  # a cold `mlflow server` on a busy 2-core machine takes ~10-20 s

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real MLflow tracking server; its URI. Stopped (the whole process group) after the module."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not come up at {uri}:\n{(root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        stop_group(process, timeout=30)
        log.close()


@pytest.fixture(scope="module")
def tracked_run(server, tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    result = run_spec(QUICK, runs_dir=runs_dir, overrides={"tracking": "mlflow", "tracking_uri": server})
    assert result.status == "completed", result.error
    return runs_dir, Path(result.run_dir)


def test_the_quick_spec_logs_parameters_curves_and_final_metrics_to_the_server(server, tracked_run):
    _, run_dir = tracked_run
    recorded = json.loads((run_dir / "tracking.json").read_text())["mlflow"]
    assert recorded["tracking_uri"] == server
    client = MlflowClient(server)
    run = client.get_run(recorded["run_id"])
    assert run.info.run_name == run_dir.name and run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "workbench/pretrain"
    assert run.data.params["preset"] == "tiny" and run.data.params["max_steps"] == "30"
    assert run.data.params["seed"] == "0" and run.data.params["tracking"] == "mlflow"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert run.data.metrics["final/val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-6)
    history = json.loads((run_dir / "history.json").read_text())
    val = [(row["step"], row["val_loss"]) for row in history if "val_loss" in row]
    logged = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_loss")]
    assert [s for s, _ in logged] == [s for s, _ in val] == [15, 30]
    assert [v for _, v in logged] == pytest.approx([v for _, v in val], rel=1e-6)
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) > 1


def test_the_card_records_and_checkpoint_are_artifacts_byte_for_byte(server, tracked_run, tmp_path):
    _, run_dir = tracked_run
    run_id = json.loads((run_dir / "tracking.json").read_text())["mlflow"]["run_id"]
    client = MlflowClient(server)
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"MODEL_CARD.md", "metrics.json", "data.json", "params.yaml", "checkpoint"} <= top
    fetched = Path(client.download_artifacts(run_id, "", str(tmp_path)))
    for name in ("MODEL_CARD.md", "checkpoint/model.safetensors", "checkpoint/config.json"):
        assert (fetched / name).read_bytes() == (run_dir / name).read_bytes(), name


def test_workbench_runs_lists_the_servers_runs_beside_the_local_ones(server, tracked_run):
    runs_dir, run_dir = tracked_run
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["runs", "--runs-dir", str(runs_dir), "--tracking-uri", server]) == 0
    text = out.getvalue()
    assert f"MLflow runs at {server}: 1" in text
    (line,) = [line for line in text.splitlines() if line.startswith(run_dir.name) and "FINISHED" in line]
    assert "pretrain" in line and line.rstrip().endswith("yes")  # the run folder is here too
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["runs", "--runs-dir", str(runs_dir), "--tracking-uri", server, "--json"]) == 0
    rows = json.loads(out.getvalue())
    assert [r["source"] for r in rows] == ["local", "mlflow"]
    assert rows[1]["id"] == rows[0]["id"] == run_dir.name and rows[1]["path"] == rows[0]["path"]


def test_a_server_nobody_answers_at_fails_before_any_data_is_read(tmp_path):
    from workbench.errors import RequestError
    from workbench.modules import pretrain

    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RequestError, match=r"no MLflow server answers there.*tracking='none'"):
        pretrain({"tracking": "mlflow", "tracking_uri": dead}, printer=None, run_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written, no MLflow run started
