"""Each process's share of a global batch: together the ranks read what one process reads at the global batch."""

import pytest
import torch

from workbench.data.datamodule import EvaluationBatches, ShuffledBatches
from workbench.errors import RequestError


def test_two_ranks_take_the_halves_of_the_batches_one_process_takes_at_twice_the_batch():
    whole = list(ShuffledBatches(37, 8, seed=3))
    ranks = [list(ShuffledBatches(37, 4, seed=3, rank=r, world=2)) for r in range(2)]
    assert len(whole) == len(ranks[0]) == len(ranks[1]) == 37 // 8
    for step, batch in enumerate(whole):
        assert torch.equal(torch.cat([ranks[0][step], ranks[1][step]]), batch)


def test_a_resumed_rank_continues_its_own_share_mid_epoch():
    ranks_from_start = list(ShuffledBatches(40, 4, seed=1, rank=1, world=2)) + list(
        ShuffledBatches(40, 4, seed=1, rank=1, world=2))
    resumed = ShuffledBatches(40, 4, seed=1, start=3, rank=1, world=2)
    assert [b.tolist() for b in resumed] == [b.tolist() for b in ranks_from_start[3:5]]


def test_ranks_evaluate_every_block_once_and_a_prefix_of_n_batches_covers_one_process_s_n_batches():
    whole = list(EvaluationBatches(23, 6))
    ranks = [list(EvaluationBatches(23, 3, rank=r, world=2)) for r in range(2)]
    assert sorted(torch.cat([*ranks[0], *ranks[1]]).tolist()) == list(range(23))
    for n in (1, 2):  # limit_val_batches=n on every rank reads the blocks of n global batches
        assert sorted(torch.cat(ranks[0][:n] + ranks[1][:n]).tolist()) == sorted(torch.cat(whole[:n]).tolist())
    assert len(EvaluationBatches(23, 3, rank=1, world=2)) == len(ranks[1])
    assert all(len(batch) for rank in ranks for batch in rank), "an empty slice of the last batch is skipped"


def test_a_rank_outside_the_world_is_refused():
    with pytest.raises(RequestError, match=r"rank must be in \[0, 2\), got 2"):
        ShuffledBatches(10, 2, seed=0, rank=2, world=2)
