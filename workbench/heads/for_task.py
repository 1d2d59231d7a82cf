"""Which head answers which kind of task: the one table of task kinds.

Tasks are named by what they ask, heads by what they compute; a head is
defined by the labels it predicts, so the table lives with the heads. Every
list of task kinds (the data's, the settings', the metrics') reads it.
"""

from __future__ import annotations

from workbench.config import ConfigError

# task kind -> the head kind that answers it (and that a run gets unless it names another)
HEAD_FOR_TASK = {
    "sequence_classification": "sequence_classification",
    "token_classification": "token_classification",
    "regression": "regression",
    "causal_lm": "lm",
}
TASK_KINDS = tuple(HEAD_FOR_TASK)
CLASSIFICATION_KINDS = ("sequence_classification", "token_classification")  # labels are class indices


def head_for_task(task_kind: str) -> str:
    """The head kind `task_kind` needs; an unknown kind fails naming the valid ones."""
    if task_kind not in HEAD_FOR_TASK:
        raise ConfigError(f"unknown task kind {task_kind!r}; valid kinds are: {', '.join(TASK_KINDS)}")
    return HEAD_FOR_TASK[task_kind]
