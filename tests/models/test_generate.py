import pytest
import torch

from workbench.models import Decoder, DecoderConfig, filter_logits


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return Decoder(DecoderConfig.from_preset("tiny", vocab_size=50, block_size=16))


def test_generate_appends_tokens_and_crops_context_to_block_size(tiny):
    prompt = torch.randint(0, 50, (2, 5))
    out = tiny.generate(prompt, 20, seed=0)
    assert out.shape == (2, 25)
    assert torch.equal(out[:, :5], prompt)


def test_same_seed_same_text_other_seed_other_text(tiny):
    prompt = torch.zeros(1, 1, dtype=torch.long)
    a = tiny.generate(prompt, 30, temperature=1.5, seed=1)
    b = tiny.generate(prompt, 30, temperature=1.5, seed=1)
    c = tiny.generate(prompt, 30, temperature=1.5, seed=2)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_temperature_zero_is_greedy(tiny):
    prompt = torch.randint(0, 50, (1, 4))
    out = tiny.generate(prompt, 1, temperature=0)
    assert out[0, -1] == tiny(prompt).logits[0, -1].argmax()


def test_top_k_one_equals_greedy(tiny):
    prompt = torch.randint(0, 50, (1, 4))
    assert torch.equal(tiny.generate(prompt, 8, top_k=1, seed=3), tiny.generate(prompt, 8, temperature=0))


def test_generate_restores_training_mode(tiny):
    tiny.train()
    tiny.generate(torch.zeros(1, 1, dtype=torch.long), 2, seed=0)
    assert tiny.training


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    # 0.5 + 0.3 reaches 0.8: the nucleus for top_p=0.8 is the first two tokens.
    assert torch.isinf(filter_logits(logits, top_p=0.8)).tolist() == [[False, False, True, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.81)).tolist() == [[False, False, False, True]]
    assert torch.isinf(filter_logits(logits, top_p=0.1)).tolist() == [[False, True, True, True]]


@pytest.mark.parametrize(
    "kwargs, message",
    [({"temperature": -1}, "temperature"), ({"top_p": 0.0}, "top_p"), ({"top_k": -2}, "top_k")],
)
def test_bad_sampling_settings_are_refused(tiny, kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny.generate(torch.zeros(1, 1, dtype=torch.long), 2, **kwargs)
