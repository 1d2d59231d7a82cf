"""The live-curve callback in a real (tiny) training run: what it draws is what was logged, throttled, and
what it leaves behind is the whole history, in panels by unit, periodic and final evaluations named apart."""

import json
import time
from types import SimpleNamespace

import pytest

from workbench.modules import pretrain
from workbench.probe.curves import curve, history_series, loss_unit, training_figure
from workbench.probe.live import LiveCurves

PLOTLY = "application/vnd.plotly.v1+json"


def by_metric(traces) -> dict:
    """Traces keyed by the metric they draw (a final-evaluation star as "<metric> (final)")."""
    keyed = {}
    for trace in traces:
        meta = trace["meta"] if isinstance(trace, dict) else trace.meta
        keyed[meta["metric"] + (" (final)" if meta.get("final") else "")] = trace
    return keyed


def axis_titles(layout) -> dict:
    """y axis name ("y", "y2", ...) -> its title, for a figure or a plotly JSON layout."""
    layout = layout if isinstance(layout, dict) else layout.to_plotly_json()
    return {key.replace("axis", ""): value.get("title", {}).get("text") for key, value in layout.items()
            if key.startswith("yaxis")}


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("def add(a, b):\n    return a + b\n\n" * 200)
    return str(path)


def quick(corpus_file, callbacks):
    settings = dict(corpus="text", corpus_paths=[corpus_file], validation_fraction=0.1, tokenizer="char",
                    preset="tiny", block_size=16, batch_size=4, max_steps=12, warmup_steps=2,
                    eval_every=6, eval_batches=2, final_eval_batches=2)
    return pretrain(settings, callbacks=callbacks, printer=None)


@pytest.mark.slow
def test_every_read_draws_train_and_validation_metrics_and_writes_html(corpus_file, tmp_path):
    ticks = iter(range(10**6))
    live = LiveCurves(max_redraws_per_s=1e9, max_overhead=1.0, widget=True, display=False,
                      html_path=tmp_path / "live.html", clock=lambda: next(ticks) * 1.0)  # each step 1 s apart
    outcome = quick(corpus_file, [live])
    assert {"train_loss", "grad_norm", "lr", "val_loss", "val_ppl", "val_bpb"} <= set(live.points)
    # Unthrottled, every step is read: the drawn train loss is the recorder's row for the same step.
    steps, losses = live.points["train_loss"]
    assert steps == list(range(1, 13))
    for row in outcome.history:
        if "train_loss" in row:
            assert losses[steps.index(row["step"])] == pytest.approx(row["train_loss"])
    val_steps, val_losses = live.points["val_loss"]
    assert val_steps == [6, 12]
    assert val_losses == pytest.approx([r["val_loss"] for r in outcome.history if "val_loss" in r])
    # The FigureWidget holds exactly those points, each metric in the panel of its unit.
    traces = by_metric(live.figure.data)
    assert list(traces["train_loss"].y) == pytest.approx(losses)
    assert list(traces["val_loss"].x) == val_steps
    titles = axis_titles(live.figure.layout)
    panel = {metric: titles[trace.yaxis] for metric, trace in traces.items()}
    assert panel == {"train_loss": "loss (nats/token)", "val_loss": "loss (nats/token)", "val_bpb": "bits per byte",
                     "val_ppl": "perplexity", "grad_norm": "gradient norm", "lr": "learning rate"}
    assert live.redraws >= 12 and live.hook_seconds > 0
    page = (tmp_path / "live.html").read_text()
    # plotly.js is inlined (megabytes of it), no script is fetched from the network: the page works offline.
    assert "<html>" in page and len(page) > 1_000_000 and '<script src="http' not in page
    assert json.dumps("val_loss") in page


@pytest.mark.slow
def test_reads_are_throttled_to_the_redraw_rate(corpus_file):
    ticks = iter(range(10**6))

    def clock():
        return next(ticks) * 0.1  # each call 0.1 s later: at most 1 read a second means every 10th step

    live = LiveCurves(max_redraws_per_s=1.0, max_overhead=1.0, widget=False, display=False, clock=clock)
    quick(corpus_file, [live])
    steps = live.points["train_loss"][0]
    assert steps[0] == 1 and steps[-1] == 12  # the first step, and the last one always
    assert len(steps) == 3  # steps 1, 11 and 12: not every step
    assert live.figure is None and live.redraws == 0  # no widget outside a notebook unless asked


@pytest.mark.slow
def test_slow_redraws_are_spaced_out_to_keep_within_the_overhead_budget(corpus_file, monkeypatch):
    ticks = iter(range(10**6))
    live = LiveCurves(max_redraws_per_s=1e9, max_overhead=0.1, widget=False, display=False,
                      clock=lambda: next(ticks) * 0.1)  # steps 0.1 s apart
    monkeypatch.setattr(live, "_redraw", lambda: time.sleep(0.02))  # a redraw costing >= 20 ms
    quick(corpus_file, [live])
    steps = live.points["train_loss"][0]
    # Each redraw buys >= 0.2 s of quiet (20 ms / 10%), so at most every other step of the 12 is read.
    assert 2 <= len(steps) <= 7 and steps[-1] == 12
    assert all(b - a >= 2 for a, b in zip(steps[:-2], steps[1:-1], strict=False))


@pytest.mark.slow
def test_the_figure_left_after_training_is_the_whole_history_with_the_final_evaluation_named(corpus_file, tmp_path,
                                                                                              monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda bundle, raw=False, display_id=None: SimpleNamespace(
        update=lambda bundle, raw=False: shown.append(bundle)))
    ticks = iter(range(10**6))
    live = LiveCurves(max_redraws_per_s=1.0, max_overhead=1.0, widget=True, display=True,
                      html_path=tmp_path / "live.html", clock=lambda: next(ticks) * 0.1)  # throttled: 3 live reads
    outcome = quick(corpus_file, [live])
    assert len(live.points["train_loss"][0]) == 3
    assert live.history == outcome.history
    left = by_metric(shown[-1][PLOTLY]["data"])
    # Every recorded step, not the throttled sample drawn live.
    assert left["train_loss"]["x"] == curve(outcome.history, "train_loss")[0] == list(range(1, 13))
    assert left["val_loss"]["name"] == "val_loss (periodic)"
    subtitle = shown[-1][PLOTLY]["layout"]["title"]["subtitle"]["text"]
    assert "periodic: 2 validation batches" in subtitle and "metrics.json" not in subtitle

    live.add_final(outcome.metrics)
    left = by_metric(shown[-1][PLOTLY]["data"])
    assert left["val_loss (final)"]["y"] == [pytest.approx(outcome.metrics["val_loss"])]
    assert left["val_loss (final)"]["x"] == [12] and left["val_loss (final)"]["name"] == "val_loss (final)"
    assert left["val_bpb (final)"]["yaxis"] == left["val_bpb"]["yaxis"]
    assert not {"zlib_bpb (final)", "steps (final)", "train_loss (final)"} & set(left)  # not evaluations
    assert "final (★): the evaluation after training, as in metrics.json" in (
        shown[-1][PLOTLY]["layout"]["title"]["subtitle"]["text"])
    assert "val_loss (final)" in (tmp_path / "live.html").read_text()


def test_a_fine_tuning_module_gets_its_task_loss_unit():
    live = LiveCurves(widget=True, display=False)
    live.on_fit_start(SimpleNamespace(limit_val_batches=1.0), SimpleNamespace(task_kind="sequence_classification"))
    assert live.unit == "nats/example" and live.periodic == "the whole validation split"
    live.points = {"train_loss": ([1], [2.0]), "val_loss": ([1], [1.5]), "val_accuracy": ([1], [0.4])}
    live._dirty = True
    live._redraw()
    titles = axis_titles(live.figure.layout)
    assert {titles[t.yaxis] for t in live.figure.data} == {"loss (nats/example)", "score (0 to 1)"}


def test_bad_rates_are_refused():
    with pytest.raises(ValueError, match="max_redraws_per_s must be > 0"):
        LiveCurves(max_redraws_per_s=0)
    with pytest.raises(ValueError, match=r"max_overhead must be in \(0, 1\]"):
        LiveCurves(max_overhead=2)


def test_metrics_are_drawn_in_panels_by_unit_with_bounded_scores_on_a_linear_0_to_1_axis():
    series = {"train_loss": ([1, 2], [3.0, 2.5]), "grad_norm": ([1, 2], [4.0, 1.0]), "lr": ([1, 2], [1e-3, 2e-3]),
              "val_loss": ([2], [2.6]), "val_ppl": ([2], [13.5]), "val_bpb": ([2], [3.7]),
              "val_accuracy": ([2], [0.3]), "val_macro_f1": ([2], [0.2])}
    figure = training_figure(series, unit=loss_unit("sequence_classification"), title="t")
    titles = axis_titles(figure.layout)
    traces = by_metric(figure.data)
    assert list(traces["train_loss"].y) == [3.0, 2.5]
    assert {m: titles[t.yaxis] for m, t in traces.items()} == {
        "train_loss": "loss (nats/example)", "val_loss": "loss (nats/example)", "grad_norm": "gradient norm",
        "lr": "learning rate", "val_ppl": "perplexity", "val_bpb": "bits per byte",
        "val_accuracy": "score (0 to 1)", "val_macro_f1": "score (0 to 1)"}
    layout = figure.layout.to_plotly_json()
    assert all(axis.get("type") in (None, "linear") for key, axis in layout.items() if key.startswith("yaxis"))
    score_axis = "yaxis" + traces["val_accuracy"].yaxis[1:]
    assert layout[score_axis]["range"] == [0, 1.02]
    assert traces["val_accuracy"].name == "val_accuracy (periodic)" and traces["train_loss"].name == "train_loss"
    assert loss_unit("token_classification") == "nats/labelled token" and loss_unit(None) == "nats/token"
    with pytest.raises(ValueError, match="kinds: causal_lm, sequence_classification"):
        loss_unit("tabular")


def test_the_history_gives_every_metric_but_the_axes_and_counters():
    rows = [{"step": 1, "tokens": 32, "examples": 32, "time_s": 0.1, "train_loss": 2.0, "lr": 1e-3},
            {"step": 2, "tokens": 64, "examples": 64, "time_s": 0.2, "val_loss": 1.9, "val_accuracy": 0.5}]
    assert history_series(rows) == {"train_loss": ([1], [2.0]), "lr": ([1], [1e-3]), "val_loss": ([2], [1.9]),
                                    "val_accuracy": ([2], [0.5])}
    assert history_series(rows, x="tokens")["val_loss"] == ([64], [1.9])


@pytest.mark.slow
def test_in_a_kernel_the_live_display_is_replaced_by_a_static_figure(corpus_file, monkeypatch):
    shown = []

    class Handle:
        def update(self, bundle, raw=False):
            shown.append(("update", bundle, raw))

    def fake_display(bundle, raw=False, display_id=None):
        shown.append(("display", bundle, raw))
        return Handle()

    monkeypatch.setattr("IPython.display.display", fake_display)
    live = LiveCurves(widget=True, display=True)
    quick(corpus_file, [live])
    assert shown[0][0] == "display" and "application/vnd.jupyter.widget-view+json" in shown[0][1]
    kind, bundle, raw = shown[-1]
    assert kind == "update" and raw
    drawn = by_metric(bundle[PLOTLY]["data"])
    assert drawn["val_loss"]["y"] == pytest.approx(live.points["val_loss"][1])
