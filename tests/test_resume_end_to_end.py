"""A `workbench run` killed with SIGKILL mid-training, resumed with --resume, ends as if never stopped."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from crash_resume import read, resume_then_run_whole

from workbench.runs.resume import run_status

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "experiments" / "pretrain-quick.yaml"
WORKBENCH = Path(sys.executable).parent / "workbench"
# Long enough (~300 steps of ~20 ms) for the kill to land between two saved states.
LONGER = ["-p", "max_steps=300", "-p", "checkpoint_every=25", "-p", "block_size=128", "-p", "batch_size=16",
          "-p", "eval_every=100", "-p", "dropout=0.1"]

pytestmark = pytest.mark.slow



def test_sigkill_then_resume_gives_the_uninterrupted_metrics(tmp_path):
    killed_runs = tmp_path / "killed"
    child = subprocess.Popen(
        [str(WORKBENCH), "run", str(QUICK), "--runs-dir", str(killed_runs), "--quiet", *LONGER],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while not list(killed_runs.glob("*/training-state/last.ckpt")):
            assert child.poll() is None, "workbench run ended before saving any training state"
            assert time.monotonic() < deadline, "no training state after 180 s"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    time.sleep(2.5)  # the orphaned kernel notices its parent is gone within a second and exits
    (folder,) = killed_runs.iterdir()
    assert read(folder, "status.json")["status"] == "running" and run_status(folder) == "killed"
    state = torch.load(folder / "training-state" / "last.ckpt", weights_only=True, map_location="cpu")
    assert 0 < state["global_step"] < 300, "the kill should land mid-training"
    assert not (folder / "metrics.json").exists()

    whole = resume_then_run_whole(QUICK, folder, tmp_path / "whole", LONGER)  # same metrics, to the last digit
    assert read(folder, "compute.json")["resumed_at_steps"] == [state["global_step"]]
    assert read(folder, "status.json")["attempt"] == 2 and (folder / "notebook.attempt-1.ipynb").exists()
    assert os.path.getsize(folder / "checkpoint" / "model.safetensors") == os.path.getsize(
        whole / "checkpoint" / "model.safetensors"
    )
