"""precision: auto measures bf16 against fp32 at the model's own shape, and the measurement changes nothing else."""

from __future__ import annotations

import pytest
import torch

from workbench.modules import precision as precision_module
from workbench.modules.finetune_settings import FinetuneSettings
from workbench.modules.precision import GAIN_NEEDED, choose_precision
from workbench.modules.pretrain_recipe import pretrain
from workbench.modules.pretrain_settings import PretrainSettings

QUICK = dict(seed=0, max_files=6, preset="tiny", block_size=32, batch_size=4, max_steps=3, warmup_steps=1,
             eval_every=3, eval_batches=1, final_eval_batches=1)


def tiny_step():
    layer = torch.nn.Linear(16, 16)
    x = torch.randn(8, 16)
    return (lambda: layer(x).pow(2).mean()), list(layer.parameters())


def test_the_cpu_choice_is_measured_and_says_why(monkeypatch):
    monkeypatch.setattr(precision_module, "bf16_matmul_speed", lambda: 1.0)  # as on a CPU with native bf16
    loss, parameters = tiny_step()
    choice = choose_precision(loss, parameters, torch.device("cpu"))
    assert choice.precision in ("32-true", "bf16-mixed")
    assert choice.fp32_ms > 0 and choice.bf16_ms > 0
    assert "measured" in choice.reason and "at this model and batch shape" in choice.reason
    assert all(p.grad is None for p in parameters)
    assert choice.record()["requested"] == "auto"


@pytest.mark.parametrize("fp32_ms, bf16_ms, chosen", [(10.0, 10.0 / GAIN_NEEDED, "bf16-mixed"),
                                                      (10.0, 9.0, "32-true"), (60.0, 800.0, "32-true")])
def test_bf16_is_taken_only_when_clearly_faster(monkeypatch, fp32_ms, bf16_ms, chosen):
    monkeypatch.setattr(precision_module, "bf16_matmul_speed", lambda: 1.0)
    monkeypatch.setattr(precision_module, "_median_ms", lambda loss, params, bf16: bf16_ms if bf16 else fp32_ms)
    loss, parameters = tiny_step()
    assert choose_precision(loss, parameters, torch.device("cpu")).precision == chosen


def test_a_cpu_without_native_bf16_kernels_is_told_by_one_matmul(monkeypatch):
    monkeypatch.setattr(precision_module, "bf16_matmul_speed", lambda: 0.01)
    monkeypatch.setattr(precision_module, "_median_ms", lambda *a, **k: pytest.fail("the step was timed"))
    loss, parameters = tiny_step()
    choice = choose_precision(loss, parameters, torch.device("cpu"))
    assert choice.precision == "32-true" and "0.01x fp32's speed" in choice.reason and choice.fp32_ms is None


def test_the_measurement_leaves_the_random_stream_where_it_was(monkeypatch):
    monkeypatch.setattr(precision_module, "bf16_matmul_speed", lambda: 1.0)
    loss, parameters = tiny_step()
    torch.manual_seed(3)
    choose_precision(lambda: torch.nn.functional.dropout(loss(), 0.5), parameters, torch.device("cpu"))
    after = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(3))


@pytest.mark.slow
def test_an_auto_run_trains_exactly_as_the_precision_it_chose():
    auto = pretrain(dict(QUICK, precision="auto"), printer=None)
    choice = auto.compute["precision_choice"]
    assert auto.compute["precision"] == choice["precision"] and choice["requested"] == "auto"
    explicit = pretrain(dict(QUICK, precision=choice["precision"]), printer=None)
    assert auto.metrics == explicit.metrics


def test_auto_is_a_pretraining_choice_only():
    assert PretrainSettings(precision="auto").precision == "auto"
    assert any("precision='auto' is not one of" in p for p in FinetuneSettings.problems_with({"precision": "auto"}))
