"""The spine, end to end: a spec runs the pretraining notebook into a self-describing run folder."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.runs import list_runs, run_spec

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "experiments" / "pretrain-quick.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cli_output(tmp_path_factory):
    """The second run goes through the command line, as `make demo` does."""
    runs_dir = tmp_path_factory.mktemp("runs")
    run_spec(QUICK, runs_dir=runs_dir)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["run", str(QUICK), "--runs-dir", str(runs_dir), "--quiet"]) == 0
    return runs_dir, out.getvalue()


@pytest.fixture(scope="module")
def two_runs(cli_output):
    return [record for record in list_runs(cli_output[0])]


def test_the_command_line_ends_with_the_folder_and_headline_numbers(cli_output, two_runs):
    text = cli_output[1]
    assert f"run folder: {two_runs[1].run_dir}" in text
    assert "val_bpb=" in text and "zlib_bpb=" in text
    assert "training tokens in" in text and "tokens/s" in text


def test_the_run_folder_describes_itself(two_runs):
    run = two_runs[0]
    assert run.status == "completed"
    folder = Path(run.run_dir)
    for name in ("notebook.ipynb", "params.yaml", "metrics.json", "environment.json", "status.json",
                 "data.json", "compute.json", "history.json", "MODEL_CARD.md",
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
