"""Every committed spec still matches its notebooks: a renamed parameter fails here, not hours into a sweep."""

from pathlib import Path

import pytest

from workbench.runs.runner import dry_run, scale_overrides

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "experiments").glob("*.yaml"))


def test_there_are_specs():
    assert {"pretrain", "pretrain-quick", "sweep-quick", "finetune-sweep"} <= {p.stem for p in SPECS}


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_spec_plans_without_a_problem(spec, tmp_path):
    plan = dry_run(spec, runs_dir=tmp_path)
    assert plan.runs and all(run.notebook.is_file() for run in plan.runs)
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def test_devices_go_to_the_stages_that_train_and_not_to_a_summary(tmp_path):
    spec = ROOT / "experiments" / "finetune-quick.yaml"
    overrides = scale_overrides(spec, {"devices": 2})
    assert overrides == {"pretrain.devices": 2, "finetune.devices": 2}
    plan = dry_run(spec, runs_dir=tmp_path, overrides=overrides)
    assert {run.stage: run.parameters.get("devices") for run in plan.runs} == {
        "pretrain": 2, "finetune": 2, "summary": None}
    assert scale_overrides(ROOT / "experiments" / "pretrain.yaml", {"devices": 2}) == {"devices": 2}
    assert scale_overrides(spec, {}) == {}
