import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from workbench.config import ConfigError
from workbench.heads import LMHead, SequenceClassificationHead
from workbench.models import Decoder, DecoderBackbone, DecoderConfig
from workbench.modules import FinetuneModule, GradualUnfreeze, OptimConfig, Strategy
from workbench.modules.optim import warmup_cosine
from workbench.modules.strategies import WarmupCosineSchedule, layer_group_parameters

VOCAB = 40
CLASSES = 3


def tiny_backbone(seed: int = 0, dropout: float = 0.0) -> DecoderBackbone:
    torch.manual_seed(seed)
    config = DecoderConfig.from_preset("tiny", vocab_size=VOCAB, block_size=32, dropout=dropout)
    return DecoderBackbone(Decoder(config))


def classification_batches(n_batches: int = 3, batch_size: int = 4, length: int = 10, seed: int = 0) -> DataLoader:
    """Contract-shaped batches, right-padded with id 0; the label is the first token mod CLASSES (learnable)."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        lengths = torch.randint(length // 2, length + 1, (batch_size,), generator=g)
        lengths[0] = length
        mask = (torch.arange(length) < lengths[:, None]).long()
        ids = torch.randint(1, VOCAB, (batch_size, length), generator=g) * mask
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": ids[:, 0] % CLASSES})
    return DataLoader(batches, batch_size=None)


def lm_batches(n_batches: int = 3, batch_size: int = 4, length: int = 10, prompt: int = 4) -> DataLoader:
    batches = []
    for _ in range(n_batches):
        ids = torch.randint(1, VOCAB, (batch_size, length))
        labels = ids.clone()
        labels[:, :prompt] = -100
        batches.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels})
    return DataLoader(batches, batch_size=None)


def classifier(strategy: Strategy, dropout: float = 0.0, lr: float = 1e-2, max_steps: int = 50) -> FinetuneModule:
    backbone = tiny_backbone(dropout=dropout)
    head = SequenceClassificationHead(backbone.hidden_size, CLASSES, pooling="last", dropout=dropout)
    optim = OptimConfig(learning_rate=lr, warmup_steps=2, max_steps=max_steps, weight_decay=0.1)
    return FinetuneModule(backbone, head, strategy, optim, "sequence_classification")


def fit(module: FinetuneModule, data: DataLoader, epochs: int = 1, callbacks=(), val=None, **options) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        callbacks=[*module.strategy_callbacks(), *callbacks], **options,
    )
    trainer.fit(module, train_dataloaders=data, val_dataloaders=val)
    return trainer


def test_strategy_errors_name_the_problem_and_the_choices():
    with pytest.raises(ConfigError, match="full, linear_probe, gradual_unfreeze, lora"):
        Strategy("adapters")
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ConfigError, match=r"layer_lr_decay must be in \(0, 1\]"):
            Strategy(layer_lr_decay=bad)
    assert Strategy(layer_lr_decay=1.0).layer_lr_decay == 1.0
    with pytest.raises(ConfigError, match="unfreeze_every"):
        Strategy("gradual_unfreeze", unfreeze_every=0)
    with pytest.raises(ConfigError, match="lora_rank"):
        Strategy("lora", lora_rank=0)
    with pytest.raises(ConfigError, match="lora_targets"):
        Strategy("lora", lora_targets=[])
    with pytest.raises(ConfigError, match="valid keys are"):
        Strategy.from_dict({"name": "lora", "rank": 4})
    strategy = Strategy.from_dict({"name": "lora", "lora_rank": 4, "lora_targets": ["q_proj"]})
    assert strategy.to_dict()["lora_targets"] == ["q_proj"] and strategy.lora_rank == 4


def test_layer_lr_decay_gives_each_layer_group_its_own_lr_and_decays_only_matrices():
    module = classifier(Strategy("full", layer_lr_decay=0.5), lr=1e-3)
    optimizer = module.configure_optimizers()["optimizer"]
    lrs = {group["name"]: group["initial_lr"] for group in optimizer.param_groups}
    # tiny: embeddings, block 1, block 2 + final norm; then the head at the full lr.
    assert lrs == pytest.approx({
        "embeddings.decay": 2.5e-4,
        "layer_1.decay": 5e-4, "layer_1.no_decay": 5e-4,
        "layer_2_top.decay": 1e-3, "layer_2_top.no_decay": 1e-3,
        "head.decay": 1e-3, "head.no_decay": 1e-3,
    })
    for group in optimizer.param_groups:
        matrices = group["name"].endswith(".decay")
        assert all((p.dim() >= 2) == matrices for p in group["params"])
        assert group["weight_decay"] == (0.1 if matrices else 0.0)
    grouped = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert len(grouped) == len(set(grouped)) == len({id(p) for p in module.parameters()})
    without = classifier(Strategy("full"), lr=1e-3).configure_optimizers()["optimizer"]
    assert {group["initial_lr"] for group in without.param_groups} == {1e-3}


def test_linear_probe_keeps_every_base_weight_bit_identical_and_the_base_in_eval():
    module = classifier(Strategy("linear_probe", layer_lr_decay=0.5), dropout=0.2)
    base_before = {name: p.detach().clone() for name, p in module.backbone.named_parameters()}
    head_before = {name: p.detach().clone() for name, p in module.head.named_parameters()}
    assert module.parameter_counts()["trainable"] == sum(p.numel() for p in module.head.parameters())
    modes = []

    class WatchModes(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            modes.append((pl_module.backbone.training, any(m.training for m in pl_module.backbone.modules()),
                          pl_module.head.training))

    trainer = fit(module, classification_batches(), epochs=3, callbacks=[WatchModes()],
                  val=classification_batches(seed=1), gradient_clip_val=1.0)
    assert trainer.global_step == 9 and len(modes) == 9
    assert all(mode == (False, False, True) for mode in modes)  # base in eval (no dropout) across epochs
    for name, p in module.backbone.named_parameters():
        assert torch.equal(p, base_before[name]), name
    assert any(not torch.equal(p, head_before[name]) for name, p in module.head.named_parameters())


def test_linear_probe_needs_a_head_with_weights():
    backbone = tiny_backbone()
    with pytest.raises(ConfigError, match="linear_probe.*no weights"):
        FinetuneModule(backbone, LMHead(backbone.logits), Strategy("linear_probe"), None, "causal_lm")


def trainable_groups(module: FinetuneModule) -> list[int]:
    groups = layer_group_parameters(module.backbone)
    states = [{p.requires_grad for p in params} for params in groups]
    assert all(len(s) == 1 for s in states), "a layer group is half frozen"
    return [i for i, s in enumerate(states) if True in s]


class RecordUnfreezing(L.Callback):
    """Runs after GradualUnfreeze (later in the callback list): what trains, and what the optimiser holds."""

    def __init__(self):
        self.trainable, self.optimised, self.embeddings, self.on_schedule = [], [], [], []

    def on_train_epoch_start(self, trainer, pl_module):
        self.trainable.append(trainable_groups(pl_module))
        in_optimizer = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
        self.optimised.append(all(id(p) in in_optimizer for p in pl_module.parameters() if p.requires_grad))
        self.embeddings.append(pl_module.backbone.decoder.embed.weight.detach().clone())
        # A group added now starts at the schedule's current point, like the groups already there.
        factor = warmup_cosine(trainer.global_step, pl_module.optim)
        self.on_schedule.append(all(
            g["lr"] == pytest.approx(g["initial_lr"] * factor) for g in trainer.optimizers[0].param_groups))


@pytest.mark.parametrize("every, expected", [
    (1, [[], [2], [1, 2], [0, 1, 2], [0, 1, 2]]),
    (2, [[], [], [2], [2], [1, 2]]),
])
def test_gradual_unfreeze_grows_the_trainable_set_top_down_on_schedule(every, expected):
    module = classifier(Strategy("gradual_unfreeze", unfreeze_every=every, layer_lr_decay=0.5), lr=1e-3)
    record = RecordUnfreezing()
    trainer = fit(module, classification_batches(), epochs=5, callbacks=[record])
    assert record.trainable == expected
    assert all(record.optimised) and all(record.on_schedule)
    # The embeddings move only once they have trained for an epoch.
    for epoch in range(1, len(expected)):
        moved = not torch.equal(record.embeddings[epoch], record.embeddings[0])
        assert moved == any(0 in groups for groups in expected[:epoch])
    # Each added group keeps its layer-wise peak lr and follows the shared schedule.
    factor = warmup_cosine(trainer.global_step, module.optim)
    peaks = {"head": 1e-3, "layer_2_top": 1e-3, "layer_1": 5e-4, "embeddings": 2.5e-4}
    for group in trainer.optimizers[0].param_groups:
        peak = peaks[group["name"].split(".")[0]]
        assert group["initial_lr"] == pytest.approx(peak)
        assert group["lr"] == pytest.approx(peak * factor)


def test_gradual_unfreeze_with_the_weightless_lm_head_starts_with_the_top_group():
    backbone = tiny_backbone()
    module = FinetuneModule(backbone, LMHead(backbone.logits), Strategy("gradual_unfreeze"),
                            OptimConfig(learning_rate=1e-3, warmup_steps=1, max_steps=10), "causal_lm")
    assert trainable_groups(module) == [2]
    record = RecordUnfreezing()
    trainer = fit(module, lm_batches(), epochs=3, callbacks=[record])
    assert record.trainable == [[2], [1, 2], [0, 1, 2]]
    trainer.test(module, lm_batches(), verbose=False)  # evaluating afterwards does not refreeze the base
    assert trainable_groups(module) == [0, 1, 2]
    assert module.final_metrics()["test_perplexity"] > 1


def test_gradual_unfreeze_without_its_callback_fails_before_training():
    module = classifier(Strategy("gradual_unfreeze"))
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ConfigError, match="strategy_callbacks"):
        trainer.fit(module, train_dataloaders=classification_batches())
    assert [type(c) for c in module.strategy_callbacks()] == [GradualUnfreeze]
    assert classifier(Strategy("full")).strategy_callbacks() == []


def test_the_schedule_follows_groups_added_after_it_was_built():
    config = OptimConfig(learning_rate=1.0, warmup_steps=2, max_steps=10, min_lr_ratio=0.1)
    first, second = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.AdamW([{"params": [first], "lr": 1.0}])
    schedule = WarmupCosineSchedule(optimizer, config)
    for _ in range(4):
        optimizer.step()
        schedule.step()
    optimizer.add_param_group({"params": [second], "lr": 0.5 * schedule.multiplier(), "initial_lr": 0.5})
    for step in range(5, 8):
        optimizer.step()
        schedule.step()
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx(
            [warmup_cosine(step, config), 0.5 * warmup_cosine(step, config)])
    assert "config" not in schedule.state_dict()


def test_one_table_says_what_each_strategy_does():
    from workbench.modules.strategies import BEHAVIOURS, STRATEGIES

    assert STRATEGIES == tuple(BEHAVIOURS) == ("full", "linear_probe", "gradual_unfreeze", "lora")
    optim = OptimConfig(learning_rate=1e-3)
    seen = {}
    for name in STRATEGIES:
        module = classifier(Strategy(name, lora_rank=2))
        trainable = {n.split(".")[0] for n, p in module.named_parameters() if p.requires_grad}
        adapters_only = all("lora_" in n for n, p in module.backbone.named_parameters() if p.requires_grad)
        seen[name] = (module.strategy.base_in_eval, [type(c) for c in Strategy(name).callbacks(optim)],
                      trainable, adapters_only)
    assert seen["full"] == (False, [], {"backbone", "head"}, False)
    assert seen["linear_probe"] == (True, [], {"head"}, True)
    assert seen["gradual_unfreeze"] == (False, [GradualUnfreeze], {"head"}, True)
    assert seen["lora"] == (False, [], {"backbone", "head"}, True)


def test_a_strategy_describes_itself_from_recorded_settings():
    from workbench.modules.strategies import strategy_phrase

    assert strategy_phrase({"strategy": "lora", "lora_rank": 8, "lora_alpha": 16.0}) == "`lora` (rank 8, alpha 16.0)"
    assert strategy_phrase({**Strategy("gradual_unfreeze", unfreeze_every=2, layer_lr_decay=0.5).to_dict()}) == (
        "`gradual_unfreeze` (one more layer every 2 epochs; layer-wise lr decay 0.5)")
    assert strategy_phrase({"strategy": "full", "layer_lr_decay": None}) == "`full`"
    assert strategy_phrase({"strategy": "adapter"}) == "`adapter`"  # an old or foreign record still reads
    assert strategy_phrase({}) is None


def test_no_strategy_is_compared_by_name_outside_its_module():
    """Behaviour belongs to the table in strategies.py; elsewhere code asks the Strategy value."""
    import re
    from pathlib import Path

    import workbench

    root = Path(workbench.__file__).parent
    names = "|".join(("full", "linear_probe", "gradual_unfreeze", "lora"))
    compared = re.compile(rf"""strategy(\.name|\[["']name["']\]|\))?\s*[!=]=\s*["']({names})["']""")
    found = [f"{path.relative_to(root)}:{number}" for path in sorted(root.rglob("*.py"))
             if path != root / "modules" / "strategies.py"
             for number, line in enumerate(path.read_text().splitlines(), 1) if compared.search(line)]
    assert found == []
