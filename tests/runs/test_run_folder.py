"""RunFolder: every record through one reader, "not recorded" (None) for anything missing or broken."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from workbench.runs.lock import hold_run_lock
from workbench.runs.outputs import save_details, write_json
from workbench.runs.run_folder import FINETUNING, OTHER, PRETRAINING, RunFolder, runs_in


def test_an_empty_folder_records_nothing(tmp_path: Path):
    run = RunFolder(tmp_path)
    for record in (run.status_record, run.params, run.spec, run.metrics, run.history, run.compute, run.data,
                   run.environment, run.checkpoint_config, run.details("test"), run.throughput, run.wall_time_s):
        assert record is None
    assert run.status == "unknown" and run.kind == OTHER and not run.interactive and run.varied == {}
    assert not (run.has_checkpoint or run.has_finetuned or run.has_spec_file or run.is_training_run or run.is_sweep)


def test_broken_files_read_as_not_recorded(tmp_path: Path):
    (tmp_path / "status.json").write_text('{"status": "compl')
    (tmp_path / "metrics.json").write_text("[1, 2]")  # not an object
    (tmp_path / "history.json").write_text(json.dumps({"not": "rows"}))
    (tmp_path / "params.yaml").write_text("x: !!python/object/apply:os.system ['echo pwned']\n")  # never executed
    (tmp_path / "spec.yaml").write_text("a: [1\n")
    (tmp_path / "details.json").write_text("nul")
    run = RunFolder(tmp_path)
    assert run.status_record is None and run.status == "unknown" and run.metrics is None and run.history is None
    assert run.params is None and run.spec is None and run.details("validation") is None


def test_each_file_is_read_once(tmp_path: Path):
    write_json(tmp_path / "metrics.json", {"val_loss": 1.0})
    run = RunFolder(tmp_path)
    assert run.metrics == {"val_loss": 1.0}
    write_json(tmp_path / "metrics.json", {"val_loss": 2.0})
    assert run.metrics == {"val_loss": 1.0} and RunFolder(tmp_path).metrics == {"val_loss": 2.0}


def test_kind_comes_from_what_the_run_recorded(tmp_path: Path):
    write_json(tmp_path / "pre" / "data.json", {"corpus": "stdlib"})
    write_json(tmp_path / "fine" / "data.json", {"task": {"name": "docstring-topic", "kind": "regression"}})
    write_json(tmp_path / "lm" / "metrics.json", {"val_bpb": 1.2})
    write_json(tmp_path / "new-fine" / "compute.json", {"train_examples_seen": 10})
    assert [RunFolder(tmp_path / n).kind for n in ("pre", "fine", "lm", "new-fine")] == [
        PRETRAINING, FINETUNING, PRETRAINING, FINETUNING]
    assert RunFolder(tmp_path / "fine").task_kind == "regression" and RunFolder(tmp_path / "pre").task_kind is None


def test_status_is_killed_when_nobody_holds_the_lock(tmp_path: Path):
    write_json(tmp_path / "status.json", {"status": "running", "interactive": True, "spec": None})
    run = RunFolder(tmp_path)
    assert run.status == "killed" and run.recorded_status == "running" and run.interactive
    with hold_run_lock(tmp_path):
        assert RunFolder(tmp_path).status == "running"


def test_details_in_the_new_scheme_and_the_old_prefixed_one(tmp_path: Path):
    new = {"validation": {"confusion_matrix": [[1, 0], [0, 1]]}, "test": {"confusion_matrix": [[2, 0], [1, 1]],
                                                                          "per_class_f1": {"a": 0.5}}}
    save_details(tmp_path / "new", new)
    old = {"validation": {"val_confusion_matrix": [[1, 0], [0, 1]]},
           "test": {"val_confusion_matrix": [[1, 0], [0, 1]], "test_confusion_matrix": [[2, 0], [1, 1]],
                    "test_per_class_f1": {"a": 0.5}}}
    write_json(tmp_path / "old" / "details.json", old)
    for name in ("new", "old"):
        run = RunFolder(tmp_path / name)
        assert run.details("test") == new["test"], name  # only the split's own entries, unprefixed
        assert run.details("validation") == new["validation"], name
        assert run.kind == FINETUNING
    with pytest.raises(KeyError, match="no details split 'train'; splits: validation, test"):
        RunFolder(tmp_path / "new").details("train")


def test_fine_tuning_throughput_is_examples_and_old_records_are_renamed(tmp_path: Path):
    write_json(tmp_path / "new" / "data.json", {"task": {"name": "t"}})
    write_json(tmp_path / "new" / "compute.json", {"train_examples_seen": 1728, "examples_per_s": 27.3,
                                                   "train_tokens": 40000, "tokens_per_s": 630.0})
    new = RunFolder(tmp_path / "new")
    assert str(new.throughput) == "27.3 examples/s" and new.compute["train_tokens"] == 40000

    write_json(tmp_path / "old" / "data.json", {"task": {"name": "t"}})
    write_json(tmp_path / "old" / "compute.json", {"train_tokens": 1728, "tokens_per_s": 27.3, "train_steps": 54})
    old = RunFolder(tmp_path / "old")  # written when fine-tuning's "tokens" were 54 steps x 32 examples
    assert old.compute == {"train_examples_seen": 1728, "examples_per_s": 27.3, "train_steps": 54}
    assert old.throughput.unit == "examples" and old.throughput.per_second == 27.3

    write_json(tmp_path / "pre" / "data.json", {"corpus": "stdlib"})
    write_json(tmp_path / "pre" / "compute.json", {"train_tokens": 1000, "train_time_s": 0.5})
    assert str(RunFolder(tmp_path / "pre").throughput) == "2,000 tokens/s"  # computed when no rate was kept


def test_param_falls_back_to_the_recorded_settings(tmp_path: Path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"preset": "tiny", "seed": None}))
    write_json(tmp_path / "data.json", {"settings": {"seed": 3, "block_size": 64}})
    run = RunFolder(tmp_path)
    assert run.param("preset") == "tiny" and run.param("seed") == 3 and run.param("block_size") == 64
    assert run.param("nothing") is None


def test_runs_in_expands_sweeps_oldest_first(tmp_path: Path):
    write_json(tmp_path / "late" / "status.json", {"status": "completed", "started": "2025-01-02T10:00:00+00:00"})
    write_json(tmp_path / "sweep" / "plan.json", {"runs": []})
    write_json(tmp_path / "sweep" / "a" / "status.json", {"status": "failed", "started": "2025-01-01T10:00:00+00:00"})
    (tmp_path / ".hidden").mkdir()
    assert [run.id for run in runs_in(tmp_path)] == ["sweep/a", "late"]
    assert runs_in(tmp_path / "missing") == []
