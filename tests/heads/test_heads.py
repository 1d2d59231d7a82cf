import ast
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import workbench.heads
from workbench.config import ConfigError
from workbench.heads import (
    HEADS,
    LMHead,
    RegressionHead,
    SequenceClassificationHead,
    TokenClassificationHead,
    build_head,
    pool,
)
from workbench.models import Decoder, DecoderBackbone, DecoderConfig

VOCAB = 40


def tiny_backbone(seed: int = 0) -> DecoderBackbone:
    torch.manual_seed(seed)
    return DecoderBackbone(Decoder(DecoderConfig.from_preset("tiny", vocab_size=VOCAB, block_size=32))).eval()


class FakeEncoder(nn.Module):
    """Stands in for an encoder backbone: hidden states, no logits."""

    kind = "encoder"
    default_pooling = "first"
    hidden_size = 8


def test_pooling_reads_only_real_tokens():
    hidden = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    torch.testing.assert_close(pool(hidden, mask, "mean"), torch.stack([hidden[0, :3].mean(0), hidden[1, :2].mean(0)]))
    torch.testing.assert_close(pool(hidden, mask, "last"), torch.stack([hidden[0, 2], hidden[1, 1]]))
    torch.testing.assert_close(pool(hidden, mask, "first"), hidden[:, 0])
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])  # also right for left padding
    torch.testing.assert_close(pool(hidden, left, "last"), hidden[:, 3])
    torch.testing.assert_close(pool(hidden, left, "first"), torch.stack([hidden[0, 1], hidden[1, 2]]))


def test_unknown_pooling_names_the_valid_ones():
    with pytest.raises(ConfigError, match="mean, last, first"):
        pool(torch.zeros(1, 2, 3), torch.ones(1, 2), "max")
    with pytest.raises(ConfigError, match="mean, last, first"):
        SequenceClassificationHead(8, 2, pooling="cls")


@pytest.mark.parametrize("pooling", ["mean", "last", "first"])
def test_sequence_head_on_a_decoder_ignores_right_padding(pooling):
    backbone = tiny_backbone()
    head = SequenceClassificationHead(backbone.hidden_size, 3, pooling=pooling).eval()
    ids = torch.randint(1, VOCAB, (1, 6))
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 6 + [0] * 4])
    short = head(backbone(ids, torch.ones_like(ids)), torch.ones_like(ids))
    long = head(backbone(padded, mask), mask)
    assert short.shape == (1, 3)
    torch.testing.assert_close(long, short)
    labels = torch.tensor([2])
    torch.testing.assert_close(head.loss(long, labels), F.cross_entropy(long, labels))


def test_token_head_loss_ignores_unlabelled_positions():
    head = TokenClassificationHead(8, 4)
    logits = head(torch.randn(2, 5, 8), torch.ones(2, 5))
    assert logits.shape == (2, 5, 4)
    labels = torch.tensor([[0, 3, -100, 1, -100], [2, -100, -100, -100, -100]])
    keep = labels != -100
    torch.testing.assert_close(head.loss(logits, labels), F.cross_entropy(logits[keep], labels[keep]))
    changed = logits.detach().clone()
    changed[~keep] += 100.0
    torch.testing.assert_close(head.loss(changed, labels), head.loss(logits.detach(), labels))
    nothing = head.loss(logits, torch.full_like(labels, -100))
    assert nothing.item() == 0.0 and nothing.requires_grad


def test_regression_head_predicts_one_number_per_sequence():
    head = RegressionHead(8, pooling="last")
    predictions = head(torch.randn(3, 5, 8), torch.ones(3, 5))
    assert predictions.shape == (3,)
    labels = torch.tensor([0.5, -1.0, 2.0])
    torch.testing.assert_close(head.loss(predictions, labels), ((predictions - labels) ** 2).mean())


def test_lm_head_scores_only_completion_tokens_shifted_by_one():
    backbone = tiny_backbone()
    head = LMHead(backbone.logits)
    assert list(head.parameters()) == []  # the output layer belongs to the base
    ids = torch.randint(1, VOCAB, (2, 7))
    mask = torch.ones_like(ids)
    logits = head(backbone(ids, mask), mask)
    torch.testing.assert_close(logits, backbone.decoder(ids).logits)
    labels = ids.clone()
    labels[:, :4] = -100  # prompt
    labels[1, 6] = -100  # padding
    # Positions 3..5 predict tokens 4..6 (and position 5 of row 1 predicts padding: not scored).
    expected = torch.cat([F.cross_entropy(logits[0, 3:6], ids[0, 4:7], reduction="none"),
                          F.cross_entropy(logits[1, 3:5], ids[1, 4:6], reduction="none")]).mean()
    torch.testing.assert_close(head.loss(logits, labels), expected)
    # What the prompt positions predict, and what the last position predicts, don't matter.
    changed = logits.detach().clone()
    changed[:, :3] += torch.randn_like(changed[:, :3])
    changed[:, 6] += 5.0
    torch.testing.assert_close(head.loss(changed, labels), expected.detach())


def test_build_head_makes_each_kind_and_defaults_pooling_to_the_backbone():
    backbone = tiny_backbone()
    heads = {kind: build_head(kind, backbone.hidden_size, num_labels=3 if "class" in kind else None, backbone=backbone)
             for kind in HEADS}
    assert isinstance(heads["sequence_classification"], SequenceClassificationHead)
    assert heads["sequence_classification"].pooling == "last"  # a decoder's summarising position
    assert isinstance(heads["token_classification"], TokenClassificationHead)
    assert isinstance(heads["regression"], RegressionHead) and heads["regression"].pooling == "last"
    assert isinstance(heads["lm"], LMHead)
    assert build_head("regression", 8).pooling == "mean"  # no backbone
    assert build_head("sequence_classification", 8, 2, pooling="first").pooling == "first"
    assert all(head.kind == kind for kind, head in heads.items())


def test_build_head_errors_are_clear():
    with pytest.raises(ConfigError, match="sequence_classification, token_classification, regression, lm"):
        build_head("multilabel", 8, 2)
    with pytest.raises(ConfigError, match="num_labels"):
        build_head("sequence_classification", 8)
    with pytest.raises(ConfigError, match="num_classes >= 2"):
        build_head("token_classification", 8, 1)
    with pytest.raises(ConfigError, match="one number"):
        build_head("regression", 8, 3)
    with pytest.raises(ConfigError, match="mean, last, first"):
        build_head("regression", 8, pooling="max")
    with pytest.raises(ConfigError, match="backbone of kind 'encoder'.*decoder"):
        build_head("lm", 8, backbone=FakeEncoder())
    with pytest.raises(ConfigError, match="no backbone"):
        build_head("lm", 8)


def test_heads_import_nothing_from_modules_or_data():
    for path in Path(workbench.heads.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("workbench.modules", "workbench.data")), f"{path.name} imports {name}"
