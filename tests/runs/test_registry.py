import json
import shutil
from pathlib import Path

import pytest

from workbench.runs import format_runs_table, headline_metrics, list_runs
from workbench.runs.outputs import (
    OutputError,
    output_folder,
    read_json,
    save_compute_record,
    save_history,
    save_metrics,
    write_json,
)


def fake_run(runs_dir: Path, run_id: str, started: str, status: str = "completed", metrics: dict | None = None):
    run_dir = runs_dir / run_id
    write_json(
        run_dir / "status.json",
        {"run_id": run_id, "spec": "quick", "status": status, "started": started, "wall_time_s": 75.25},
    )
    if metrics is not None:
        save_metrics(run_dir, metrics)
    return run_dir


def test_list_runs_sorted_by_start_and_tolerant(tmp_path: Path):
    fake_run(tmp_path, "b-late", "2025-01-02T10:00:00+00:00", metrics={"val_loss": 1.5})
    fake_run(tmp_path, "a-early", "2025-01-02T09:00:00+00:00", status="failed")
    fake_run(tmp_path, "c-tz", "2025-01-02T10:30:00+02:00")  # 08:30 UTC: the earliest
    (tmp_path / "d-corrupt").mkdir()
    (tmp_path / "d-corrupt" / "status.json").write_text('{"run_id": "d-corr')
    (tmp_path / "d-corrupt" / "metrics.json").write_text("[1, 2")
    (tmp_path / "e-empty").mkdir()
    (tmp_path / "stray-file.txt").write_text("not a run")

    records = list_runs(tmp_path)
    assert [r.run_id for r in records[:3]] == ["c-tz", "a-early", "b-late"]
    assert {r.run_id for r in records[3:]} == {"d-corrupt", "e-empty"}
    by_id = {r.run_id: r for r in records}
    assert by_id["b-late"].metrics == {"val_loss": 1.5} and by_id["b-late"].wall_time_s == 75.25
    assert by_id["d-corrupt"].status == "unknown" and by_id["d-corrupt"].metrics is None
    assert by_id["e-empty"].spec is None and by_id["e-empty"].started is None


def test_missing_runs_dir_is_empty(tmp_path: Path):
    assert list_runs(tmp_path / "nope") == []


def test_headline_prefers_validation_metrics():
    metrics = {"aaa": 1, "val_ppl": 3.0, "zzz": 2.0, "train_loss": 4.0, "val_loss": 1.0, "val_bpb": 0.5}
    metrics.update(flag=True, notes="x", per_layer=[1, 2])  # not numeric scalars
    assert list(headline_metrics(metrics)) == ["val_loss", "val_bpb", "val_ppl", "train_loss"]
    assert list(headline_metrics({"b": 1, "a": 2.5, "flag": False})) == ["a", "b"]
    assert headline_metrics(None) == {}


def test_format_runs_table(tmp_path: Path):
    metrics = {"val_loss": 1.23456, "steps": 30}
    fake_run(tmp_path, "20250102-100000-quick-ab12", "2025-01-02T10:00:00+00:00", metrics=metrics)
    (tmp_path / "broken").mkdir()
    table = format_runs_table(list_runs(tmp_path))
    lines = table.splitlines()
    assert lines[0].split() == ["run", "spec", "status", "wall", "time", "val_loss", "steps"]
    assert lines[1].split() == ["20250102-100000-quick-ab12", "quick", "completed", "1m15s", "1.235", "30"]
    assert lines[2].split() == ["broken", "-", "unknown", "-", "-", "-"]
    assert lines[0].index("status") == lines[1].index("completed")  # aligned


def test_write_json_is_atomic_pretty_and_handles_numpy_and_torch(tmp_path: Path):
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    record = {"b": np.float32(0.5), "a": torch.tensor(3), "c": np.arange(2), "p": tmp_path}
    path = save_compute_record(tmp_path / "new" / "dir", record)
    assert path == tmp_path / "new" / "dir" / "compute.json"
    assert json.loads(path.read_text()) == {"a": 3, "b": 0.5, "c": [0, 1], "p": str(tmp_path)}
    assert path.read_text().startswith('{\n  "a": 3')
    assert [p.name for p in path.parent.iterdir()] == ["compute.json"]  # no temp files left behind


def test_failed_write_keeps_the_old_file(tmp_path: Path):
    path = write_json(tmp_path / "m.json", {"ok": 1})
    with pytest.raises(TypeError, match="cannot write object"):
        write_json(path, {"bad": object()})
    assert read_json(path) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_read_json_names_the_file(tmp_path: Path):
    with pytest.raises(OutputError, match="missing.json: file not found"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"a": ')
    with pytest.raises(OutputError, match=r"bad.json: not valid JSON \(line 1"):
        read_json(tmp_path / "bad.json")


def test_output_folder_uses_output_dir_or_a_fresh_temp_folder(tmp_path: Path):
    assert output_folder(tmp_path / "run" / "x", "pretrain") == tmp_path / "run" / "x"
    assert (tmp_path / "run" / "x").is_dir()
    scratch, other = output_folder("", "pretrain"), output_folder(None)
    try:
        assert scratch.is_dir() and scratch.name.startswith("workbench-pretrain-") and scratch != other
        assert save_history(scratch, [{"step": 1, "train_loss": 2.0}]).name == "history.json"
    finally:
        shutil.rmtree(scratch)
        shutil.rmtree(other)


# -- stage, params, filters, the DataFrame -------------------------------------------------------------------


def sweep_run(folder: Path, name: str, *, spec="sweep", stage="train", status="completed", started="", params=None,
              varied=None, metrics=None, compute=None) -> Path:
    """A run folder as the runner leaves it: status.json with stage and varied, params.yaml, metrics, compute."""
    import yaml

    run_dir = folder / name
    write_json(run_dir / "status.json", {
        "run_id": name, "spec": spec, "stage": stage, "status": status, "varied": varied or {},
        "started": started or f"2025-01-02T10:00:{len(list(folder.iterdir())) if folder.exists() else 0:02d}+00:00",
        "wall_time_s": 10.0, "spec_path": f"/p/experiments/{spec}.yaml",
    })
    params = {"output_dir": str(run_dir), **(params or {})}
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if metrics is not None:
        save_metrics(run_dir, metrics)
    if compute is not None:
        save_compute_record(run_dir, compute)
    return run_dir


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A two-stage sweep (plan.json) over learning rate and strategy, plus a lone pretrain run."""
    runs_dir = tmp_path / "runs"
    sweep = runs_dir / "20250102-100000-sweep-ab12"
    sweep.mkdir(parents=True)
    write_json(sweep / "plan.json", {"runs": []})
    sweep_run(sweep, "pretrain", stage="pretrain", params={"preset": "tiny", "learning_rate": 0.003,
              "model_overrides": {"n_layer": 2}}, metrics={"val_loss": 3.0}, compute={
              "train_steps": 30, "train_tokens": 15360, "train_time_s": 3.0, "tokens_per_s": 5120.0, "device": "cpu"})
    for i, (lr, strategy, f1) in enumerate([(1e-3, "full", 0.5), (1e-4, "full", 0.25), (1e-3, "lora", 0.75)]):
        sweep_run(sweep, f"finetune-{i:03d}", stage="finetune", varied={"learning_rate": lr, "strategy": strategy},
                  params={"base": str(sweep / "pretrain"), "learning_rate": lr, "strategy": strategy, "head": None,
                          "flag": False}, metrics={"test_macro_f1": f1, "confusion": [[1, 0], [0, 1]]},
                  compute={"train_steps": 8, "train_tokens": 256, "train_time_s": 0.5})
    sweep_run(sweep, "finetune-003", stage="finetune", status="failed",
              params={"learning_rate": 1e-2, "strategy": "full", "head": None, "flag": True})
    sweep_run(runs_dir, "20250103-090000-pretrain-quick-cd34", spec="pretrain-quick", stage="pretrain-quick",
              started="2025-01-03T09:00:00+00:00", params={"preset": "tiny", "learning_rate": 0.003},
              metrics={"val_loss": 2.5, "val_bpb": 1.1})
    return runs_dir


def test_records_carry_stage_params_varied_and_compute(runs: Path):
    from workbench.runs.registry import read_run

    by_id = {r.run_id.split("/")[-1]: r for r in list_runs(runs)}
    lora = by_id["finetune-002"]
    assert lora.stage == "finetune" and lora.spec == "sweep" and lora.spec_path == "/p/experiments/sweep.yaml"
    assert lora.varied == {"learning_rate": 1e-3, "strategy": "lora"}
    assert lora.params["learning_rate"] == 1e-3 and lora.params["head"] is None
    assert lora.compute["train_tokens"] == 256
    (runs / "broken").mkdir()
    (runs / "broken" / "params.yaml").write_text("a: [1, 2\n")  # unreadable YAML: no params, not a crash
    (runs / "broken" / "compute.json").write_text("[1]")  # not an object
    broken = read_run(runs / "broken")
    assert broken.params is None and broken.compute is None and broken.status == "unknown" and broken.varied == {}


def test_params_yaml_is_read_safely(tmp_path: Path):
    from workbench.runs.registry import read_run

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "params.yaml").write_text("x: !!python/object/apply:os.system ['echo pwned']\n")
    assert read_run(tmp_path / "run").params is None  # safe_load refuses the tag; nothing executed


def test_running_without_a_lock_holder_is_killed(tmp_path: Path):
    fake_run(tmp_path, "dead", "2025-01-02T10:00:00+00:00", status="running")
    assert [r.status for r in list_runs(tmp_path)] == ["killed"]


def test_filter_by_spec_stage_status_and_params(runs: Path):
    from workbench.runs.registry import filter_runs

    records = list_runs(runs)
    names = lambda rs: [r.run_id.split("/")[-1] for r in rs]  # noqa: E731
    assert names(filter_runs(records, spec="pretrain-quick")) == ["20250103-090000-pretrain-quick-cd34"]
    assert names(filter_runs(records, stage="finetune")) == [f"finetune-00{i}" for i in range(4)]
    assert names(filter_runs(records, status="failed")) == ["finetune-003"]
    assert filter_runs(records, status="interrupted") == []  # a valid status nobody has: no match, no error
    assert names(filter_runs(records, params={"learning_rate": 1e-3})) == ["finetune-000", "finetune-002"]
    assert names(filter_runs(records, params={"learning_rate": "1e-3"})) == ["finetune-000", "finetune-002"]
    assert names(filter_runs(records, stage="finetune", params={"strategy": "full", "learning_rate": 0.001})) == [
        "finetune-000"]
    assert names(filter_runs(records, params={"head": None, "flag": True})) == ["finetune-003"]
    assert names(filter_runs(records, params={"flag": False})) == [f"finetune-00{i}" for i in range(3)]
    assert names(filter_runs(records, params={"model_overrides.n_layer": 2})) == ["pretrain"]
    assert names(filter_runs(records, spec="sweep", stage="pretrain-quick")) == []  # both exist, not together


def test_filter_values_nobody_has_name_what_exists(runs: Path):
    from workbench.config import ConfigError
    from workbench.runs.registry import filter_runs

    records = list_runs(runs)
    with pytest.raises(ConfigError, match="no run of spec 'swep'; specs: pretrain-quick, sweep"):
        filter_runs(records, spec="swep")
    with pytest.raises(ConfigError, match="no run of stage 'fine'; stages: finetune, pretrain, pretrain-quick"):
        filter_runs(records, stage="fine")
    with pytest.raises(ConfigError, match="no run has a parameter 'lr'; parameters: base, flag, head, learning_rate"):
        filter_runs(records, params={"lr": 1})
    with pytest.raises(ConfigError, match="no run has strategy=adapter; values of strategy: full, lora"):
        filter_runs(records, params={"strategy": "adapter"})
    with pytest.raises(ConfigError, match="unknown status 'done'; valid: running, completed"):
        filter_runs(records, status="done")


def test_runs_table_one_row_per_run_with_params_metrics_and_throughput(runs: Path):
    from workbench.runs.registry import TABLE_COLUMNS, runs_table, varied_parameters

    table = runs_table(runs)
    assert list(table.columns[: len(TABLE_COLUMNS)]) == list(TABLE_COLUMNS)
    assert len(table) == 6 and "param.output_dir" not in table.columns
    assert "metric.confusion" not in table.columns  # only numeric scalars become columns
    row = table.set_index("id").loc["20250102-100000-sweep-ab12/pretrain"]
    assert row["stage"] == "pretrain" and row["param.model_overrides.n_layer"] == 2
    assert row["train_tokens"] == 15360 and row["tokens_per_s"] == 5120.0 and row["device"] == "cpu"
    lora = table.set_index("id").loc["20250102-100000-sweep-ab12/finetune-002"]
    assert lora["metric.test_macro_f1"] == 0.75 and lora["param.strategy"] == "lora"
    assert lora["tokens_per_s"] == 512.0  # computed from tokens / training time when compute.json lacks it
    failed = table.set_index("id").loc["20250102-100000-sweep-ab12/finetune-003"]
    assert failed["status"] == "failed" and pd_isna(failed["metric.test_macro_f1"])
    assert varied_parameters(table) == ["param.learning_rate", "param.strategy", "param.flag"]


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_runs_table_takes_records_run_folders_or_a_sweep_folder(runs: Path):
    from workbench.runs.registry import TABLE_COLUMNS, runs_table

    sweep = runs / "20250102-100000-sweep-ab12"
    from_sweep = runs_table(sweep)
    assert list(from_sweep["id"]) == [f"{sweep.name}/{n}" for n in
                                      ["pretrain", "finetune-000", "finetune-001", "finetune-002", "finetune-003"]]
    mixed = runs_table([sweep / "finetune-001", str(runs / "20250103-090000-pretrain-quick-cd34")])
    assert list(mixed["id"]) == ["finetune-001", "20250103-090000-pretrain-quick-cd34"]
    assert list(mixed["metric.val_loss"].isna()) == [True, False]
    assert len(runs_table(list_runs(runs)[:2])) == 2
    assert list(runs_table([]).columns) == list(TABLE_COLUMNS)
    with pytest.raises(FileNotFoundError, match="nope: no such run folder"):
        runs_table([runs / "nope"])


def test_text_table_shows_stages_of_a_pipeline(runs: Path):
    lines = format_runs_table(list_runs(runs)).splitlines()
    assert lines[0].split()[:4] == ["run", "spec", "stage", "status"]
    assert lines[1].split()[:3] == ["20250102-100000-sweep-ab12/pretrain", "sweep", "pretrain"]


def test_fine_tuning_runs_report_examples_per_second_and_pretraining_tokens(tmp_path: Path):
    from workbench.runs.registry import compute_phrase, filter_runs, runs_table

    pre = sweep_run(tmp_path, "pre", stage="pretrain", compute={"train_tokens": 15360, "train_time_s": 3.0,
                                                                 "tokens_per_s": 5120.0})
    write_json(pre / "data.json", {"corpus": "stdlib"})
    new = sweep_run(tmp_path, "fine-new", stage="finetune", compute={
        "train_examples_seen": 1728, "examples_per_s": 27.3, "train_tokens": 40000, "tokens_per_s": 630.0,
        "train_time_s": 63.3})
    write_json(new / "data.json", {"task": {"name": "docstring-topic"}})
    old = sweep_run(tmp_path, "fine-old", stage="finetune", compute={"train_tokens": 1728, "train_time_s": 63.3})
    write_json(old / "data.json", {"task": {"name": "docstring-topic"}})  # written when examples were "tokens"
    status = read_json(old / "status.json")
    write_json(old / "status.json", {**status, "interactive": True, "spec": None})

    table = runs_table(tmp_path).set_index("id")
    assert list(table["kind"]) == ["pretraining", "fine-tuning", "fine-tuning"]
    assert table.loc["pre", "tokens_per_s"] == 5120.0 and pd_isna(table.loc["pre", "examples_per_s"])
    assert table.loc["fine-new", "examples_per_s"] == 27.3 and table.loc["fine-new", "tokens_per_s"] == 630.0
    assert table.loc["fine-old", "train_examples_seen"] == 1728 and pd_isna(table.loc["fine-old", "train_tokens"])
    assert table.loc["fine-old", "examples_per_s"] == pytest.approx(1728 / 63.3)  # from the count, never as tokens
    assert pd_isna(table.loc["fine-old", "tokens_per_s"])
    assert list(table["interactive"]) == [False, False, True]

    records = list_runs(tmp_path)
    lines = format_runs_table(records).splitlines()
    assert "throughput" in lines[0]
    assert "5,120 tokens/s" in lines[1] and "27.3 examples/s" in lines[2] and "27.3 examples/s" in lines[3]
    assert lines[3].split()[1] == "interactive"
    assert [r.run_id for r in filter_runs(records, interactive=True)] == ["fine-old"]
    assert compute_phrase(records[0]) == "15,360 training tokens in 3.0 s (5,120 tokens/s)"
    assert compute_phrase(records[2]) == "1,728 training examples in 63.3 s (27.3 examples/s)"
    assert [r.run_id for r in filter_runs(records, interactive=False)] == ["pre", "fine-new"]
