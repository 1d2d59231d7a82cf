"""Losses of different tasks never share an axis: a language model's nats/token and a classifier's
nats/example go in panels of their own, in the comparison overlay and in the run picker."""

import json

import pytest

from workbench.probe.compare import overlay_curves
from workbench.probe.picker import RunPicker, run_task_kinds


def rows(losses, *, lm: bool):
    history = [{"step": s, "tokens": 10 * s, "time_s": s, "train_loss": loss, "grad_norm": 1.0}
               for s, loss in enumerate(losses, 1)]
    history.append({"step": len(losses), "tokens": 10 * len(losses), "time_s": len(losses), "val_loss": losses[-1],
                    **({"val_ppl": 2.0, "val_bpb": 1.5} if lm else {})})
    return history


def panels(figure) -> dict:
    """run -> the title of the y axis its line is drawn on."""
    layout = figure.layout.to_plotly_json()
    titles = {key.replace("axis", ""): axis["title"]["text"] for key, axis in layout.items() if key.startswith("yaxis")}
    return {trace.name: titles[trace.yaxis or "y"] for trace in figure.data}


def test_runs_of_different_tasks_are_drawn_in_separate_panels_named_by_unit():
    histories = {"pretrain": rows([5.0, 3.0], lm=True), "topic": rows([2.6, 2.4], lm=False),
                 "token-type": rows([1.2, 0.9], lm=False)}
    kinds = {"pretrain": None, "topic": "sequence_classification", "token-type": "token_classification"}
    assert panels(overlay_curves(histories, kinds=kinds)) == {
        "pretrain": "train_loss (nats/token)", "topic": "train_loss (nats/example)",
        "token-type": "train_loss (nats/labelled token)"}
    # Without kinds, a history with a perplexity is a language model's; the others are kept apart from it.
    unknown = panels(overlay_curves(histories))
    assert unknown["pretrain"] == "train_loss (nats/token)"
    assert unknown["topic"] == unknown["token-type"] == "train_loss"
    # Metrics whose unit does not depend on the task share one axis.
    assert panels(overlay_curves(histories, metric="grad_norm", kinds=kinds)) == dict.fromkeys(histories, "grad_norm")


@pytest.fixture
def mixed_registry(tmp_path):
    for name, data, lm in (("lm-run", {"corpus": {"name": "stdlib"}}, True),
                           ("topic-run", {"task": {"name": "docstring-topic", "kind": "sequence_classification"}},
                            False)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "history.json").write_text(json.dumps(rows([3.0, 2.0, 1.5], lm=lm)))
        (folder / "data.json").write_text(json.dumps(data))
        (folder / "status.json").write_text(json.dumps({"status": "completed", "started": "2026-01-01T00:00:00"}))
    return tmp_path


def test_the_run_picker_keeps_a_language_model_and_a_classifier_apart(mixed_registry):
    assert run_task_kinds(mixed_registry) == {"lm-run": None, "topic-run": "sequence_classification"}
    picker = RunPicker.from_registry(mixed_registry)
    assert panels(picker.figure) == {"lm-run": "train_loss (nats/token)", "topic-run": "train_loss (nats/example)"}
    picker.runs.value = ("topic-run",)
    assert panels(picker.figure) == {"topic-run": "train_loss (nats/example)"}
    assert "yaxis2" not in picker.figure.layout.to_plotly_json()  # the second panel went with its run
    picker.runs.value = ("lm-run", "topic-run")
    picker.metric.value = "val_bpb"
    assert panels(picker.figure) == {"lm-run": "val_bpb"}
    labelled = [picker.runs, picker.metric, picker.smoothing, picker.x]
    assert all(control.style.description_width == "initial" for control in labelled)
