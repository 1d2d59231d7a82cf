"""BERT's masking recipe, exact on a seeded batch, and the loss that reads the selected positions only."""

import torch

from workbench.modules.masked_lm import IGNORE, Masking, mask_tokens, masked_lm_loss, step_generator

MASK = 99


def masked_batch(seed: int = 0, shape=(8, 100)):
    ids = torch.randint(0, MASK, shape, generator=torch.Generator().manual_seed(123))
    inputs, targets = mask_tokens(ids, mask_token_id=MASK, generator=torch.Generator().manual_seed(seed))
    return ids, inputs, targets


def test_each_sequence_has_exactly_bert_s_proportions():
    ids, inputs, targets = masked_batch()
    selected = targets != IGNORE
    assert selected.sum(1).tolist() == [15] * 8  # 15% of 100 positions
    assert torch.equal(targets[selected], ids[selected])  # the targets are the original tokens
    assert torch.equal(inputs[~selected], ids[~selected])  # unselected positions are untouched
    masked = inputs == MASK
    assert (masked <= selected).all() and masked.sum(1).tolist() == [12] * 8  # 80% of 15
    changed = selected & ~masked & (inputs != ids)
    kept = selected & ~masked & (inputs == ids)
    # 10% random (2 of 15, rounded half to even), always another token than the original; the rest kept
    assert changed.sum(1).tolist() == [2] * 8 and kept.sum(1).tolist() == [1] * 8
    assert Masking().counts(100) == (15, 12, 2)
    assert (inputs[changed] < MASK).all()  # random replacements are real tokens, never the mask


def test_the_same_seed_masks_the_same_way_and_another_does_not():
    _, a_inputs, a_targets = masked_batch(seed=1)
    _, b_inputs, b_targets = masked_batch(seed=1)
    _, c_inputs, _ = masked_batch(seed=2)
    assert torch.equal(a_inputs, b_inputs) and torch.equal(a_targets, b_targets)
    assert not torch.equal(a_inputs, c_inputs)
    assert torch.equal(step_generator(3, 7).get_state(), step_generator(3, 7).get_state())
    assert not torch.equal(step_generator(3, 7).get_state(), step_generator(3, 8).get_state())


def test_short_sequences_still_select_one_position():
    assert Masking().counts(3) == (1, 1, 0)
    ids = torch.arange(6).view(2, 3)
    _, targets = mask_tokens(ids, mask_token_id=MASK, generator=torch.Generator().manual_seed(0))
    assert ((targets != IGNORE).sum(1) == 1).all()


def test_the_loss_reads_only_the_selected_positions():
    _, inputs, targets = masked_batch()
    logits = torch.randn(*inputs.shape, MASK + 1)
    loss = masked_lm_loss(logits, targets)
    elsewhere = logits.clone()
    elsewhere[targets == IGNORE] = torch.randn_like(elsewhere[targets == IGNORE])
    assert torch.equal(loss, masked_lm_loss(elsewhere, targets))
    selected = targets != IGNORE
    expected = torch.nn.functional.cross_entropy(logits[selected], targets[selected])
    assert torch.allclose(loss, expected)
