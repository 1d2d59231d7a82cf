"""The decoder's key/value cache: cached steps compute what the full sequence computes.

Each shape family that changes what the cache holds or how attention reads it:
multi-head, grouped-query (fewer, un-repeated key/value heads), untied embeddings,
batches, a one-token prompt, and the fallback once the sequence outgrows block_size.
"""

import pytest
import torch
from torch import nn

from workbench.errors import RequestError
from workbench.models import Decoder, DecoderConfig, generate
from workbench.models.decoder import KVCache

SHAPES = {
    "mha": dict(n_layer=2, n_head=4, d_model=64),
    "gqa": dict(n_layer=2, n_head=4, n_kv_head=2, d_model=64),
    "mqa": dict(n_layer=2, n_head=4, n_kv_head=1, d_model=64),
    "untied": dict(n_layer=2, n_head=2, d_model=64, tie_embeddings=False),
}


def make(shape: str, block_size: int = 48) -> Decoder:
    torch.manual_seed(0)
    return Decoder(DecoderConfig(vocab_size=61, block_size=block_size, **SHAPES[shape])).eval()


@pytest.fixture(params=list(SHAPES))
def model(request):
    return make(request.param)


@pytest.mark.parametrize("batch, prompt", [(1, 1), (2, 5), (3, 1)])
def test_each_cached_step_gives_the_full_sequences_logits_at_its_position(model, batch, prompt):
    idx = torch.randint(0, 61, (batch, prompt + 12))
    full = model(idx).logits
    out = model(idx[:, :prompt], use_cache=True)
    torch.testing.assert_close(out.logits, full[:, :prompt], atol=1e-5, rtol=1e-5)
    for t in range(prompt, idx.shape[1]):
        out = model(idx[:, t : t + 1], use_cache=True, past=out.past)
        assert out.past.length == t + 1
        torch.testing.assert_close(out.logits[:, 0], full[:, t], atol=1e-5, rtol=1e-5)


def test_a_chunk_of_several_tokens_after_a_cache_sees_it_through_the_offset_causal_mask(model):
    idx = torch.randint(0, 61, (2, 20))
    full = model(idx, output_attentions=True)
    first = model(idx[:, :7], use_cache=True)
    torch.testing.assert_close(model(idx[:, 7:], past=first.past).logits, full.logits[:, 7:], atol=1e-5, rtol=1e-5)
    # The explicit (probe) path reads the same rows of the attention pattern, cached keys included.
    chunk = model(idx[:, 7:], past=first.past, output_attentions=True)
    torch.testing.assert_close(chunk.logits, full.logits[:, 7:], atol=1e-5, rtol=1e-5)
    assert chunk.attentions[0].shape == (2, model.config.n_head, 13, 20)
    torch.testing.assert_close(chunk.attentions[-1], full.attentions[-1][:, :, 7:], atol=1e-5, rtol=1e-5)
    assert chunk.past is None  # no use_cache, no cache back


def test_the_cache_holds_un_repeated_key_value_heads_for_every_layer():
    model = make("gqa")
    past = model(torch.randint(0, 61, (3, 9)), use_cache=True).past
    assert isinstance(past, KVCache) and past.length == 9
    assert len(past.layers) == model.config.n_layer
    for k, v in past.layers:
        assert k.shape == v.shape == (3, 2, 9, model.config.head_dim)


def test_a_pass_leaves_the_cache_it_was_given_alone_so_a_prefix_can_branch():
    model = make("mha")
    past = model(torch.randint(0, 61, (1, 6)), use_cache=True).past
    a, b = torch.tensor([[3]]), torch.tensor([[4]])
    first = model(a, use_cache=True, past=past).logits
    model(b, use_cache=True, past=past)
    assert past.length == 6
    torch.testing.assert_close(model(a, use_cache=True, past=past).logits, first, atol=0, rtol=0)


def test_cached_length_plus_new_tokens_past_block_size_is_refused_naming_both():
    model = make("mha", block_size=16)
    past = model(torch.randint(0, 61, (1, 14)), use_cache=True).past
    with pytest.raises(RequestError, match=r"sequence length 17 \(14 cached \+ 3 new\) exceeds .* block_size 16"):
        model(torch.randint(0, 61, (1, 3)), past=past)


def test_without_use_cache_nothing_is_cached():
    model = make("mha")
    assert model(torch.randint(0, 61, (1, 5))).past is None


@pytest.mark.parametrize("batch, prompt", [(1, 1), (2, 6)])
def test_greedy_generation_is_the_same_with_and_without_the_cache(model, batch, prompt):
    idx = torch.randint(0, 61, (batch, prompt))
    cached = model.generate(idx, 30, temperature=0)
    assert torch.equal(cached, model.generate(idx, 30, temperature=0, use_cache=False))


@pytest.mark.parametrize("sampling", [dict(temperature=1.3), dict(temperature=0.8, top_k=10, top_p=0.9)])
def test_seeded_sampling_draws_the_same_tokens_with_and_without_the_cache(model, sampling):
    idx = torch.randint(0, 61, (2, 3))
    cached = model.generate(idx, 30, seed=7, **sampling)
    assert torch.equal(cached, model.generate(idx, 30, seed=7, use_cache=False, **sampling))


@pytest.mark.parametrize("shape", ["mha", "gqa"])
def test_past_block_size_generation_falls_back_and_still_matches(shape):
    model = make(shape, block_size=16)
    idx = torch.randint(0, 61, (2, 5))
    for sampling in (dict(temperature=0), dict(temperature=1.0, seed=3)):
        cached = model.generate(idx, 30, **sampling)  # 11 cached steps, then 19 on the sliding window
        assert cached.shape == (2, 35)
        assert torch.equal(cached, model.generate(idx, 30, use_cache=False, **sampling))


def _lengths_fed(model: nn.Module) -> tuple[list[int], object]:
    fed: list[int] = []
    handle = model.register_forward_pre_hook(lambda module, args: fed.append(args[0].shape[1]))
    return fed, handle


def test_generate_prefills_once_then_feeds_one_token_a_step_then_falls_back_at_block_size():
    model = make("mha", block_size=8)
    fed, handle = _lengths_fed(model)
    model.generate(torch.zeros(1, 5, dtype=torch.long), 6, seed=0)
    handle.remove()
    assert fed == [5, 1, 1, 1, 8, 8]  # 5, 6, 7, 8 tokens fit; the 9th slides the window


def test_use_cache_false_runs_the_whole_context_every_step():
    model = make("mha")
    fed, handle = _lengths_fed(model)
    model.generate(torch.zeros(1, 3, dtype=torch.long), 3, seed=0, use_cache=False)
    handle.remove()
    assert fed == [3, 4, 5]


def test_a_model_that_does_not_support_the_cache_is_called_as_before():
    class Plain(nn.Module):
        """A model with no supports_kv_cache, whose forward knows no use_cache."""

        def __init__(self, inner: Decoder) -> None:
            super().__init__()
            self.inner, self.config = inner, inner.config

        def forward(self, idx):
            return self.inner(idx)

    inner = make("mha")
    idx = torch.randint(0, 61, (1, 4))
    out = generate(Plain(inner), idx, 10, temperature=0)
    assert torch.equal(out, inner.generate(idx, 10, temperature=0))
