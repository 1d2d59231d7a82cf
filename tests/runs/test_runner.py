"""Real runs through papermill and the `workbench` kernel (a few seconds each)."""

import json
from pathlib import Path

import nbformat
import pytest
import yaml

from workbench.runs import KernelNotFoundError, list_runs, run_spec
from workbench.runs.runner import create_run_dir

RUN_FILES = {"spec.yaml", "params.yaml", "status.json", "notebook.ipynb", "environment.json", ".lock"}
NOTEBOOK_FILES = {"metrics.json", "data.json"}


@pytest.fixture(scope="module")
def two_runs(module_project: Path):
    """The same spec run twice."""
    spec = module_project / "experiments" / "ok.yaml"
    return [run_spec(spec), run_spec(spec)]


@pytest.mark.slow
def test_run_writes_a_complete_folder(two_runs, module_project: Path):
    result = two_runs[0]
    assert result.status == "completed", result.error
    assert result.run_dir.parent == module_project / "experiments" / "runs"
    assert {p.name for p in result.run_dir.iterdir()} == RUN_FILES | NOTEBOOK_FILES
    original = yaml.safe_load((module_project / "experiments" / "ok.yaml").read_text())
    recorded = yaml.safe_load((result.run_dir / "spec.yaml").read_text())
    assert recorded["parameters"] == original["parameters"] and recorded["notebook"] == original["notebook"]

    status = json.loads((result.run_dir / "status.json").read_text())
    assert status["status"] == "completed" and status["run_id"] == result.run_id == result.run_dir.name
    assert status["spec"] == "ok" and status["error"] is None and status["failed_cell"] is None
    assert status["wall_time_s"] > 0 and status["finished"] >= status["started"]
    assert result.run_id.split("-")[2] == "ok"

    params = yaml.safe_load((result.run_dir / "params.yaml").read_text())
    expected = {"output_dir": str(result.run_dir), "alpha": 2, "rate": 0.5, "name": "x", "flag": False, "seed": 3}
    assert params == expected  # notebook defaults, the spec's values, and the run folder


@pytest.mark.slow
def test_metrics_come_back_from_the_notebook(two_runs):
    metrics = two_runs[0].metrics
    assert metrics["train_loss"] == 1.0 and metrics["steps"] == 2 and metrics["flag"] is False
    assert metrics == json.loads((two_runs[0].run_dir / "metrics.json").read_text())


@pytest.mark.slow
def test_environment_record(two_runs, module_project: Path):
    env = json.loads((two_runs[0].run_dir / "environment.json").read_text())
    assert env["seed"] == 3
    assert env["data"] == {"dataset": "synthetic", "name": "x"}  # the notebook's data.json, after the run
    assert env["packages"]["papermill"] == "2.7.0" and "torch" in env["packages"]
    assert set(env["git"]) == {"commit", "dirty", "branch"}
    assert env["cpu"]["logical_cores"] >= 1 and env["python"]["version"].startswith("3.")
    assert {"model", "family", "model_number", "flags"} <= set(env["cpu"])  # Zen 4 and Zen 5 share a model name
    assert set(env["torch"]) == {"version", "num_threads", "cuda_available", "device_name"}


@pytest.mark.slow
def test_same_spec_twice_same_metrics_distinct_folders(two_runs):
    first, second = two_runs
    assert first.run_dir != second.run_dir
    assert first.metrics == second.metrics
    assert [r.run_id for r in list_runs(first.run_dir.parent)] == [first.run_id, second.run_id]


@pytest.mark.slow
def test_failing_notebook_keeps_the_evidence(project: Path, tmp_path: Path):
    result = run_spec(project / "experiments" / "fails.yaml", runs_dir=tmp_path / "elsewhere")
    assert result.status == "failed"
    assert result.error == "ValueError: boom from the notebook"
    assert result.failed_cell == 3  # parameters, injected parameters, then the cell that raised
    assert result.run_dir.parent == tmp_path / "elsewhere"
    status = json.loads((result.run_dir / "status.json").read_text())
    assert status["status"] == "failed" and status["failed_cell"] == 3
    assert status["error"] == result.error and status["wall_time_s"] is not None
    executed = nbformat.read(result.notebook, as_version=4)
    tracebacks = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert tracebacks and tracebacks[0]["evalue"] == "boom from the notebook"
    assert "boom from the notebook" in result.notebook.read_text()
    assert (result.run_dir / "environment.json").exists() and (result.run_dir / "params.yaml").exists()


def test_missing_kernel_fails_before_any_folder(project: Path, no_kernel):
    with pytest.raises(KernelNotFoundError) as e:
        run_spec(project / "experiments" / "ok.yaml", kernel_name="no-such-kernel-xyz")
    assert "ipykernel install --sys-prefix --name no-such-kernel-xyz" in str(e.value)
    assert "make install" in str(e.value)
    assert not (project / "experiments" / "runs").exists()


def test_unexpected_error_marks_failed_and_says_where(project: Path, monkeypatch):
    import papermill

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(papermill, "execute_notebook", crash)
    with pytest.raises(OSError) as e:
        run_spec(project / "experiments" / "ok.yaml")
    (run_dir,) = (project / "experiments" / "runs").iterdir()
    assert any(str(run_dir) in note for note in e.value.__notes__)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and status["error"] == "OSError: disk full"


def test_interrupt_is_recorded_and_reraised(project: Path, monkeypatch):
    import papermill

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(papermill, "execute_notebook", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_spec(project / "experiments" / "ok.yaml")
    (run_dir,) = (project / "experiments" / "runs").iterdir()
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"


def test_run_dirs_never_collide(tmp_path: Path, monkeypatch):
    import secrets

    suffixes = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(suffixes))
    first = create_run_dir(tmp_path, "spec")
    second = create_run_dir(tmp_path, "spec")
    assert first.name.endswith("-spec-aaaa")
    assert second != first and second.name.endswith("-spec-bbbb")


def test_git_state_of_a_repository(tmp_path: Path):
    import shutil
    import subprocess

    from workbench.runs import git_state

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    assert git_state(tmp_path) == {"commit": None, "dirty": None, "branch": None}
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "-b", "trunk"], cwd=tmp_path, check=True)
    (tmp_path / "a.txt").write_text("a")
    subprocess.run([*git, "add", "a.txt"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "a"], cwd=tmp_path, check=True)
    state = git_state(tmp_path)
    assert len(state["commit"]) == 40 and state["branch"] == "trunk" and state["dirty"] is False
    (tmp_path / "a.txt").write_text("changed")
    assert git_state(tmp_path)["dirty"] is True


@pytest.mark.slow
def test_the_recorded_spec_includes_overrides_and_repeats_the_run(module_project: Path):
    first = run_spec(module_project / "experiments" / "ok.yaml", overrides={"alpha": 5})
    recorded = yaml.safe_load((first.run_dir / "spec.yaml").read_text())
    assert recorded["parameters"]["alpha"] == 5
    again = run_spec(first.run_dir / "spec.yaml")
    assert again.status == "completed" and again.metrics == first.metrics
