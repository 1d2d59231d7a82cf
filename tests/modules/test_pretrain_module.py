import math

import pytest
import torch

from workbench.models import DecoderConfig
from workbench.modules import OptimConfig, PretrainModule


def test_loss_falls_when_overfitting_one_batch():
    torch.manual_seed(0)
    module = PretrainModule(
        DecoderConfig.from_preset("tiny", vocab_size=64, block_size=32),
        OptimConfig(learning_rate=3e-3, warmup_steps=5, max_steps=120),
    )
    batch = torch.randint(0, 64, (4, 33))
    x, y = batch[:, :-1], batch[:, 1:]
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    module.log = lambda *args, **kwargs: None  # no Trainer attached
    first = None
    for _ in range(120):
        loss = module.training_step((x, y), 0)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    assert first > math.log(64) - 0.5
    assert loss.item() < 0.5


def test_validation_reports_token_weighted_loss_perplexity_and_bits_per_byte():
    torch.manual_seed(0)
    module = PretrainModule(DecoderConfig.from_preset("tiny", vocab_size=64, block_size=16), bytes_per_token=2.0)
    logged = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, value)
    big, small = torch.randint(0, 64, (3, 17)), torch.randint(0, 64, (1, 17))
    module.on_validation_epoch_start()
    module.validation_step((big[:, :-1], big[:, 1:]), 0)
    module.validation_step((small[:, :-1], small[:, 1:]), 1)
    module.on_validation_epoch_end()
    everything = torch.cat([big, small])
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(
            module(everything[:, :-1]).flatten(0, 1), everything[:, 1:].flatten()
        )
    torch.testing.assert_close(logged["val_loss"], expected)
    torch.testing.assert_close(logged["val_ppl"], expected.exp())
    torch.testing.assert_close(logged["val_bpb"], expected / (math.log(2) * 2.0))


def test_gradient_clipping_bounds_the_global_norm_and_keeps_it():
    module = PretrainModule(DecoderConfig.from_preset("tiny", vocab_size=64, block_size=16))
    module.log = lambda name, value, **kwargs: pytest.fail(f"{name} went through self.log (~0.8 ms a call)")
    for p in module.parameters():
        p.grad = torch.full_like(p, 10.0)
    module.configure_gradient_clipping(module.configure_optimizers()["optimizer"], gradient_clip_val=1.0)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.parameters()]))
    assert norm.item() == pytest.approx(1.0, rel=1e-4)
    assert module.step_metrics["grad_norm"] > 100


def test_compile_option_keeps_the_plain_state_dict_names_and_records_itself():
    config = DecoderConfig.from_preset("tiny", vocab_size=64, block_size=16)
    plain, compiled = PretrainModule(config), PretrainModule(config, compile=True, activation_checkpointing=True)
    assert list(compiled.state_dict()) == list(plain.state_dict())  # checkpoints load either way
    assert compiled.hparams["compile"] is True and compiled.hparams["activation_checkpointing"] is True
    assert compiled.model.activation_checkpointing and not plain.model.activation_checkpointing


@pytest.mark.slow
def test_compiled_module_computes_what_the_plain_one_does():
    torch.manual_seed(0)
    config = DecoderConfig.from_preset("tiny", vocab_size=64, block_size=16)
    plain = PretrainModule(config)
    compiled = PretrainModule(config, compile=True)
    compiled.load_state_dict(plain.state_dict())
    x = torch.randint(0, 64, (2, 16))
    torch.testing.assert_close(compiled(x), plain(x), rtol=1e-4, atol=1e-5)
