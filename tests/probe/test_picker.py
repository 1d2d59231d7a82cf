"""The run picker reads histories from a registry and redraws the overlay when a control moves."""

import json

import pytest

from workbench.probe.compare import overlay_curves
from workbench.probe.picker import RunPicker, logged_metrics, run_histories


@pytest.fixture
def registry(tmp_path):
    for name, scale in (("run-a", 1.0), ("run-b", 2.0)):
        folder = tmp_path / name
        folder.mkdir()
        rows = [{"step": s, "tokens": 100 * s, "time_s": 0.5 * s, "train_loss": scale * 10 / s} for s in range(1, 21)]
        rows.append({"step": 20, "tokens": 2000, "time_s": 10.0, "val_loss": scale})
        (folder / "history.json").write_text(json.dumps(rows))
        status = {"status": "completed", "started": f"2026-01-0{int(scale)}T00:00:00"}
        (folder / "status.json").write_text(json.dumps(status))
    (tmp_path / "no-curves").mkdir()
    return tmp_path


def test_histories_come_from_the_registry(registry):
    histories = run_histories(registry)
    assert sorted(histories) == ["run-a", "run-b"]
    assert logged_metrics(histories) == ["train_loss", "val_loss"]


def test_controls_redraw_the_overlay(registry):
    picker = RunPicker.from_registry(registry)
    assert {t.name for t in picker.figure.data} == {"run-a", "run-b"}
    picker.runs.value = ("run-b",)
    assert [t.name for t in picker.figure.data] == ["run-b"]
    picker.smoothing.value = 0.9
    expected = overlay_curves({"run-b": picker.histories["run-b"]}, smoothing=0.9)
    assert list(picker.figure.data[-1].y) == pytest.approx(list(expected.data[-1].y))
    picker.x.value = "tokens"
    assert picker.figure.data[-1].x[0] == 100 and "tokens" in picker.figure.layout.xaxis.title.text
    picker.metric.value = "val_loss"
    assert list(picker.figure.data[-1].y) == pytest.approx([2.0])


def test_an_empty_registry_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no runs with curves"):
        RunPicker.from_registry(tmp_path)
