import json
import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from workbench.config import ConfigError
from workbench.heads import LMHead, RegressionHead, SequenceClassificationHead, TokenClassificationHead, build_head
from workbench.models import Decoder, DecoderBackbone, DecoderConfig
from workbench.modules import HEAD_FOR_TASK, FinetuneModule, OptimConfig, Strategy

VOCAB = 40
CLASSES = 3
LABELS = ["neg", "neutral", "pos"]


def tiny_backbone(seed: int = 0) -> DecoderBackbone:
    torch.manual_seed(seed)
    return DecoderBackbone(Decoder(DecoderConfig.from_preset("tiny", vocab_size=VOCAB, block_size=32)))


def fake_batches(kind: str, n_batches: int = 3, batch_size: int = 4, length: int = 10, seed: int = 0) -> list[dict]:
    """Batches shaped like the fine-tuning DataModule's: right padding with id 0, labels per task kind."""
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n_batches):
        lengths = torch.randint(length // 2, length + 1, (batch_size,), generator=g)
        lengths[0] = length
        mask = (torch.arange(length) < lengths[:, None]).long()
        ids = torch.randint(1, VOCAB, (batch_size, length), generator=g) * mask
        if kind == "sequence_classification":
            labels = ids[:, 0] % CLASSES
        elif kind == "regression":
            labels = ids[:, 0].float() / VOCAB
        elif kind == "token_classification":
            labels = (ids % CLASSES).masked_fill(mask == 0, -100)
            labels[:, 0] = -100  # an unlabelled token
        else:  # causal_lm: the first 4 tokens are the prompt
            labels = ids.masked_fill(mask == 0, -100)
            labels[:, :4] = -100
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    return batches


def make_module(kind: str, strategy: Strategy | None = None, label_names=None) -> FinetuneModule:
    backbone = tiny_backbone()
    num_labels = CLASSES if "classification" in kind else None
    head = build_head(HEAD_FOR_TASK[kind], backbone.hidden_size, num_labels, dropout=0.0, backbone=backbone)
    optim = OptimConfig(learning_rate=1e-2, warmup_steps=1, max_steps=30)
    return FinetuneModule(backbone, head, strategy or Strategy("full"), optim, kind, label_names)


def trainer(epochs: int = 1, **options) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, **options)


def loader(batches: list[dict]) -> DataLoader:
    return DataLoader(batches, batch_size=None)


def evaluate_by_hand(module: FinetuneModule, batches: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    module.eval()
    with torch.no_grad():
        predictions = [module(b["input_ids"], b["attention_mask"]) for b in batches]
    return predictions, [b["labels"] for b in batches]


def test_full_fine_tuning_fits_and_reports_classification_metrics():
    module = make_module("sequence_classification", label_names=LABELS)
    train, val = fake_batches("sequence_classification"), fake_batches("sequence_classification", seed=1)
    fit = trainer(epochs=2, gradient_clip_val=1.0)
    fit.fit(module, train_dataloaders=loader(train), val_dataloaders=loader(val))
    logged = fit.callback_metrics
    assert {"val_loss", "val_accuracy", "val_macro_f1"} <= set(logged) and "train_loss" in module.step_metrics
    predictions, labels = evaluate_by_hand(module, val)
    predicted, truth = torch.cat(predictions).argmax(-1), torch.cat(labels)
    assert logged["val_accuracy"].item() == pytest.approx((predicted == truth).float().mean().item())
    matrix = module.last_confusion_matrix
    assert matrix == [[int(((truth == t) & (predicted == p)).sum()) for p in range(CLASSES)] for t in range(CLASSES)]
    assert set(module.last_per_class_f1) == set(LABELS)
    sums = [F.cross_entropy(p, y, reduction="sum") for p, y in zip(predictions, labels, strict=True)]
    expected_loss = torch.stack(sums).sum() / 12
    assert logged["val_loss"].item() == pytest.approx(expected_loss.item(), rel=1e-5)

    fit.test(module, dataloaders=loader(val), verbose=False)
    final = module.final_metrics()
    assert final["test_accuracy"] == pytest.approx(final["val_accuracy"])
    assert final["test_confusion_matrix"] == matrix
    json.dumps(final)  # the recipe saves it as is
    counts = module.parameter_counts()
    assert counts["trainable"] == counts["total"]
    # Tied embeddings count once: the decoder's own count plus the head's.
    head = sum(p.numel() for p in module.head.parameters())
    assert counts["total"] == module.backbone.decoder.num_parameters() + head


def test_token_classification_metrics_ignore_unlabelled_tokens():
    module = make_module("token_classification", label_names=LABELS)
    val = fake_batches("token_classification", seed=2)
    fit = trainer()
    fit.fit(module, train_dataloaders=loader(fake_batches("token_classification")), val_dataloaders=loader(val))
    predictions, labels = evaluate_by_hand(module, val)
    keep = torch.cat([y.flatten() for y in labels]) != -100
    predicted = torch.cat([p.flatten(0, 1) for p in predictions]).argmax(-1)[keep]
    truth = torch.cat([y.flatten() for y in labels])[keep]
    assert fit.callback_metrics["val_accuracy"].item() == pytest.approx((predicted == truth).float().mean().item())
    f1 = module.last_per_class_f1
    for index, name in enumerate(LABELS):
        tp = ((predicted == index) & (truth == index)).sum().item()
        denominator = (predicted == index).sum().item() + (truth == index).sum().item()
        assert f1[name] == pytest.approx(2 * tp / denominator if denominator else 0.0, abs=1e-6)
    assert "val_per_class_f1" in module.final_metrics() and module.last_confusion_matrix is None


def test_regression_reports_mse_and_r2():
    module = make_module("regression")
    val = fake_batches("regression", seed=3)
    fit = trainer()
    fit.fit(module, train_dataloaders=loader(fake_batches("regression")), val_dataloaders=loader(val))
    predictions, labels = evaluate_by_hand(module, val)
    predicted, truth = torch.cat(predictions), torch.cat(labels)
    mse = ((predicted - truth) ** 2).mean().item()
    r2 = 1 - ((predicted - truth) ** 2).sum().item() / ((truth - truth.mean()) ** 2).sum().item()
    assert fit.callback_metrics["val_mse"].item() == pytest.approx(mse, rel=1e-4)
    assert fit.callback_metrics["val_r2"].item() == pytest.approx(r2, rel=1e-4, abs=1e-5)
    assert fit.callback_metrics["val_loss"].item() == pytest.approx(mse, rel=1e-4)


def test_causal_lm_reports_completion_loss_and_perplexity():
    module = make_module("causal_lm")
    assert isinstance(module.head, LMHead)
    val = fake_batches("causal_lm", seed=4)
    fit = trainer()
    fit.fit(module, train_dataloaders=loader(fake_batches("causal_lm")), val_dataloaders=loader(val))
    predictions, labels = evaluate_by_hand(module, val)
    total = sum(F.cross_entropy(p[:, :-1].flatten(0, 1), y[:, 1:].flatten(), reduction="sum")
                for p, y in zip(predictions, labels, strict=True))
    count = sum((y[:, 1:] != -100).sum() for y in labels)
    expected = (total / count).item()
    assert fit.callback_metrics["val_loss"].item() == pytest.approx(expected, rel=1e-5)
    assert fit.callback_metrics["val_perplexity"].item() == pytest.approx(math.exp(expected), rel=1e-5)
    assert module.step_metrics["train_loss"].item() < math.log(VOCAB) + 1


def test_mismatched_task_head_and_labels_fail_clearly():
    backbone = tiny_backbone()
    head = SequenceClassificationHead(backbone.hidden_size, CLASSES)
    with pytest.raises(ConfigError, match="sequence_classification, token_classification, regression, causal_lm"):
        FinetuneModule(backbone, head, None, None, "ner")
    with pytest.raises(ConfigError, match="'regression' needs a 'regression' head, got 'sequence_classification'"):
        FinetuneModule(backbone, head, None, None, "regression")
    with pytest.raises(ConfigError, match="'causal_lm' needs a 'lm' head"):
        FinetuneModule(backbone, TokenClassificationHead(backbone.hidden_size, 2), None, None, "causal_lm")
    with pytest.raises(ConfigError, match="3 classes but there are 2 label names"):
        FinetuneModule(backbone, head, None, None, "sequence_classification", ["a", "b"])
    with pytest.raises(ConfigError, match="classification only"):
        FinetuneModule(backbone, RegressionHead(backbone.hidden_size), None, None, "regression", ["a"])
    with pytest.raises(ConfigError, match="valid strategies"):
        FinetuneModule(backbone, head, {"name": "adapters"}, None, "sequence_classification")


def test_strategies_and_optimiser_settings_come_in_as_plain_dicts():
    backbone = tiny_backbone()
    module = FinetuneModule(backbone, SequenceClassificationHead(backbone.hidden_size, CLASSES),
                            {"name": "linear_probe"}, {"learning_rate": 1e-3, "max_steps": 10, "warmup_steps": 0},
                            "sequence_classification")
    assert module.strategy == Strategy("linear_probe") and module.optim.learning_rate == 1e-3
    assert module.hparams["strategy"]["name"] == "linear_probe"
    counts = module.parameter_counts()
    assert counts == {"trainable": 64 * CLASSES + CLASSES, "total": counts["total"]}


def test_gradient_clipping_bounds_the_trainable_norm_and_keeps_it():
    module = make_module("sequence_classification", Strategy("linear_probe"))
    module.log = lambda name, value, **kwargs: pytest.fail(f"{name} went through self.log (~0.8 ms a call)")
    for p in module.head.parameters():
        p.grad = torch.full_like(p, 10.0)
    module.configure_gradient_clipping(module.configure_optimizers()["optimizer"], gradient_clip_val=1.0)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.head.parameters()]))
    assert norm.item() == pytest.approx(1.0, rel=1e-4)
    assert module.step_metrics["grad_norm"] > 100


def test_bf16_mixed_precision_with_fused_adamw_and_clipping_trains_lora():
    module = make_module("sequence_classification", Strategy("lora", lora_rank=2, layer_lr_decay=0.8))
    fit = trainer(precision="bf16-mixed", gradient_clip_val=1.0)
    fit.fit(module, train_dataloaders=loader(fake_batches("sequence_classification")))
    assert fit.global_step == 3 and math.isfinite(module.step_metrics["train_loss"].item())
    assert "grad_norm" in module.step_metrics
