"""The spine, end to end: a spec runs the pretraining notebook into a self-describing run folder."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.runs import run_spec

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "experiments" / "pretrain-quick.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    return [run_spec(QUICK, runs_dir=runs_dir) for _ in range(2)]


def test_the_run_folder_describes_itself(two_runs):
    run = two_runs[0]
    assert run.status == "completed", run.error
    folder = Path(run.run_dir)
    for name in ("notebook.ipynb", "params.yaml", "metrics.json", "environment.json", "status.json",
                 "data.json", "compute.json", "history.json",
                 "checkpoint/model.safetensors", "checkpoint/config.json", "checkpoint/tokenizer.json"):
        assert (folder / name).is_file(), name
    environment = json.loads((folder / "environment.json").read_text())
    assert environment["seed"] == 0
    assert len(environment["data"]["fingerprint"]) >= 16
    assert environment["packages"]["torch"].startswith("2.13.0")
    assert "commit" in environment["git"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["steps"] == 30 and metrics["val_bpb"] > 0


def test_the_same_seed_gives_identical_metrics(two_runs):
    first, second = (json.loads((Path(r.run_dir) / "metrics.json").read_text()) for r in two_runs)
    assert first == second
    assert two_runs[0].run_dir != two_runs[1].run_dir


def test_a_fresh_python_loads_the_run_and_generates(two_runs):
    code = (
        "import sys, workbench\n"
        "from workbench.probe import complete\n"
        "model, tokenizer = workbench.load(sys.argv[1])\n"
        "print(complete(model, tokenizer, 'def ', max_new_tokens=20, seed=0))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(two_runs[0].run_dir)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("def ") and len(out.stdout) > 10
