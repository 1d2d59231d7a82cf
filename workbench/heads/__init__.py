"""Fine-tuning heads: small nn.Modules that turn hidden states into predictions and a loss.

Every head has `forward(hidden, attention_mask) -> predictions` and
`loss(predictions, labels) -> scalar`, and a `kind` naming what it predicts.
Heads know hidden states and labels only; the base, the data and the training
loop live elsewhere.
"""

from workbench.heads.build import HEADS, build_head
from workbench.heads.classification import IGNORE_INDEX, SequenceClassificationHead, TokenClassificationHead
from workbench.heads.for_task import CLASSIFICATION_KINDS, HEAD_FOR_TASK, TASK_KINDS, head_for_task
from workbench.heads.lm import LMHead
from workbench.heads.pooling import POOLINGS, pool
from workbench.heads.regression import RegressionHead

__all__ = [
    "CLASSIFICATION_KINDS",
    "HEADS",
    "HEAD_FOR_TASK",
    "IGNORE_INDEX",
    "POOLINGS",
    "LMHead",
    "RegressionHead",
    "SequenceClassificationHead",
    "TASK_KINDS",
    "TokenClassificationHead",
    "build_head",
    "head_for_task",
    "pool",
]
