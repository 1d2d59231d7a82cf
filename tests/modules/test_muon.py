"""optimizer="muon": Muon on the hidden matrices, AdamW on the rest, stepped, scheduled and resumed as one optimizer."""

import io
import math
import re

import lightning as L
import pytest
import torch
from crash_resume import crash_then_resume
from torch import nn

from workbench.config import ConfigError
from workbench.models import Decoder, DecoderConfig
from workbench.modules import PretrainModule, PretrainSettings, pretrain
from workbench.modules import muon as muon_module
from workbench.modules.muon import Muon, MuonWithAdamW
from workbench.modules.optim import OptimConfig, build_optimizer, hidden_matrices
from workbench.modules.precision import cpu_has_native_bf16

MUON = OptimConfig(optimizer="muon", learning_rate=3e-3, warmup_steps=2, max_steps=20)
PROJECTIONS = ("attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
               "mlp.down_proj")


def tiny(tie_embeddings: bool = True, seed: int = 0) -> Decoder:
    torch.manual_seed(seed)
    return Decoder(DecoderConfig.from_preset("tiny", vocab_size=64, block_size=32, tie_embeddings=tie_embeddings))


def names_of(model: nn.Module, params) -> set[str]:
    name = {id(p): n for n, p in model.named_parameters()}  # a tied weight under its first name, embed.weight
    return {name[id(p)] for p in params}


def loss_of(model: Decoder, batch: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch[:, :-1]).logits.flatten(0, 1), batch[:, 1:].flatten())


def train(model: Decoder, optimizer: torch.optim.Optimizer, batches, scheduler=None) -> list[float]:
    losses = []
    for batch in batches:
        loss = loss_of(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("tie_embeddings", [True, False])
def test_muon_gets_exactly_the_hidden_matrices_and_adamw_the_rest(tie_embeddings):
    model = tiny(tie_embeddings)
    optimizer = build_optimizer(model, MUON)
    assert isinstance(optimizer, MuonWithAdamW) and isinstance(optimizer.muon, Muon)
    assert isinstance(optimizer.adamw, torch.optim.AdamW) and optimizer.adamw.defaults["fused"] is True
    muon = [p for group in optimizer.muon.param_groups for p in group["params"]]
    decay, no_decay = optimizer.adamw.param_groups
    hidden = {f"blocks.{i}.{name}.weight" for i in range(model.config.n_layer) for name in PROJECTIONS}
    assert names_of(model, muon) == hidden
    heads = {"embed.weight"} if tie_embeddings else {"embed.weight", "lm_head.weight"}
    assert names_of(model, decay["params"]) == heads and decay["weight_decay"] == MUON.weight_decay
    gains = {n for n, p in model.named_parameters() if p.dim() == 1}
    assert names_of(model, no_decay["params"]) == gains and no_decay["weight_decay"] == 0.0
    everything = muon + decay["params"] + no_decay["params"]
    assert len(everything) == len({id(p) for p in everything}) == len(list(model.parameters()))
    assert optimizer.muon.param_groups[0]["adjust_lr_fn"] == "match_rms_adamw"  # Muon at AdamW's rate
    assert optimizer.muon.param_groups[0]["lr"] == decay["lr"] == MUON.learning_rate


def test_a_model_without_blocks_gets_a_sensible_split():
    class Flat(nn.Module):  # no blocks, a hidden layer of its own, an untied head
        def __init__(self):
            super().__init__()
            self.embed, self.hidden = nn.Embedding(10, 8), nn.Linear(8, 8)
            self.norm, self.lm_head = nn.LayerNorm(8), nn.Linear(8, 10)

    model = Flat()
    assert names_of(model, hidden_matrices(model)) == {"hidden.weight"}
    optimizer = build_optimizer(model, MUON)
    assert names_of(model, optimizer.adamw.param_groups[0]["params"]) == {"embed.weight", "lm_head.weight"}
    # An embedding and a head alone leave Muon nothing: AdamW is the whole optimizer.
    bare = nn.ModuleDict({"embed": nn.Embedding(10, 8), "lm_head": nn.Linear(8, 10)})
    assert hidden_matrices(bare) == [] and isinstance(build_optimizer(bare, MUON), torch.optim.AdamW)


def test_adamw_stays_what_it_was_and_prebuilt_groups_refuse_muon():
    model = tiny()
    optimizer = build_optimizer(model, OptimConfig())
    assert type(optimizer) is torch.optim.AdamW and optimizer.defaults["fused"] is True
    assert len(optimizer.param_groups) == 2
    groups = [{"params": list(model.parameters()), "lr": 1e-3}]
    assert type(build_optimizer(model, OptimConfig(), groups)) is torch.optim.AdamW  # fine-tuning's path
    with pytest.raises(ConfigError, match="optimizer='muon'.*prebuilt parameter groups"):
        build_optimizer(model, MUON, groups)
    with pytest.raises(NotImplementedError, match="new parameter groups"):
        build_optimizer(model, MUON).add_param_group({"params": [nn.Parameter(torch.zeros(2, 2))]})


def test_a_few_muon_steps_lower_the_loss_and_move_every_hidden_matrix():
    model = tiny()
    batch = torch.randint(0, 64, (4, 33), generator=torch.Generator().manual_seed(0))
    before = {id(p): p.detach().clone() for p in hidden_matrices(model)}
    losses = train(model, build_optimizer(model, MUON), [batch] * 20)
    assert losses[0] > math.log(64) - 0.5
    assert losses[-1] < losses[0] - 1.2, losses
    assert all(not torch.equal(p, before[id(p)]) for p in hidden_matrices(model))


def test_the_schedule_reaches_both_inner_optimizers():
    module = PretrainModule(DecoderConfig.from_preset("tiny", vocab_size=64, block_size=32),
                            OptimConfig(optimizer="muon", learning_rate=0.01, warmup_steps=4, max_steps=8))
    setup = module.configure_optimizers()
    optimizer, scheduler = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
    assert optimizer.muon.param_groups[0] is optimizer.param_groups[0]  # the same dicts, not copies
    assert optimizer.adamw.param_groups[0] is optimizer.param_groups[optimizer.muon_groups]
    for expected in (0.0025, 0.005, 0.0075, 0.01):
        assert [g["lr"] for g in optimizer.muon.param_groups + optimizer.adamw.param_groups] == \
            pytest.approx([expected] * len(optimizer.param_groups))
        optimizer.step()
        scheduler.step()

    # And the inner optimizers step with it: at a multiplier of 0 nothing moves, at 1 both halves do.
    model = tiny()
    optimizer = build_optimizer(model, MUON)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: float(step > 0))
    batch = torch.randint(0, 64, (4, 33), generator=torch.Generator().manual_seed(0))
    halves = {"muon": optimizer.muon.param_groups[0]["params"][0],
              "adamw": optimizer.adamw.param_groups[0]["params"][0]}
    for moves in (False, True):
        before = {k: p.detach().clone() for k, p in halves.items()}
        train(model, optimizer, [batch], scheduler)
        assert {k: not torch.equal(p, before[k]) for k, p in halves.items()} == {"muon": moves, "adamw": moves}


def test_zero_grad_clears_every_gradient():
    model = tiny()
    optimizer = build_optimizer(model, MUON)
    loss_of(model, torch.randint(0, 64, (2, 33))).backward()
    assert all(p.grad is not None for p in model.parameters())
    optimizer.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_a_state_dict_round_trip_mid_training_continues_bitwise():
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 64, (4, 33), generator=generator) for _ in range(8)]

    def run(model):
        optimizer = build_optimizer(model, MUON)
        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 3))

    straight = tiny()
    optimizer, scheduler = run(straight)
    expected = train(straight, optimizer, batches, scheduler)

    first = tiny()
    optimizer, scheduler = run(first)
    train(first, optimizer, batches[:4], scheduler)
    saved = io.BytesIO()
    torch.save({"model": first.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, saved)
    saved.seek(0)
    state = torch.load(saved, weights_only=True)  # plain tensors and values, as the training state loads it
    assert set(state["optimizer"]["state"][0]) == {"momentum_buffer"}  # Muon's, then AdamW's
    first_adamw = len(optimizer.muon.param_groups[0]["params"])
    assert {"exp_avg", "exp_avg_sq", "step"} <= set(state["optimizer"]["state"][first_adamw])

    resumed = tiny(seed=1)  # other weights, a fresh optimizer: everything must come from the state
    optimizer, scheduler = run(resumed)
    resumed.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    assert optimizer.muon.state is optimizer.state and optimizer.muon.param_groups[0] is optimizer.param_groups[0]
    assert train(resumed, optimizer, batches[4:], scheduler) == expected[4:]
    for name, weight in straight.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], weight), name


def test_the_whole_optimizer_pickles_and_keeps_stepping_the_same():
    generator = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, 64, (4, 33), generator=generator) for _ in range(4)]
    model = tiny()
    optimizer = build_optimizer(model, MUON)
    train(model, optimizer, batches[:2])
    saved = io.BytesIO()
    torch.save({"model": model, "optimizer": optimizer}, saved)
    saved.seek(0)
    copy = torch.load(saved, weights_only=False)
    assert copy["optimizer"].muon.state is copy["optimizer"].state
    assert train(copy["model"], copy["optimizer"], batches[2:]) == train(model, optimizer, batches[2:])


def test_muon_is_torchs_step_for_step_with_the_iteration_in_bf16(monkeypatch):
    torch.manual_seed(0)
    # Two of one shape once oriented (48 x 16 iterates as 16 x 48): those are orthogonalized as one batch.
    weights = [torch.randn(48, 16), torch.randn(16, 40), torch.randn(16, 48)]
    mine = [nn.Parameter(w.clone()) for w in weights]
    torchs = [nn.Parameter(w.clone()) for w in weights]
    options = dict(lr=0.02, weight_decay=0.1, momentum=0.9, adjust_lr_fn="match_rms_adamw")
    ours, reference = Muon(mine, **options), torch.optim.Muon(torchs, **options)
    monkeypatch.setattr(muon_module, "iteration_dtype", lambda device: torch.bfloat16)
    for _ in range(3):
        grads = [torch.randn_like(w) for w in weights]
        for params, optimizer in ((mine, ours), (torchs, reference)):
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            optimizer.step()
        assert all(torch.equal(a, b) for a, b in zip(mine, torchs, strict=True))
    # On a CPU without native bf16 the iteration runs in fp32: the same update, without bf16's rounding.
    monkeypatch.undo()
    native = cpu_has_native_bf16()
    assert muon_module.iteration_dtype(torch.device("cpu")) is (torch.bfloat16 if native else torch.float32)
    assert muon_module.iteration_dtype(torch.device("cuda")) is torch.bfloat16
    grad = torch.randn(48, 16)
    fp32 = muon_module.orthogonalize(grad, (3.4445, -4.7750, 2.0315), 5, 1e-7, torch.float32)
    bf16 = muon_module.orthogonalize(grad, (3.4445, -4.7750, 2.0315), 5, 1e-7, torch.bfloat16)
    assert fp32.dtype is torch.float32 and torch.allclose(fp32, bf16.float(), atol=0.03)


def test_a_bad_optimizer_is_refused_naming_the_value_and_the_choices():
    with pytest.raises(ConfigError) as error:
        PretrainSettings.from_dict({"optimizer": "sgd"})
    assert error.value.problems == ["optimizer='sgd' is not one of: adamw, muon"]
    assert PretrainSettings.problems_with({"optimizer": "Muon"}) == [
        "optimizer='Muon' is not one of: adamw, muon (did you mean 'muon'?)"]
    with pytest.raises(ConfigError, match=re.escape("unknown optimizer 'sgd'; valid optimizers are: adamw, muon")):
        OptimConfig(optimizer="sgd")
    assert PretrainSettings(optimizer="muon").optim_config().optimizer == "muon"


# -- through the real recipe -----------------------------------------------------------------------------------

@pytest.fixture
def settings(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("def add(a, b):\n    return a + b\n\n" * 400)
    return PretrainSettings(
        corpus="text", corpus_paths=[str(path)], validation_fraction=0.1, tokenizer="char", preset="tiny",
        block_size=32, batch_size=8, max_steps=20, learning_rate=1e-2, warmup_steps=5, eval_every=10,
        eval_batches=2, final_eval_batches=4, checkpoint_every=5, optimizer="muon",
    )


class SeesTheOptimizer(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.optimizer = trainer.optimizers[0]


def test_a_muon_pretraining_run_learns_and_resumes_exactly(settings, tmp_path):
    seen = SeesTheOptimizer()
    straight = pretrain(settings, callbacks=[seen], printer=None)
    assert isinstance(seen.optimizer, MuonWithAdamW)
    assert straight.metrics["steps"] == 20
    assert straight.metrics["val_loss"] < math.log(straight.tokenizer.vocab_size) / 2  # a repetitive text is easy

    resumed = crash_then_resume(settings, tmp_path / "state")
    assert resumed.metrics == straight.metrics  # to the last digit
    for name, weight in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], weight), name
