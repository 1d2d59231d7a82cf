import math

import pytest
import torch

from workbench.config import ConfigError
from workbench.models import Decoder, DecoderConfig
from workbench.modules.optim import OptimConfig, adamw, parameter_groups, warmup_cosine


def test_only_matrices_decay_and_tied_weights_appear_once():
    model = Decoder(DecoderConfig.from_preset("tiny"))
    decay, no_decay = parameter_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() == 2 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])
    counted = sum(p.numel() for group in (decay, no_decay) for p in group["params"])
    assert counted == model.num_parameters()


def test_adamw_is_fused():
    optimizer = adamw(Decoder(DecoderConfig.from_preset("tiny")), OptimConfig())
    assert optimizer.defaults["fused"] is True


def test_warmup_is_linear_then_cosine_reaches_the_floor():
    config = OptimConfig(learning_rate=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert warmup_cosine(0, config) == pytest.approx(0.1)
    assert warmup_cosine(9, config) == pytest.approx(1.0)
    assert warmup_cosine(10, config) == pytest.approx(1.0)
    assert warmup_cosine(60, config) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert warmup_cosine(110, config) == pytest.approx(0.1)
    assert warmup_cosine(500, config) == pytest.approx(0.1)
    values = [warmup_cosine(s, config) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize(
    "kwargs", [{"learning_rate": 0}, {"warmup_steps": 20, "max_steps": 10}, {"min_lr_ratio": 2.0}]
)
def test_bad_optimiser_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        OptimConfig(**kwargs)


def test_scheduler_steps_the_learning_rate_per_optimiser_step():
    from workbench.modules import PretrainModule

    optim = OptimConfig(learning_rate=0.01, warmup_steps=4, max_steps=8)
    module = PretrainModule(DecoderConfig.from_preset("tiny"), optim)
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    assert setup["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert lrs[-1] < lrs[4]
    assert torch.is_tensor(optimizer.param_groups[0]["params"][0])
