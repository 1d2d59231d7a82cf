import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from workbench.config import ConfigError
from workbench.heads import LMHead, SequenceClassificationHead
from workbench.models import Decoder, DecoderBackbone, DecoderConfig
from workbench.modules import FinetuneModule, OptimConfig, Strategy, merge_lora
from workbench.modules.lora import ADAPTER_MARK, add_lora, has_lora

VOCAB = 40


def tiny_backbone(seed: int = 0, **overrides) -> DecoderBackbone:
    torch.manual_seed(seed)
    return DecoderBackbone(Decoder(DecoderConfig.from_preset("tiny", vocab_size=VOCAB, block_size=32, **overrides)))


def lora_classifier(strategy: Strategy | None = None, backbone: DecoderBackbone | None = None) -> FinetuneModule:
    backbone = backbone or tiny_backbone()
    head = SequenceClassificationHead(backbone.hidden_size, 3, pooling="last", dropout=0.0)
    optim = OptimConfig(learning_rate=1e-2, warmup_steps=1, max_steps=20)
    return FinetuneModule(backbone, head, strategy or Strategy("lora", lora_rank=4), optim, "sequence_classification")


def batches(n: int = 3, size: int = 4, length: int = 10) -> DataLoader:
    torch.manual_seed(1)
    data = []
    for _ in range(n):
        ids = torch.randint(1, VOCAB, (size, length))
        data.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids[:, 0] % 3})
    return DataLoader(data, batch_size=None)


def randomise_adapters(model: nn.Module) -> None:
    """lora_B starts at zero (the adapter starts as a no-op); make the adapters do something."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.1)


def test_lora_on_the_small_preset_trains_under_five_percent_of_the_parameters():
    torch.manual_seed(0)
    backbone = DecoderBackbone(Decoder(DecoderConfig.from_preset("small")))
    base_total = backbone.decoder.num_parameters()
    head = SequenceClassificationHead(backbone.hidden_size, 4)
    module = FinetuneModule(backbone, head, Strategy("lora"), None, "sequence_classification")
    counts = module.parameter_counts()
    adapters = sum(p.numel() for n, p in backbone.named_parameters() if "lora_" in n)
    # Rank 8 on q, k, v, o (256 -> 256) and gate, up (256 -> 704), down (704 -> 256), over 6 blocks.
    assert adapters == 6 * 8 * (4 * (256 + 256) + 3 * (256 + 704)) == 236_544
    assert counts["trainable"] == adapters + sum(p.numel() for p in head.parameters())
    assert counts["total"] == base_total + adapters + sum(p.numel() for p in head.parameters())
    fraction = counts["trainable"] / counts["total"]
    print(f"LoRA on small: {counts['trainable']} of {counts['total']} parameters train ({100 * fraction:.3f}%)")
    assert fraction <= 0.05


def test_lora_freezes_the_base_and_adapts_exactly_the_targets():
    module = lora_classifier(Strategy("lora", lora_rank=2, lora_targets=["q_proj", "mlp.down_proj"]))
    trainable = {n for n, p in module.backbone.named_parameters() if p.requires_grad}
    adapted = {n.split(".lora_")[0] for n in trainable}
    assert all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert adapted == {f"decoder.blocks.{i}.{m}" for i in range(2) for m in ("attn.q_proj", "mlp.down_proj")}
    assert all(p.requires_grad for p in module.head.parameters())


def test_bad_lora_targets_fail_with_the_base_linear_layer_names():
    listed = r"'qkv' matches no module.*decoder\.blocks\.\*\.attn\.q_proj, .*mlp\.down_proj"
    with pytest.raises(ConfigError, match=listed):
        lora_classifier(Strategy("lora", lora_targets=["q_proj", "qkv"]))
    with pytest.raises(ConfigError, match="'attn' selects non-linear modules"):
        lora_classifier(Strategy("lora", lora_targets=["attn"]))
    with pytest.raises(ConfigError, match="lm_head.*tied"):
        lora_classifier(Strategy("lora", lora_targets=["lm_head"]))
    untied = lora_classifier(Strategy("lora", lora_targets=["lm_head"]), backbone=tiny_backbone(tie_embeddings=False))
    assert has_lora(untied)


def test_merged_adapters_give_the_same_outputs_as_unmerged_ones():
    module = lora_classifier(Strategy("lora", lora_rank=4, lora_alpha=8.0)).eval()
    randomise_adapters(module)
    ids = torch.randint(1, VOCAB, (3, 12))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        plain_before = tiny_backbone()(ids, mask)
        adapted = module(ids, mask)
        adapted_hidden = module.backbone(ids, mask)
    assert (adapted_hidden - plain_before).abs().max() > 1e-3  # the adapters change the function
    merged = merge_lora(module)
    assert merged is module and not has_lora(module)
    assert not any("lora" in type(m).__name__.lower() for m in module.modules())
    with torch.no_grad():
        difference = (module(ids, mask) - adapted).abs().max().item()
        hidden_difference = (module.backbone(ids, mask) - adapted_hidden).abs().max().item()
    print(f"merge max-abs difference: logits {difference:.2e}, hidden {hidden_difference:.2e}")
    assert difference <= 1e-5 and hidden_difference <= 1e-5
    # The export is the plain decoder again: same keys as a fresh one, loadable into it.
    fresh = tiny_backbone(seed=3)
    assert module.backbone.state_dict().keys() == fresh.state_dict().keys()
    fresh.load_state_dict(module.backbone.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(fresh(ids, mask), adapted_hidden, atol=1e-5, rtol=0)
    assert merge_lora(module) is module  # nothing left to merge


def test_lora_fit_moves_only_adapters_and_head_then_merges():
    module = lora_classifier()
    base_before = {n: p.detach().clone() for n, p in module.backbone.named_parameters() if "lora_" not in n}
    counts = module.parameter_counts()
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=batches())
    assert trainer.global_step == 6
    for name, p in module.backbone.named_parameters():
        if "lora_" in name:
            continue
        assert torch.equal(p, base_before[name]), name
    lora_b = [p for n, p in module.backbone.named_parameters() if "lora_B" in n]
    assert any(p.abs().max() > 0 for p in lora_b)  # trained away from zero
    assert module.parameter_counts() == counts
    module.eval()
    ids = torch.randint(1, VOCAB, (2, 10))
    with torch.no_grad():
        before = module(ids, torch.ones_like(ids))
        merge_lora(module)
        after = module(ids, torch.ones_like(ids))
    assert (after - before).abs().max().item() <= 1e-5


def test_lora_with_the_lm_head_reads_through_the_merged_base():
    backbone = tiny_backbone()
    module = FinetuneModule(backbone, LMHead(backbone.logits), Strategy("lora", lora_rank=2), None, "causal_lm")
    adapters = sum(p.numel() for n, p in backbone.named_parameters() if "lora_" in n)
    assert module.parameter_counts()["trainable"] == adapters
    randomise_adapters(module)
    ids = torch.randint(1, VOCAB, (2, 8))
    module.eval()
    with torch.no_grad():
        before = module(ids, torch.ones_like(ids))
        merge_lora(module.backbone)
        torch.testing.assert_close(module(ids, torch.ones_like(ids)), before, atol=1e-5, rtol=0)


# -- Hugging Face causal LMs: Linear projections (Llama, Qwen2) and GPT-2's Conv1D ------------------------------


@pytest.mark.parametrize("family", ["llama", "gpt2", "qwen2"])
def test_lora_on_hf_causal_lms_merges_back_to_the_original_classes_and_keys(family):
    pytest.importorskip("transformers")
    from hf_models import build_causal_lm

    from workbench.models.hf_causal import HFCausalBackbone

    backbone = HFCausalBackbone(build_causal_lm(family)[0])
    classes = {name: type(m) for name, m in backbone.named_modules()}
    keys = list(backbone.state_dict().keys())
    ids = torch.randint(0, 320, (2, 9))
    mask = torch.ones_like(ids)
    with torch.no_grad():
        plain = backbone.logits(backbone(ids, mask))
    adapted_names = add_lora(backbone, rank=4, alpha=8.0, dropout=0.0, targets=backbone.lora_targets())
    # GPT-2: c_attn, attn.c_proj, mlp.c_proj, c_fc (all Conv1D); the others: seven Linears, in each of 2 layers.
    assert len(adapted_names) == 2 * (4 if family == "gpt2" else 7)
    if family == "gpt2":
        assert {classes[n].__name__ for n in adapted_names} == {"Conv1D"}
    assert all(ADAPTER_MARK in n for n, p in backbone.named_parameters() if p.requires_grad)
    randomise_adapters(backbone)
    backbone.eval()
    with torch.no_grad():
        adapted = backbone.logits(backbone(ids, mask))
    assert (adapted - plain).abs().max() > 1e-3  # the adapters change the function
    loss = backbone.logits(backbone(ids, mask)).logsumexp(-1).mean()
    loss.backward()  # gradients reach the adapters through GPT-2's transposed weights too
    assert all(p.grad is not None for n, p in backbone.named_parameters() if "lora_A" in n)
    merge_lora(backbone)
    assert {name: type(m) for name, m in backbone.named_modules()} == classes
    assert list(backbone.state_dict().keys()) == keys
    with torch.no_grad():
        torch.testing.assert_close(backbone.logits(backbone(ids, mask)), adapted, atol=1e-5, rtol=0)


def test_conv1d_targets_are_listed_with_the_linear_layers():
    pytest.importorskip("transformers")
    from hf_models import build_causal_lm

    model = build_causal_lm("gpt2")[0]
    with pytest.raises(ConfigError, match=r"'q_proj' matches no module.*transformer\.h\.\*\.attn\.c_attn"):
        add_lora(model, rank=2, alpha=4.0, dropout=0.0, targets=["q_proj"])
    with pytest.raises(ConfigError, match="'attn' selects non-linear modules"):
        add_lora(model, rank=2, alpha=4.0, dropout=0.0, targets=["attn"])
    with pytest.raises(ConfigError, match="lm_head.*tied"):
        add_lora(model, rank=2, alpha=4.0, dropout=0.0, targets=["lm_head"])
