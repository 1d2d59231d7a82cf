"""`workbench` CLI: exit codes and what it prints. The notebook runs are real (marked slow)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from workbench.cli import build_parser, main


def notebook(path: Path, parameters: str, body: str) -> None:
    cell = nbformat.v4.new_code_cell(parameters)
    cell.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "workbench", "display_name": "workbench", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """notebooks/{square,fails}.ipynb with specs for each, plus one with a misspelled parameter."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "experiments").mkdir()
    notebook(
        tmp_path / "notebooks" / "square.ipynb",
        'output_dir = "."\nmax_steps = 2\nseed = 0',
        "from workbench.runs.outputs import save_metrics\n"
        'print("step", max_steps)\n'
        'save_metrics(output_dir, {"val_loss": max_steps ** 2 / 10, "steps": max_steps})',
    )
    notebook(tmp_path / "notebooks" / "fails.ipynb", 'output_dir = "."', 'raise RuntimeError("kaput")')
    specs = {
        "square": "notebook: notebooks/square.ipynb\nparameters: {max_steps: 3}\n",
        "fails": "notebook: notebooks/fails.ipynb\n",
        "typo": "notebook: notebooks/square.ipynb\nparameters: {max_step: 3}\n",
    }
    for name, text in specs.items():
        (tmp_path / "experiments" / f"{name}.yaml").write_text(text)
    return tmp_path


@pytest.mark.slow
def test_run_completed_exit_0_streams_output_and_prints_metrics(project: Path, capsys):
    code = main(["run", str(project / "experiments" / "square.yaml"), "-p", "max_steps=5", "--verbose"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "step 5" in out  # the notebook's own output, streamed
    assert "completed: " in out
    run_dir = Path(out.split("run folder: ")[1].splitlines()[0])
    assert run_dir.parent == project / "experiments" / "runs" and (run_dir / "notebook.ipynb").exists()
    assert "metrics: val_loss=2.5  steps=5" in out

    assert main(["runs", "--runs-dir", str(run_dir.parent)]) == 0
    table = capsys.readouterr().out
    assert run_dir.name in table and "completed" in table and "2.5" in table


@pytest.mark.slow
def test_run_shows_a_progress_line_not_papermill_banners(project: Path, capfd):
    code = main(["run", str(project / "experiments" / "square.yaml"), "-p", "max_steps=5"])
    captured = capfd.readouterr()  # file descriptors: the kernel's own stderr included
    assert code == 0, captured.err
    assert "Executing Cell" not in captured.out + captured.err and "step 5" not in captured.out
    assert "without encryption" not in captured.out + captured.err
    assert "cell/s" in captured.err or "s/cell" in captured.err  # tqdm's bar, one per run
    assert "completed: " in captured.out


def test_version_and_examples(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--version"])
    assert capsys.readouterr().out.startswith("workbench ")
    assert main(["--help"]) == 0
    assert "examples:" in capsys.readouterr().out


@pytest.mark.slow
def test_run_failed_exit_1_points_at_the_traceback(project: Path, capsys):
    code = main(["run", str(project / "experiments" / "fails.yaml"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 1
    assert "failed: " in out and "RuntimeError: kaput" in out and "In [3]" in out
    notebook_path = Path(out.split("executed notebook ")[1].strip())
    assert notebook_path.name == "notebook.ipynb" and "kaput" in notebook_path.read_text()
    status = json.loads((notebook_path.parent / "status.json").read_text())
    assert status["status"] == "failed"


def test_bad_parameter_exit_2_with_message_no_traceback(project: Path, capsys):
    code = main(["run", str(project / "experiments" / "typo.yaml")])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown parameter 'max_step' (did you mean 'max_steps'?)" in err
    assert "max_steps: int = 2" in err and "Traceback" not in err
    assert not (project / "experiments" / "runs").exists()


def test_bad_override_and_missing_spec_exit_2(project: Path, capsys):
    assert main(["run", str(project / "experiments" / "square.yaml"), "-p", "max_steps=many"]) == 2
    assert "'max_steps' expects int" in capsys.readouterr().err
    assert main(["run", str(project / "experiments" / "nope.yaml")]) == 2
    assert "spec not found" in capsys.readouterr().err
    assert main(["run", str(project / "experiments" / "square.yaml"), "-p", "no-equals-sign"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_runs_lists_nothing_yet(project: Path, capsys, monkeypatch):
    monkeypatch.chdir(project / "notebooks")  # finds the project root from below
    assert main(["runs"]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"no runs in {project / 'experiments' / 'runs'}; make one with `workbench run ")


def test_usage_errors(capsys):
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "usage: workbench" in capsys.readouterr().out


def test_subprocess_misspelled_parameter_fails_fast(project: Path):
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "run", "experiments/typo.yaml"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.perf_counter() - started
    assert done.returncode == 2, done.stderr
    assert "unknown parameter 'max_step'" in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""
    assert elapsed < 15, f"took {elapsed:.1f}s"


# -- `workbench runs` filters ----------------------------------------------------------------------------------


def fake_run(folder: Path, name: str, spec: str, stage: str, status: str, params: dict, metrics: dict | None = None):
    import yaml

    run_dir = folder / name
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text(json.dumps({
        "run_id": name, "spec": spec, "stage": stage, "status": status, "varied": {},
        "started": f"2025-01-02T10:00:{len(list(folder.iterdir())):02d}+00:00", "wall_time_s": 5.0,
    }))
    (run_dir / "params.yaml").write_text(yaml.safe_dump({"output_dir": str(run_dir), **params}))
    if metrics:
        (run_dir / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture
def listed(tmp_path: Path) -> Path:
    runs_dir = tmp_path / "runs"
    sweep = runs_dir / "20250102-100000-lr-sweep-ab12"
    sweep.mkdir(parents=True)
    (sweep / "plan.json").write_text("{}")
    for i, lr in enumerate([0.001, 0.01, 0.1]):
        fake_run(sweep, f"train-{i:03d}", "lr-sweep", "train", "failed" if lr == 0.1 else "completed",
                 {"learning_rate": lr, "preset": "tiny"}, {"val_loss": 3.0 - i})
    fake_run(runs_dir, "20250103-090000-quick-cd34", "quick", "quick", "completed",
             {"learning_rate": 0.001, "preset": "nano"}, {"val_loss": 2.25})
    return runs_dir


def ids(out: str) -> list[str]:
    return [line.split()[0] for line in out.strip().splitlines()[1:]]


def test_runs_filters_by_spec_stage_status_and_param(listed: Path, capsys):
    base = ["runs", "--runs-dir", str(listed)]
    assert main([*base, "--spec", "lr-sweep", "--status", "completed"]) == 0
    assert ids(capsys.readouterr().out) == ["20250102-100000-lr-sweep-ab12/train-000",
                                            "20250102-100000-lr-sweep-ab12/train-001"]
    assert main([*base, "--param", "learning_rate=1e-3"]) == 0  # YAML reads 1e-3 as text; compared as a number
    assert ids(capsys.readouterr().out) == ["20250102-100000-lr-sweep-ab12/train-000", "20250103-090000-quick-cd34"]
    assert main([*base, "--param", "learning_rate=0.001", "--param", "preset=nano"]) == 0
    assert ids(capsys.readouterr().out) == ["20250103-090000-quick-cd34"]
    assert main([*base, "--stage", "train", "--status", "failed"]) == 0
    assert ids(capsys.readouterr().out) == ["20250102-100000-lr-sweep-ab12/train-002"]
    assert main([*base, "--status", "interrupted"]) == 0
    assert capsys.readouterr().out.strip() == f"no runs in {listed} match the filters"


def test_runs_filter_values_nobody_has_exit_2_listing_what_exists(listed: Path, capsys):
    base = ["runs", "--runs-dir", str(listed)]
    assert main([*base, "--spec", "lr_sweep"]) == 2
    assert capsys.readouterr().err.strip() == "workbench runs: no run of spec 'lr_sweep'; specs: lr-sweep, quick"
    assert main([*base, "--stage", "pretrain"]) == 2
    assert "stages: quick, train" in capsys.readouterr().err
    assert main([*base, "--param", "lr=0.1"]) == 2
    assert "no run has a parameter 'lr'; parameters: learning_rate, output_dir, preset" in capsys.readouterr().err
    assert main([*base, "--param", "preset=small"]) == 2
    assert "no run has preset=small; values of preset: nano, tiny" in capsys.readouterr().err
    assert main([*base, "--status", "done"]) == 2
    assert "invalid choice: 'done'" in capsys.readouterr().err
    assert main([*base, "--param", "learning_rate"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


def test_runs_json_prints_the_matching_records(listed: Path, capsys):
    assert main(["runs", "--runs-dir", str(listed), "--param", "learning_rate=0.01", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["id"] == "20250102-100000-lr-sweep-ab12/train-001" and record["stage"] == "train"
    assert record["params"]["learning_rate"] == 0.01 and record["metrics"] == {"val_loss": 2.0}
    assert Path(record["path"]) == listed / "20250102-100000-lr-sweep-ab12" / "train-001"
