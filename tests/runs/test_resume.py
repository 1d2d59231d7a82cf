"""--resume: completed runs are kept, the others run again in their folders; killed runs are told apart."""

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.runs.lock import RunBusyError, hold_run_lock
from workbench.runs.resume import ResumeError, run_status
from workbench.runs.runner import PipelineResult, run_spec

# Fails on its first attempt in a folder, succeeds on the next: a crash that a rerun gets past.
FLAKY_PARAMETERS = 'output_dir = "."\nseed = 0\nflaky = True'
FLAKY_BODY = """\
from pathlib import Path
from workbench.runs.outputs import save_metrics

marker = Path(output_dir) / "attempted"
first = not marker.exists()
marker.touch()
if flaky and first:
    raise RuntimeError("first attempt dies")
save_metrics(output_dir, {"val_loss": seed + 0.5})
"""


@pytest.fixture
def runs(project):
    return project / "experiments" / "runs"


@pytest.fixture
def flaky(make_notebook, make_spec):
    make_notebook("flaky.ipynb", FLAKY_PARAMETERS, FLAKY_BODY)
    single = make_spec("flaky.yaml", "notebook: notebooks/flaky.ipynb\nparameters: {seed: 1}\n")
    sweep = make_spec("flaky-sweep.yaml", (
        "notebook: notebooks/flaky.ipynb\n"
        "sweep:\n  list:\n    - {flaky: false}\n    - {flaky: true}\n"
        "seeds: [0, 1]\n"
    ))
    return single, sweep


def status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def test_a_failed_run_resumes_in_its_folder_and_a_completed_one_is_never_rerun(flaky, runs):
    single, _ = flaky
    first = run_spec(single, runs_dir=runs)
    assert first.status == "failed"

    second = run_spec(single, runs_dir=runs, resume=True)
    assert second.status == "completed" and second.run_dir == first.run_dir
    assert status(second.run_dir)["attempt"] == 2
    assert (second.run_dir / "notebook.attempt-1.ipynb").exists()  # the failed attempt's evidence is kept
    finished = status(second.run_dir)["finished"]

    third = run_spec(single, runs_dir=runs, resume=True)
    assert third.status == "completed" and third.metrics == {"val_loss": 1.5}
    assert status(third.run_dir)["finished"] == finished  # not executed again
    assert sorted(p.name for p in runs.iterdir()) == [first.run_dir.name]


def test_resuming_a_sweep_reruns_only_what_did_not_complete(flaky, runs, capsys):
    _, sweep = flaky
    first = run_spec(sweep, runs_dir=runs)
    assert isinstance(first, PipelineResult)
    assert [r.status for r in first.results] == ["completed", "completed", "failed", "failed"]
    kept = {r.run_dir.name: status(r.run_dir)["finished"] for r in first.results[:2]}

    second = run_spec(sweep, runs_dir=runs, resume=True)
    assert second.run_dir == first.run_dir
    assert [r.status for r in second.results] == ["completed"] * 4
    assert {r.run_dir.name: status(r.run_dir)["finished"] for r in second.results[:2]} == kept
    assert [status(r.run_dir)["attempt"] for r in second.results[2:]] == [2, 2]
    assert capsys.readouterr().out.count("(completed earlier)") == 2


def test_every_run_of_a_sweep_gets_a_spec_that_repeats_it_alone(flaky, runs):
    _, sweep = flaky
    result = run_spec(sweep, runs_dir=runs)
    run = result.results[1]  # flaky: false, seed 1
    again = run_spec(run.run_dir / "spec.yaml", runs_dir=runs / "again")
    assert again.status == "completed" and again.metrics == run.metrics == {"val_loss": 1.5}


def test_a_run_whose_process_died_reads_as_killed_and_one_in_progress_is_left_alone(flaky, runs):
    single, _ = flaky
    run_dir = run_spec(single, runs_dir=runs).run_dir
    recorded = status(run_dir)
    (run_dir / "status.json").write_text(json.dumps({**recorded, "status": "running"}))
    assert run_status(run_dir) == "killed"  # "running", but no process holds its lock

    with hold_run_lock(run_dir):  # as if another `workbench run --resume` were executing it
        assert run_status(run_dir) == "running"
        with pytest.raises(RunBusyError, match="another workbench process"):
            run_spec(single, runs_dir=runs, resume=True)
    assert run_spec(single, runs_dir=runs, resume=True).status == "completed"


def test_resume_refuses_what_it_cannot_continue(flaky, make_spec, runs, no_kernel):
    single, _ = flaky
    with pytest.raises(ResumeError, match="no run of spec 'flaky'"):
        run_spec(single, runs_dir=runs, resume=True)
    with pytest.raises(ResumeError, match="takes no -p overrides|no -p"):
        run_spec(single, runs_dir=runs, resume=True, overrides={"seed": 2})
    with pytest.raises(ResumeError, match="not a run folder"):
        run_spec(single, runs_dir=runs, resume=runs)


def test_resume_refuses_a_spec_changed_since_it_ran(flaky, runs):
    single, _ = flaky
    folder = run_spec(single, runs_dir=runs).run_dir
    single.write_text(single.read_text().replace("seed: 1", "seed: 2"))
    with pytest.raises(ResumeError, match="has changed since"):
        run_spec(single, runs_dir=runs, resume=True)
    # Naming the folder continues it as it ran.
    assert run_spec(single, runs_dir=runs, resume=folder).metrics == {"val_loss": 1.5}


def test_the_command_line_resumes(flaky, runs, capsys):
    single, _ = flaky
    assert main(["run", str(single), "--runs-dir", str(runs), "--quiet"]) == 1
    assert main(["run", str(single), "--runs-dir", str(runs), "--quiet", "--dry-run"]) == 0
    capsys.readouterr()
    # Starting afresh while the newest folder is unfinished says that --resume would continue it.
    assert main(["run", str(single), "--runs-dir", str(runs), "--quiet"]) == 1
    assert "did not finish (1 failed)" in capsys.readouterr().err
    assert main(["run", str(single), "--runs-dir", str(runs), "--quiet", "--resume"]) == 0
    assert main(["run", str(single), "--runs-dir", str(runs), "--quiet", "--resume", "-p", "seed=4"]) == 2
    assert "no -p overrides" in capsys.readouterr().err


def test_a_run_folder_outside_the_project_repeats_and_resumes_on_its_own(flaky, tmp_path):
    single, sweep = flaky
    elsewhere = tmp_path / "elsewhere"  # --runs-dir outside the project: its specs name notebooks in full
    run = run_spec(sweep, runs_dir=elsewhere).results[1]
    again = run_spec(run.run_dir / "spec.yaml", runs_dir=elsewhere / "again")
    assert again.status == "completed" and again.metrics == run.metrics
    first = run_spec(single, runs_dir=elsewhere)
    assert run_spec(first.run_dir / "spec.yaml", runs_dir=elsewhere, resume=first.run_dir).status == "completed"
