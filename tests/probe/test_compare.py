import math
from pathlib import Path

import pandas as pd
import pytest

from workbench.probe.compare import metric_vs_parameter_figure, overlay_curves, smooth


def test_smooth_is_a_debiased_moving_average():
    values = [1.0, 2.0, 3.0, 4.0]
    w = 0.5
    expected, last = [], 0.0
    for i, v in enumerate(values, start=1):
        last = w * last + (1 - w) * v
        expected.append(last / (1 - w**i))
    assert smooth(values, w) == pytest.approx(expected)
    assert smooth(values, w)[0] == 1.0  # debiased: the first point is not pulled towards 0
    assert smooth(values, 0.0) == values
    assert smooth([2.5] * 5, 0.9) == pytest.approx([2.5] * 5)


def test_smooth_passes_non_finite_values_through():
    out = smooth([1.0, float("nan"), 3.0], 0.5)
    assert out[0] == 1.0 and math.isnan(out[1])
    assert out[2] == pytest.approx((0.25 * 1 + 0.5 * 3) / (1 - 0.25))  # the NaN did not enter the average


@pytest.mark.parametrize("weight", [1.0, -0.1, 1.5, "0.5", True, None])
def test_smooth_rejects_weights_outside_0_1(weight):
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        smooth([1.0], weight)


def history(losses, val=None, tokens_per_step=64):
    rows = []
    for step, loss in enumerate(losses, start=1):
        rows.append({"step": step, "tokens": step * tokens_per_step, "time_s": step * 0.5, "train_loss": loss,
                     "grad_norm": 1.0, "lr": 1e-3})
        if val and step in val:
            rows.append({"step": step, "tokens": step * tokens_per_step, "time_s": step * 0.5 + 0.1,
                         "val_loss": val[step]})
    return rows


def test_overlay_draws_one_line_per_run_skipping_rows_without_the_metric():
    runs = {"lr=1e-3": history([3.0, 2.5, 2.0], val={2: 2.7}), "lr=1e-2": history([3.0, 2.0, 1.5, 1.2])}
    figure = overlay_curves(runs)
    assert [t.name for t in figure.data] == ["lr=1e-3", "lr=1e-2"]
    assert list(figure.data[0].x) == [1, 2, 3] and list(figure.data[0].y) == [3.0, 2.5, 2.0]
    assert list(figure.data[1].y) == [3.0, 2.0, 1.5, 1.2]

    val = overlay_curves(runs, metric="val_loss", x="tokens")
    assert [t.name for t in val.data] == ["lr=1e-3"]  # the other run logged no validation: no line
    assert list(val.data[0].x) == [128] and list(val.data[0].y) == [2.7]
    assert val.layout.xaxis.title.text == "tokens seen"


def test_overlay_with_smoothing_keeps_the_raw_curve_faint_under_the_smoothed_one():
    losses = [4.0, 3.0, 3.5, 2.0, 2.2]
    figure = overlay_curves({"a": history(losses), "b": history([1.0, 1.0])}, x="time_s", smoothing=0.6)
    raw, smoothed = figure.data[0], figure.data[1]
    assert list(raw.y) == losses and raw.opacity < 0.5 and raw.showlegend is False
    assert list(smoothed.y) == pytest.approx(smooth(losses, 0.6)) and smoothed.name == "a"
    assert raw.line.color == smoothed.line.color != figure.data[3].line.color
    assert list(smoothed.x) == [0.5, 1.0, 1.5, 2.0, 2.5]


def test_overlay_rejects_bad_axis_and_smoothing_naming_the_choices():
    with pytest.raises(ValueError, match="'epoch' is not one of: step, tokens, time_s"):
        overlay_curves({"a": history([1.0])}, x="epoch")
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        overlay_curves({"a": history([1.0])}, smoothing=1.0)


@pytest.fixture
def table():
    rows = [("r0", "completed", 1e-4, "full", 3.0), ("r1", "completed", 1e-4, "full", 2.0),
            ("r2", "completed", 1e-2, "full", 1.0), ("r3", "completed", 1e-3, "lora", 4.0),
            ("r4", "failed", 1e-3, "full", None)]
    return pd.DataFrame([
        {"id": run, "status": status, "param.learning_rate": lr, "param.strategy": strategy, "metric.val_loss": loss}
        for run, status, lr, strategy, loss in rows
    ])


def test_metric_vs_parameter_marks_every_run_and_joins_the_means(table):
    figure = metric_vs_parameter_figure(table, "val_loss", "learning_rate")
    points, means = figure.data
    assert list(points.x) == [1e-4, 1e-4, 1e-2, 1e-3] and list(points.y) == [3.0, 2.0, 1.0, 4.0]
    assert list(points.text) == ["r0", "r1", "r2", "r3"]  # the failed run has no metric: left out
    assert list(means.x) == [1e-4, 1e-3, 1e-2] and list(means.y) == [2.5, 4.0, 1.0]
    assert figure.layout.xaxis.type == "log"  # a factor of 100 between the values


def test_metric_vs_parameter_one_line_per_colour_value(table):
    figure = metric_vs_parameter_figure(table, "metric.val_loss", "param.learning_rate", color="strategy")
    names = [t.name for t in figure.data if t.mode == "lines"]
    assert names == ["full", "lora"]
    full_means = figure.data[1]
    assert list(full_means.x) == [1e-4, 1e-2] and list(full_means.y) == [2.5, 1.0]
    assert list(figure.data[3].y) == [4.0]


def test_metric_vs_categorical_parameter_keeps_a_linear_axis(table):
    figure = metric_vs_parameter_figure(table, "val_loss", "strategy")
    assert list(figure.data[1].x) == ["full", "lora"] and list(figure.data[1].y) == [2.0, 4.0]
    assert figure.layout.xaxis.type is None


def test_metric_vs_parameter_names_what_the_table_has(table):
    with pytest.raises(KeyError, match="no metric 'val_bpb' in the runs table; metrics: val_loss"):
        metric_vs_parameter_figure(table, "val_bpb", "learning_rate")
    with pytest.raises(KeyError, match="no parameter 'lr'.*parameters: learning_rate, strategy"):
        metric_vs_parameter_figure(table, "val_loss", "lr")


def test_run_histories_labels_runs_by_what_varies(tmp_path):
    from workbench.probe.compare import run_histories
    from workbench.runs.outputs import save_history

    rows = []
    for i, lr in enumerate([0.001, 0.01]):
        folder = tmp_path / "sweep" / f"run-{i}"
        save_history(folder, history([3.0 - i, 2.0 - i]))
        rows.append({"id": f"sweep/run-{i}", "path": str(folder), "param.learning_rate": lr, "param.seed": 0})
    rows.append({"id": "sweep/no-history", "path": str(tmp_path / "missing"), "param.learning_rate": 0.1,
                 "param.seed": 0})
    table = pd.DataFrame(rows)
    runs = run_histories(table)
    assert list(runs) == ["run-0 (learning_rate=0.001)", "run-1 (learning_rate=0.01)"]
    assert runs["run-1 (learning_rate=0.01)"] == history([2.0, 1.0])
    labelled = run_histories(table, label_by=["seed", "param.learning_rate"])
    assert list(labelled)[0] == "run-0 (seed=0, learning_rate=0.001)"
    assert list(run_histories(table, label_by=[])) == ["run-0", "run-1"]
    figure = overlay_curves(runs)
    assert [t.name for t in figure.data] == list(runs) and list(figure.data[1].y) == [2.0, 1.0]


def test_run_histories_of_a_runs_dir_name_runs_apart_when_folder_names_repeat(tmp_path):
    from workbench.probe.compare import run_histories
    from workbench.runs.outputs import save_history, write_json

    runs_dir = tmp_path / "runs"
    for sweep, loss in (("sweep-a", 3.0), ("sweep-b", 2.0)):
        write_json(runs_dir / sweep / "plan.json", {"runs": []})
        write_json(runs_dir / sweep / "run-0" / "status.json", {"status": "completed",
                                                                 "started": f"2025-01-0{int(loss)}T10:00:00+00:00"})
        save_history(runs_dir / sweep / "run-0", history([loss]))
    write_json(runs_dir / "lone" / "status.json", {"status": "failed"})
    save_history(runs_dir / "lone", [])  # an empty history: no curve to draw
    assert list(run_histories(runs_dir)) == ["sweep-b/run-0", "sweep-a/run-0"]  # oldest first
    assert run_histories(tmp_path / "no-runs-yet") == {}


@pytest.mark.slow
def test_compare_notebook_on_a_runs_dir_narrowed_to_a_spec(tmp_path):
    """The notebook's other entry (runs_dir + spec), on fabricated run folders: no training, one kernel."""
    import papermill
    import yaml

    from workbench.runs.outputs import save_history, save_metrics, write_json

    runs_dir = tmp_path / "runs"
    for i, (spec, lr, strategy, loss) in enumerate([("lr", 1e-3, "full", 3.0), ("lr", 1e-2, "full", 2.0),
                                                    ("lr", 1e-2, "lora", 2.5), ("other", 1e-2, "full", 9.0)]):
        folder = runs_dir / f"run-{i}"
        write_json(folder / "status.json", {"spec": spec, "stage": spec, "status": "completed",
                                            "started": f"2025-01-02T10:00:0{i}+00:00"})
        (folder / "params.yaml").write_text(yaml.safe_dump({"learning_rate": lr, "strategy": strategy}))
        save_metrics(folder, {"val_loss": loss})
        save_history(folder, history([loss + 1, loss]))
    out = tmp_path / "out"
    notebook = Path(__file__).resolve().parents[2] / "notebooks" / "compare.ipynb"
    papermill.execute_notebook(
        notebook, tmp_path / "executed.ipynb", kernel_name="workbench", progress_bar=False, cwd=notebook.parent,
        parameters={"runs_dir": str(runs_dir), "spec": "lr", "color": "strategy", "output_dir": str(out)},
    )
    table = pd.read_csv(out / "runs.csv")
    assert list(table["id"]) == ["run-0", "run-1", "run-2"]  # the other spec's run left out
    assert list(table["metric.val_loss"]) == [3.0, 2.0, 2.5]
    assert (out / "val_loss-vs-learning_rate.html").is_file() and (out / "train_loss-curves.html").is_file()
