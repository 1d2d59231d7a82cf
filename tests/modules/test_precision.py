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
    monkeypatch.setattr(precision_module, "cpu_bf16_matmul_speed", lambda: 1.0)  # as on a CPU with native bf16
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
    monkeypatch.setattr(precision_module, "cpu_bf16_matmul_speed", lambda: 1.0)
    monkeypatch.setattr(precision_module, "_pass_ms", lambda loss, params, bf16: bf16_ms if bf16 else fp32_ms)
    loss, parameters = tiny_step()
    assert choose_precision(loss, parameters, torch.device("cpu")).precision == chosen


def test_a_machine_that_slows_down_midway_does_not_decide_the_choice(monkeypatch):
    """bf16 truly 1.4x faster, the machine 1.6x slower from the sixth pass on: timed as two blocks
    (fp32's passes, then bf16's) bf16 would read 0.9x and lose; alternating pairs read 1.4x."""
    passes = []

    def drifting_pass(loss, params, *, bf16):
        passes.append(bf16)
        return (10.0 / 1.4 if bf16 else 10.0) * (1.6 if len(passes) > 5 else 1.0)

    monkeypatch.setattr(precision_module, "cpu_bf16_matmul_speed", lambda: 1.0)
    monkeypatch.setattr(precision_module, "_pass_ms", drifting_pass)
    loss, parameters = tiny_step()
    choice = choose_precision(loss, parameters, torch.device("cpu"))
    assert choice.precision == "bf16-mixed" and "1.40x faster" in choice.reason
    assert f"median of {precision_module.TIMED_PAIRS} alternating" in choice.reason
    assert passes.count(True) == passes.count(False) == precision_module.TIMED_PAIRS + 1
    assert passes[:4] == [True, False, False, True]  # who goes first alternates pair by pair


def test_a_cpu_without_native_bf16_kernels_is_told_by_one_matmul(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_bf16_matmul_speed", lambda: 0.01)
    monkeypatch.setattr(precision_module, "_pass_ms", lambda *a, **k: pytest.fail("the step was timed"))
    loss, parameters = tiny_step()
    choice = choose_precision(loss, parameters, torch.device("cpu"))
    assert choice.precision == "32-true" and "0.01x fp32's speed" in choice.reason and choice.fp32_ms is None


def test_the_measurement_leaves_the_random_stream_where_it_was(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_bf16_matmul_speed", lambda: 1.0)
    loss, parameters = tiny_step()
    torch.manual_seed(3)
    choose_precision(lambda: torch.nn.functional.dropout(loss(), 0.5), parameters, torch.device("cpu"))
    after = torch.rand(3)
    torch.manual_seed(3)
    assert torch.equal(after, torch.rand(3))


def test_the_matmul_probe_draws_nothing_from_the_global_stream():
    """It runs in the first Muon step and in auto's first measurement only: a draw would shift the rest of a run."""
    torch.manual_seed(3)
    precision_module.bf16_matmul_speed(size=16, repeats=1)
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


def test_a_measured_choice_is_remembered_per_machine_and_shape(monkeypatch, tmp_path):
    """Two runs of one spec on one machine train in one precision, however a second timing would fall."""
    from workbench.modules import precision_memory
    from workbench.modules.precision import PrecisionChoice

    monkeypatch.setenv(precision_memory.CACHE_ENV, str(tmp_path))
    timings = iter([PrecisionChoice("bf16-mixed", "timed first", 10.0, 5.0),
                    PrecisionChoice("32-true", "timed", 5.0, 5.0), PrecisionChoice("32-true", "timed again", 5.0, 5.0)])
    shape = {"device": "cpu", "model": {"d_model": 64}, "batch": [4, 32]}
    first = precision_memory.remembered_choice(shape, lambda: next(timings))
    again = precision_memory.remembered_choice(shape, lambda: next(timings))
    assert (first.precision, again.precision) == ("bf16-mixed", "bf16-mixed")
    assert again.reason == "timed first" and again.measured_at == first.measured_at is not None
    assert first.remembered_in is None and again.remembered_in == str(tmp_path / precision_memory.FILE_NAME)
    other = precision_memory.remembered_choice({**shape, "batch": [8, 32]}, lambda: next(timings))
    assert other.reason == "timed"  # another shape is measured for itself
    # A damaged file is measured over; a choice that is no timing (no native bf16) is never written.
    (tmp_path / precision_memory.FILE_NAME).write_text("{not json")
    assert precision_memory.remembered_choice(shape, lambda: next(timings)).reason == "timed again"
    untimed = precision_memory.remembered_choice({**shape, "batch": [2, 2]}, lambda: PrecisionChoice("32-true", "flag"))
    assert untimed.measured_at is None and "[2, 2]" not in (tmp_path / precision_memory.FILE_NAME).read_text()


def test_a_pretraining_run_records_where_its_choice_was_remembered(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))  # this session's other runs of QUICK remembered one
    first = pretrain(dict(QUICK, precision="auto"), printer=None).compute["precision_choice"]
    second = pretrain(dict(QUICK, precision="auto"), printer=None).compute["precision_choice"]
    if first["fp32_ms"] is None:  # no native bf16 here: nothing timed, nothing to remember
        assert second == first
        return
    assert first.get("remembered_in") is None and second["remembered_in"].endswith("precision-choices.json")
    assert {k: v for k, v in second.items() if k != "remembered_in"} == {k: v for k, v in first.items()
                                                                         if k != "remembered_in"}


@pytest.mark.parametrize("matmul_speed, chosen", [(3.0, "bf16-mixed"), (0.02, "32-true")])
def test_ranks_a_launcher_started_all_decide_from_bf16_support_without_timing(monkeypatch, matmul_speed, chosen):
    from workbench.modules.pretrain_recipe import precision_choice

    monkeypatch.setattr(precision_module, "cpu_bf16_matmul_speed", lambda: matmul_speed)
    monkeypatch.setattr(precision_module, "_pass_ms", lambda *a, **k: pytest.fail("a rank timed its own step"))
    settings = PretrainSettings.from_dict({**QUICK, "devices": 2})
    for rank in ("0", "1"):  # as torchrun starts them: each rank asks on its own, and both get one answer
        monkeypatch.setenv("LOCAL_RANK", rank)
        choice = precision_choice(settings, module=None, datamodule=None)
        assert choice.precision == chosen and "2 processes started by a launcher" in choice.reason
