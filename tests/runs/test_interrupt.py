"""Ctrl-C on a sweep stops its kernels, marks their runs interrupted, starts nothing more; --resume finishes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from workbench.runs.resume import run_status
from workbench.runs.runner import run_spec

WORKBENCH = Path(sys.executable).parent / "workbench"
# Waits (until interrupted) only where the test's `workbench run` process set SLEEPY_WAIT.
SLEEPY_BODY = """\
import os, time
from pathlib import Path
from workbench.runs.outputs import save_metrics

Path(output_dir, "started").touch()
while os.environ.get("SLEEPY_WAIT"):
    time.sleep(0.1)
save_metrics(output_dir, {"val_loss": float(seed)})
"""


def test_ctrl_c_marks_running_runs_interrupted_and_resume_completes_the_sweep(make_notebook, make_spec, project):
    make_notebook("sleepy.ipynb", 'output_dir = "."\nseed = 0', SLEEPY_BODY)
    spec = make_spec("sleepy.yaml", "notebook: notebooks/sleepy.ipynb\nseeds: [0, 1, 2]\n")
    runs = project / "experiments" / "runs"
    child = subprocess.Popen(
        [str(WORKBENCH), "run", str(spec), "--jobs", "2", "--quiet"],
        cwd=project, env={**os.environ, "SLEEPY_WAIT": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(runs.glob("*/*/started"))) < 2:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "two runs never started"
            time.sleep(0.1)
        child.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends to `workbench run`
        out, err = child.communicate(timeout=90)
    finally:
        child.kill()
    assert child.returncode == 130, (out, err)
    (root,) = runs.iterdir()
    assert "--resume" in err and str(root) in err
    runs_in_order = [root / f"sleepy-{i:03d}" for i in range(3)]
    states = [run_status(folder) for folder in runs_in_order]
    assert states == ["interrupted", "interrupted", "not started"], states
    assert all((folder / "notebook.ipynb").exists() for folder in runs_in_order[:2])  # kept, with the traceback

    result = run_spec(root / "spec.yaml", resume=root)  # the kernel env no longer waits
    assert [r.status for r in result.results] == ["completed"] * 3
    assert [json.loads((f / "metrics.json").read_text())["val_loss"] for f in runs_in_order] == [0.0, 1.0, 2.0]
