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
