"""One table from task kind to head: every list of task kinds in the workbench is read from it."""

import pytest
import torch

from workbench.config import ConfigError
from workbench.heads import HEAD_FOR_TASK, HEADS, TASK_KINDS, build_head, head_for_task
from workbench.models import Decoder, DecoderBackbone, DecoderConfig


def test_every_user_reads_the_one_table():
    import workbench.data as data
    import workbench.data.tasks as tasks
    import workbench.data.tasks.generic as generic
    import workbench.data.tasks.load as load
    import workbench.modules as modules
    import workbench.modules.finetune_settings as finetune_settings

    assert TASK_KINDS == tuple(HEAD_FOR_TASK) == ("sequence_classification", "token_classification", "regression",
                                                  "causal_lm")
    for where in (data, tasks, generic, load, modules):
        assert where.TASK_KINDS is TASK_KINDS, where.__name__
    assert modules.HEAD_FOR_TASK is HEAD_FOR_TASK
    assert finetune_settings.DEFAULT_HEADS is HEAD_FOR_TASK


def test_each_task_kind_gets_a_head_that_exists_and_says_so():
    torch.manual_seed(0)
    backbone = DecoderBackbone(Decoder(DecoderConfig.from_preset("tiny", vocab_size=40, block_size=16)))
    for task_kind, head_kind in HEAD_FOR_TASK.items():
        assert head_for_task(task_kind) == head_kind and head_kind in HEADS
        head = build_head(head_kind, backbone.hidden_size, num_labels=3 if "classification" in task_kind else None,
                          backbone=backbone)
        assert head.kind == head_kind


def test_an_unknown_task_kind_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown task kind 'ner'; valid kinds are: sequence_classification, "
                                          "token_classification, regression, causal_lm"):
        head_for_task("ner")
