"""The live-curve callback in a real (tiny) training run: what it draws is what was logged, throttled."""

import json
import time

import pytest

from workbench.modules import pretrain
from workbench.probe.live import LiveCurves, live_figure


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
    assert {"train_loss", "grad_norm", "val_loss", "val_ppl", "val_bpb"} <= set(live.points)
    # Unthrottled, every step is read: the drawn train loss is the recorder's row for the same step.
    steps, losses = live.points["train_loss"]
    assert steps == list(range(1, 13))
    for row in outcome.history:
        if "train_loss" in row:
            assert losses[steps.index(row["step"])] == pytest.approx(row["train_loss"])
    val_steps, val_losses = live.points["val_loss"]
    assert val_steps == [6, 12]
    assert val_losses == pytest.approx([r["val_loss"] for r in outcome.history if "val_loss" in r])
    # The FigureWidget holds exactly those points, losses on the top axes, the rest below.
    traces = {trace.name: trace for trace in live.figure.data}
    assert list(traces["train_loss"].y) == pytest.approx(losses)
    assert list(traces["val_loss"].x) == val_steps
    assert traces["val_loss"].yaxis == "y" and traces["grad_norm"].yaxis == "y2"
    assert live.redraws >= 12 and live.hook_seconds > 0
    page = (tmp_path / "live.html").read_text()
    # plotly.js is inlined (megabytes of it), no script is fetched from the network: the page works offline.
    assert "<html>" in page and len(page) > 1_000_000 and '<script src="http' not in page
    assert json.dumps("val_loss") in page


@pytest.mark.slow
def test_reads_are_throttled_to_the_redraw_rate(corpus_file):
    ticks = iter(range(10**6))
    clock = lambda: next(ticks) * 0.1  # each call 0.1 s later: at most 1 read a second means every 10th step
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
    assert all(b - a >= 2 for a, b in zip(steps[:-2], steps[1:-1]))


def test_bad_rates_are_refused():
    with pytest.raises(ValueError, match="max_redraws_per_s must be > 0"):
        LiveCurves(max_redraws_per_s=0)
    with pytest.raises(ValueError, match=r"max_overhead must be in \(0, 1\]"):
        LiveCurves(max_overhead=2)


def test_the_static_figure_holds_the_points():
    figure = live_figure({"train_loss": ([1, 2], [3.0, 2.5]), "lr": ([1, 2], [1e-3, 2e-3])}, title="t")
    traces = {t.name: t for t in figure.data}
    assert list(traces["train_loss"].y) == [3.0, 2.5] and traces["lr"].yaxis == "y2"
    assert figure.layout.yaxis2.type == "log"


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
    drawn = {t["name"]: t for t in bundle["application/vnd.plotly.v1+json"]["data"]}
    assert drawn["val_loss"]["y"] == pytest.approx(live.points["val_loss"][1])
