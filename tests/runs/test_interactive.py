"""Interactive runs, called as a notebook in JupyterLab calls them: open_run at the top, finish_run at the end."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from workbench.runs import format_runs_table, list_runs
from workbench.runs.interactive import RUNS_DIR_VARIABLE, finish_run, open_run
from workbench.runs.outputs import read_json, save_compute_record, save_data_record, save_metrics
from workbench.runs.parameters import validate_parameters
from workbench.runs.spec import load_spec

NAMESPACE = {"output_dir": "", "alpha": 2, "rate": 0.5, "name": "x", "flag": False, "seed": 0}  # ok.ipynb's cell


@pytest.fixture
def in_lab(project: Path, monkeypatch) -> Path:
    """The kernel of notebooks/ok.ipynb as JupyterLab starts it: working directory the notebook's folder."""
    monkeypatch.chdir(project / "notebooks")
    monkeypatch.delenv(RUNS_DIR_VARIABLE, raising=False)
    return project


def notebook_globals() -> dict:
    """globals() after the parameters cell: the parameters, IPython's names, and whatever else was defined."""
    return {**NAMESPACE, "In": ["", "alpha = 2"], "Out": {}, "_": None, "_i1": "alpha = 2", "helper": object()}


def test_papermill_and_workbench_run_pass_output_dir_and_get_it_back(tmp_path: Path):
    out = open_run(str(tmp_path / "run"), "ok", NAMESPACE)
    assert out == tmp_path / "run" and out.is_dir() and list(out.iterdir()) == []  # the runner writes the records
    assert finish_run(out) == out and list(out.iterdir()) == []


def test_an_interactive_run_leaves_the_records_of_a_papermill_run(in_lab: Path):
    namespace = notebook_globals()
    out = open_run(namespace["output_dir"], "ok", namespace)
    try:
        assert out.parent == in_lab / "experiments" / "runs" and out.name.endswith(out.name[-4:])
        params = yaml.safe_load((out / "params.yaml").read_text())
        assert params == {"alpha": 2, "rate": 0.5, "name": "x", "flag": False, "seed": 0, "output_dir": str(out)}

        spec = load_spec(out / "spec.yaml")  # repeats the run with `workbench run`
        assert spec.notebook == in_lab / "notebooks" / "ok.ipynb" and spec.parameters == {
            k: v for k, v in params.items() if k != "output_dir"}
        validate_parameters(spec.notebook, spec.parameters)  # the runner's own check passes

        status = read_json(out / "status.json")
        assert status["status"] == "running" and status["interactive"] is True and status["spec"] is None
        assert status["notebook"] == "notebooks/ok.ipynb" and status["finished"] is None
        environment = read_json(out / "environment.json")
        assert environment["seed"] == 0 and environment["data"] is None and "git" in environment
        (record,) = list_runs(in_lab / "experiments" / "runs")
        assert record.status == "running" and record.interactive  # the kernel holds the lock

        save_data_record(out, {"dataset": "synthetic"})  # what the notebook's cells write
        save_metrics(out, {"val_loss": 1.5})
        save_compute_record(out, {"train_tokens": 100, "train_time_s": 0.5, "train_steps": 2})
    finally:
        assert finish_run(out) == out

    status = read_json(out / "status.json")
    assert status["status"] == "completed" and status["wall_time_s"] >= 0 and status["finished"]
    assert read_json(out / "environment.json")["data"] == {"dataset": "synthetic"}  # recorded again at the end
    card = (out / "MODEL_CARD.md").read_text()
    assert "Run interactive (JupyterLab, `notebooks/ok.ipynb`) · status completed" in card
    assert f".venv/bin/workbench run experiments/runs/{out.name}/spec.yaml" in card
    (record,) = list_runs(in_lab / "experiments" / "runs")
    assert record.status == "completed" and record.interactive and record.spec is None
    lines = format_runs_table([record]).splitlines()
    assert lines[0].split()[:6] == ["run", "spec", "status", "wall", "time", "throughput"]
    assert lines[1].split()[1:3] == ["interactive", "completed"] and "200 tokens/s" in lines[1]


@pytest.mark.slow
def test_a_kernel_that_dies_leaves_a_killed_run(in_lab: Path):
    script = ("from workbench.runs.interactive import open_run; "
              "print(open_run('', 'ok', {'alpha': 3, 'seed': 1, 'elsewhere': 2}))")
    done = subprocess.run([sys.executable, "-c", script], cwd=in_lab / "notebooks", capture_output=True, text=True,
                          check=True)  # exits without finish_run, as a crashed or shut-down kernel does
    out = Path(done.stdout.strip())
    assert yaml.safe_load((out / "params.yaml").read_text()) == {"alpha": 3, "seed": 1, "output_dir": str(out)}
    (record,) = list_runs(in_lab / "experiments" / "runs")
    assert record.run_dir == out and record.status == "killed" and record.interactive


class FakeShell:
    """What interactive.py asks of IPython: post_run_cell callbacks."""

    def __init__(self) -> None:
        self.callbacks = []
        self.events = self

    def register(self, event: str, callback) -> None:
        assert event == "post_run_cell"
        self.callbacks.append(callback)

    def unregister(self, event: str, callback) -> None:
        self.callbacks.remove(callback)

    def run_cell(self, error: BaseException | None = None) -> None:
        result = type("ExecutionResult", (), {"error_in_exec": error, "error_before_exec": None})()
        for callback in list(self.callbacks):
            callback(result)


def test_a_failing_cell_marks_the_run_and_a_rerun_from_the_top_interrupts_it(in_lab: Path, monkeypatch):
    import IPython

    shell = FakeShell()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    first = open_run("", "ok", notebook_globals())
    shell.run_cell()  # a cell that ran fine
    assert read_json(first / "status.json")["status"] == "running"
    shell.run_cell(ValueError("boom from a cell"))
    status = read_json(first / "status.json")
    assert status["status"] == "failed" and status["error"] == "ValueError: boom from a cell"
    assert finish_run(first) == first and read_json(first / "status.json")["status"] == "completed"  # fixed, run on
    assert shell.callbacks == []

    second = open_run("", "ok", notebook_globals())
    third = open_run("", "ok", notebook_globals())  # Run All again before the second finished
    status = read_json(second / "status.json")
    assert status["status"] == "interrupted" and "opened a new run" in status["error"]
    assert len(shell.callbacks) == 1
    shell.run_cell(KeyboardInterrupt())  # the stop button
    assert read_json(third / "status.json")["status"] == "interrupted"
    finish_run(third)
    by_folder = {r.run_dir: r.status for r in list_runs(in_lab / "experiments" / "runs")}
    assert by_folder == {first: "completed", second: "interrupted", third: "completed"}


def test_outside_a_project_it_writes_to_a_temporary_runs_folder(tmp_path: Path, monkeypatch):
    (tmp_path / "lab").mkdir()
    monkeypatch.chdir(tmp_path / "lab")
    monkeypatch.delenv(RUNS_DIR_VARIABLE, raising=False)
    out = open_run("", "nowhere", {"a": 1, "_hidden": 2, "In": [], "obj": object(), "nested": {"b": [1, None]}})
    try:
        assert not out.is_relative_to(tmp_path) and out.parent.name.startswith("workbench-runs-")
        assert yaml.safe_load((out / "params.yaml").read_text()) == {"a": 1, "nested": {"b": [1, None]},
                                                                     "output_dir": str(out)}
        assert not (out / "spec.yaml").exists()  # no notebook file to repeat
        assert read_json(out / "status.json")["notebook"] is None
    finally:
        finish_run(out)
        shutil.rmtree(out.parent)


def test_the_runs_folder_can_be_set_by_environment(in_lab: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv(RUNS_DIR_VARIABLE, str(tmp_path / "elsewhere"))
    out = finish_run(open_run("", "ok", NAMESPACE))
    assert out.parent == tmp_path / "elsewhere"
    spec = yaml.safe_load((out / "spec.yaml").read_text())
    assert spec["notebook"] == str(in_lab / "notebooks" / "ok.ipynb")  # outside the project: a full path


@pytest.mark.slow
def test_the_spec_of_an_interactive_run_repeats_it(in_lab: Path):
    import nbformat

    from workbench.runs.runner import run_spec

    notebook = nbformat.read(in_lab / "notebooks" / "ok.ipynb", as_version=4)
    parameters, body = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    namespace: dict = {}
    exec(parameters, namespace)  # the cells, run in one namespace as a kernel runs them
    namespace["output_dir"] = ""  # the workbench notebooks' default (ok.ipynb's is ".")
    out = open_run(namespace["output_dir"], "ok", namespace)
    namespace["output_dir"] = str(out)  # ok.ipynb writes to output_dir; the workbench's notebooks write to `out`
    exec(body, namespace)
    finish_run(out)

    repeated = run_spec(out / "spec.yaml", runs_dir=in_lab / "experiments" / "runs", log_output=False)
    assert repeated.status == "completed", repeated.error
    assert read_json(repeated.run_dir / "metrics.json") == read_json(out / "metrics.json")
    assert read_json(repeated.run_dir / "status.json").get("interactive") is None
