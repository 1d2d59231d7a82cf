"""Pipelines and sweeps executed for real: references, parallel jobs, failures kept, dependants skipped."""

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.runs import list_runs, run_spec
from workbench.runs.runner import PipelineResult

pytestmark = pytest.mark.slow

SPEC = """\
name: pipe
stages:
  - name: base
    notebook: notebooks/ok.ipynb
    parameters: {alpha: 2}
  - name: sweep
    notebook: notebooks/flaky.ipynb
    parameters: {upstream: "${base}"}
    sweep:
      grid: {alpha: [1, 2, 3]}
  - name: after
    notebook: notebooks/flaky.ipynb
    parameters: {upstream: "${base}", inputs: "${sweep.runs}"}
"""


@pytest.fixture
def pipeline(project, make_notebook, make_spec):
    make_notebook(
        "flaky.ipynb",
        'output_dir = "."\nupstream = ""\ninputs = []\nalpha = 1\nseed = 0',
        "from workbench.runs.outputs import read_json, save_metrics\n"
        "if alpha == 2:\n    raise RuntimeError('alpha 2 is cursed')\n"
        "base = read_json(upstream + '/metrics.json')\n"
        "save_metrics(output_dir, {'val_loss': base['train_loss'] * alpha, 'inputs': len(inputs)})",
    )
    return make_spec("pipe.yaml", SPEC)


def test_a_failure_is_kept_its_dependants_skipped_and_the_rest_complete(pipeline, capsys):
    result = run_spec(pipeline, jobs=2)
    assert isinstance(result, PipelineResult) and result.status == "failed"
    statuses = {r.run_dir.name: r.status for r in result.results}
    assert statuses == {"base": "completed", "sweep-000": "completed", "sweep-001": "failed",
                        "sweep-002": "completed", "after": "skipped"}
    failed = result.run_dir / "sweep-001"
    assert "alpha 2 is cursed" in (failed / "notebook.ipynb").read_text()
    assert json.loads((failed / "status.json").read_text())["varied"] == {"alpha": 2}
    completed = json.loads((result.run_dir / "sweep-002" / "metrics.json").read_text())
    assert completed["val_loss"] == (2 * 0.5) * 3  # base's train_loss is alpha * rate
    assert (result.run_dir / "plan.json").is_file() and (result.run_dir / "spec.yaml").is_file()
    listed = {record.run_id: record.status for record in list_runs(result.run_dir.parent)}
    assert listed[f"{result.run_id}/sweep-001"] == "failed" and len(listed) == 5


def test_the_command_line_reports_the_sweep_and_exits_non_zero(pipeline, capsys):
    assert main(["run", str(pipeline), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "3 of 5 runs completed" in out
    assert "failed sweep-001: traceback in" in out and "skipped after" in out


def test_dry_run_prints_the_plan_and_executes_nothing(pipeline, capsys, no_kernel):
    assert main(["run", str(pipeline), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pipe: 5 run(s) in 3 stage(s)")
    assert "  sweep-002: alpha=3" in out
    assert not (pipeline.parent / "runs").exists()


def test_parallel_runs_start_in_the_project_root_and_leave_the_callers_directory_alone(
        project, make_notebook, make_spec, tmp_path, monkeypatch):
    """papermill's cwd= chdirs the whole process; two runs in two threads raced on it and left the
    caller in the project folder (CI's device-check test then lost its working directory)."""
    make_notebook("where.ipynb", 'output_dir = "."\nalpha = 1\nseed = 0',
                  "import os, pathlib\npathlib.Path(output_dir, 'cwd.txt').write_text(os.getcwd())")
    spec = make_spec("where.yaml", "name: where\nnotebook: notebooks/where.ipynb\nsweep:\n  grid: {alpha: [1, 2, 3]}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run_spec(spec, jobs=2)
    assert result.status == "completed"
    assert Path.cwd() == elsewhere
    assert {(r.run_dir / "cwd.txt").read_text() for r in result.results} == {str(project.resolve())}
