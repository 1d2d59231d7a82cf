"""Fine-tuning heads: small nn.Modules that turn hidden states into predictions and a loss.

Every head has `forward(hidden, attention_mask) -> predictions` and
`loss(predictions, labels) -> scalar`, and a `kind` naming what it predicts.
Heads know hidden states and labels only; the base, the data and the training
loop live elsewhere.
"""

from workbench.lazy import exports_of, lazy_exports

_EXPORTS = exports_of({
    "workbench.heads.build": ["HEADS", "build_head"],
    "workbench.heads.classification": ["IGNORE_INDEX", "SequenceClassificationHead", "TokenClassificationHead"],
    "workbench.heads.for_task": ["CLASSIFICATION_KINDS", "HEAD_FOR_TASK", "TASK_KINDS", "head_for_task"],
    "workbench.heads.lm": ["LMHead"],
    "workbench.heads.pooling": ["POOLINGS", "pool"],
    "workbench.heads.regression": ["RegressionHead"],
})
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
