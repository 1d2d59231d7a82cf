"""Inputs that can't hurt: no code from YAML, no files outside the runs folder, no two runs in one folder."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.runs.plan import make_plan
from workbench.runs.spec import SpecError, load_spec

WORKBENCH = Path(sys.executable).parent / "workbench"


def test_yaml_tags_that_build_python_objects_are_refused_not_run(make_spec, tmp_path):
    marker = tmp_path / "pwned"
    path = make_spec("evil.yaml", (
        "notebook: notebooks/ok.ipynb\n"
        f"parameters:\n  name: !!python/object/apply:os.system ['touch {marker}']\n"
    ))
    with pytest.raises(SpecError):
        load_spec(path)
    assert not marker.exists()


@pytest.mark.parametrize("stage_name", ["../escape", "a/b", "..", "/abs"])
def test_stage_names_cannot_leave_the_experiment_folder(make_spec, stage_name):
    path = make_spec("stages.yaml", (
        f"stages:\n  - name: '{stage_name}'\n    notebook: notebooks/ok.ipynb\n    seeds: [0, 1]\n"
    ))
    with pytest.raises(SpecError, match="may use only letters, digits"):
        load_spec(path)


def test_every_planned_folder_lies_inside_the_experiment_folder(make_spec, tmp_path):
    path = make_spec("sweep.yaml", (
        "stages:\n"
        "  - name: a.b-c_d\n    notebook: notebooks/ok.ipynb\n    sweep: {grid: {alpha: [1, 2]}}\n"
        "  - name: single\n    notebook: notebooks/ok.ipynb\n"
    ))
    root = (tmp_path / "runs" / "x").resolve()
    for run in make_plan(load_spec(path), root).runs:
        assert run.folder.resolve().parent == root


def test_two_processes_started_at_once_on_one_spec_get_their_own_folders(project):
    spec = project / "experiments" / "ok.yaml"
    command = [str(WORKBENCH), "run", str(spec), "--quiet"]
    both = [subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    folders = sorted((project / "experiments" / "runs").iterdir())
    assert len(folders) == 2
    for folder in folders:
        status = json.loads((folder / "status.json").read_text())
        assert status["status"] == "completed" and status["run_id"] == folder.name
        assert json.loads((folder / "metrics.json").read_text())["steps"] == 2
