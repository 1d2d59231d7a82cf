"""The vision pipeline end to end: `workbench run experiments/vision-quick.yaml` pretrains an MAE, fine-tunes it and its
scratch control, and summarises them; every run folder describes itself as a text run's does."""

import contextlib
import io
import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.probe.sweeps import collect_runs, summarise
from workbench.runs import list_runs, run_spec
from workbench.runs.model_card import NOT_RECORDED
from workbench.runs.run_folder import FINETUNING, IMAGE, OTHER, VISION_PRETRAINING, RunFolder

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "experiments" / "vision-quick.yaml"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    result = run_spec(QUICK, runs_dir=runs_dir)
    return runs_dir, {r.run_dir.name: r for r in result.results}


def folder(sweep, name) -> RunFolder:
    return RunFolder(sweep[1][name].run_dir)


def test_every_run_completes_and_is_listed_by_its_kind(sweep):
    runs_dir, results = sweep
    assert sorted(results) == ["finetune-000", "finetune-001", "finetune-002", "finetune-003", "pretrain", "summary"]
    assert all(r.status == "completed" for r in results.values()), {n: r.error for n, r in results.items()}
    kinds = {record.run_id.split("/")[-1]: record.kind for record in list_runs(runs_dir)}
    assert kinds == {"pretrain": VISION_PRETRAINING, "summary": OTHER,
                     **{f"finetune-00{i}": FINETUNING for i in range(4)}}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["runs", "--runs-dir", str(runs_dir)]) == 0
    listed = out.getvalue()
    assert all(name in listed for name in results) and "images/s" in listed and "baseline_val_loss" in listed


def test_the_pretraining_folder_holds_an_encoder_that_loads_in_a_fresh_call(sweep):
    import workbench
    from workbench.models import ViT

    run = folder(sweep, "pretrain")
    for name in ("checkpoint/model.safetensors", "checkpoint/config.json", "checkpoint/images.json", "metrics.json",
                 "history.json", "compute.json", "data.json", "environment.json", "live-curves.html",
                 "training-state/last.ckpt", "MODEL_CARD.md"):
        assert (run.path / name).is_file(), name
    model, inputs = workbench.load(run.path)
    assert type(model) is ViT and inputs.image_set == "digits" and inputs.image_size == 8
    assert run.modality == IMAGE and run.throughput.unit == "images"
    assert run.metrics["steps"] == 40 and run.metrics["val_loss"] < run.metrics["baseline_val_loss"]
    assert json.loads((run.path / "environment.json").read_text())["data"]["fingerprint"] == run.data["fingerprint"]


def test_no_card_says_not_recorded_for_what_a_complete_vision_run_records(sweep):
    for name in ("pretrain", "finetune-000", "finetune-001", "finetune-002", "finetune-003"):
        card = folder(sweep, name).model_card_path.read_text()
        missing = [line for line in card.splitlines() if NOT_RECORDED in line]
        assert not missing, f"{name}:\n" + "\n".join(missing)
    pretraining = folder(sweep, "pretrain").model_card_path.read_text()
    assert "masked autoencoding" in pretraining and "Alpaydin" in pretraining and "CC BY 4.0" in pretraining
    scratch = folder(sweep, "finetune-001").model_card_path.read_text()
    assert "scratch control" in scratch and "its weights were NOT used" in scratch


def test_the_sweep_summary_reads_vision_fine_tuning_runs(sweep):
    runs = [sweep[1][f"finetune-00{i}"].run_dir for i in range(4)]
    rows = collect_runs(runs)
    assert len(rows) == 4 and all("test_macro_f1" in row for row in rows)
    groups = {(g["base"], g["strategy"]): g["n"] for g in summarise(rows, "test_macro_f1")}
    assert groups == {("pretrained vit", "full"): 1, ("scratch vit", "full"): 1, ("pretrained vit", "lora"): 1,
                      ("scratch vit", "lora"): 1}
    summary = folder(sweep, "summary")
    assert (summary.path / "label_efficiency.html").is_file()
    assert len(json.loads((summary.path / "summary.json").read_text())["groups"]) == 4


def test_the_notebooks_show_what_their_headings_promise(sweep):
    import nbformat
    from test_notebook_figures import shown_by_section

    promised = {"pretrain": {"Train": {"plotly": 1}, "Reconstructions": {"plotly": 1}},
                "finetune-000": {"Train and test": {"plotly": 1}, "Errors": {"plotly": 1, "widget": 1}}}
    for name, sections in promised.items():
        shown = shown_by_section(nbformat.read(folder(sweep, name).path / "notebook.ipynb", as_version=4))
        for section, wanted in sections.items():
            for kind, count in wanted.items():
                assert shown[section][kind] >= count, (name, section, dict(shown[section]))
