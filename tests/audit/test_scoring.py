"""The audit's scoring: a padded batch gives each sequence what it gets alone, and greedy is greedy."""

import pytest
import torch

from workbench.audit.scoring import continuation_log_likelihoods, greedy_continuations, token_log_probs
from workbench.errors import RequestError
from workbench.models import Decoder
from workbench.models.config import DecoderConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Decoder(DecoderConfig.from_preset("tiny", vocab_size=256, block_size=32)).eval()


def test_batched_log_probs_equal_one_at_a_time(model):
    sequences = [[1, 2, 3, 4, 5, 6], [7, 8], [9, 10, 11]]
    together = token_log_probs(model, sequences, batch_size=8)
    for seq, row in zip(sequences, together, strict=True):
        alone = token_log_probs(model, [seq])[0]
        assert row.shape == (len(seq) - 1,)
        assert torch.allclose(row, alone, atol=1e-5)
        logits = model(torch.tensor([seq])).logits.log_softmax(-1)[0]
        assert torch.allclose(row, logits[:-1].gather(-1, torch.tensor(seq[1:])[:, None]).squeeze(-1), atol=1e-5)


def test_continuation_likelihood_is_the_sum_after_the_prompt(model):
    prompt, continuation = [1, 2, 3], [4, 5]
    full = token_log_probs(model, [prompt + continuation])[0]
    (score,) = continuation_log_likelihoods(model, [prompt], [continuation])
    assert score == pytest.approx(float(full[2:].sum()), abs=1e-5)


def test_greedy_continuation_takes_the_argmax(model):
    prompts = [[1, 2, 3], [4, 5, 6], [7, 8]]
    out = greedy_continuations(model, prompts, 3, batch_size=2)
    for prompt, continued in zip(prompts, out, strict=True):
        ids = list(prompt)
        for _ in range(3):
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
        assert continued == ids[len(prompt):]


def test_too_long_and_empty_inputs_are_refused(model):
    with pytest.raises(RequestError, match="block_size 32"):
        token_log_probs(model, [list(range(40))])
    with pytest.raises(RequestError, match="empty"):
        greedy_continuations(model, [[]], 2)
