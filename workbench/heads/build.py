"""Build a head by name, checking its options against the base before any training."""

from __future__ import annotations

from torch import nn

from workbench.config import ConfigError
from workbench.heads.choices import HEADS
from workbench.heads.classification import SequenceClassificationHead, TokenClassificationHead
from workbench.heads.lm import LMHead
from workbench.heads.pooling import check_pooling
from workbench.heads.regression import RegressionHead


def build_head(
    kind: str,
    hidden_size: int,
    num_labels: int | None = None,
    pooling: str | None = None,
    dropout: float = 0.1,
    backbone: nn.Module | None = None,
) -> nn.Module:
    """A head of `kind` for hidden states of `hidden_size`.

    `pooling` None means the backbone's `default_pooling` (its summarising
    position), or "mean" without a backbone; heads that do not pool ignore it.
    The LM head reads through `backbone.logits`, so it needs a decoder backbone.
    """
    if kind not in HEADS:
        raise ConfigError(f"unknown head {kind!r}; valid heads are: {', '.join(HEADS)}")
    if pooling is None:
        pooling = getattr(backbone, "default_pooling", "mean")
    check_pooling(pooling)
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"head dropout must be in [0, 1), got {dropout}")
    if kind in ("sequence_classification", "token_classification"):
        if num_labels is None:
            raise ConfigError(f"a {kind} head needs num_labels (the number of classes)")
        if kind == "sequence_classification":
            return SequenceClassificationHead(hidden_size, num_labels, pooling=pooling, dropout=dropout)
        return TokenClassificationHead(hidden_size, num_labels, dropout=dropout)
    if kind == "regression":
        if num_labels not in (None, 1):
            raise ConfigError(f"a regression head predicts one number; got num_labels={num_labels}")
        return RegressionHead(hidden_size, pooling=pooling, dropout=dropout)
    logits = getattr(backbone, "logits", None)
    # An encoder's logits predict the token at each position (masked-LM), not the next one.
    if not callable(logits) or getattr(backbone, "kind", None) != "decoder":
        kind_of = getattr(backbone, "kind", type(backbone).__name__)
        what = "no backbone" if backbone is None else f"a backbone of kind {kind_of!r}"
        raise ConfigError(
            f"the lm head reads through a decoder's output layer (backbone.logits), but got {what}; "
            "use a decoder base for causal_lm, or a classification/regression head for an encoder"
        )
    return LMHead(logits)
