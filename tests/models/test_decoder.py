import pytest
import torch

from workbench.config import ConfigError
from workbench.models import PRESETS, Decoder, DecoderConfig


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return Decoder(DecoderConfig.from_preset("tiny", vocab_size=97, block_size=32)).eval()


def test_shapes_of_logits_hidden_states_and_attentions(tiny):
    idx = torch.randint(0, 97, (3, 20))
    out = tiny(idx, output_hidden_states=True, output_attentions=True)
    assert out.logits.shape == (3, 20, 97)
    assert out.last_hidden.shape == (3, 20, 64)
    assert len(out.hidden_states) == tiny.config.n_layer + 1
    assert all(h.shape == (3, 20, 64) for h in out.hidden_states)
    assert len(out.attentions) == tiny.config.n_layer
    assert out.attentions[0].shape == (3, 2, 20, 20)


def test_attention_weights_are_causal_distributions(tiny):
    out = tiny(torch.randint(0, 97, (1, 12)), output_attentions=True)
    weights = out.attentions[-1][0]
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 12))
    assert torch.all(weights.triu(diagonal=1) == 0)


def test_explicit_attention_path_matches_fused_kernel(tiny):
    idx = torch.randint(0, 97, (2, 16))
    torch.testing.assert_close(tiny(idx).logits, tiny(idx, output_attentions=True).logits, atol=1e-5, rtol=1e-5)


def test_changing_a_later_token_leaves_earlier_logits_unchanged(tiny):
    idx = torch.randint(0, 97, (1, 24))
    changed = idx.clone()
    changed[0, 15] = (idx[0, 15] + 1) % 97
    a, b = tiny(idx).logits, tiny(changed).logits
    torch.testing.assert_close(a[:, :15], b[:, :15], atol=0, rtol=0)
    assert not torch.allclose(a[:, 15:], b[:, 15:])


def test_logit_lens_on_last_hidden_state_reproduces_logits(tiny):
    idx = torch.randint(0, 97, (2, 10))
    out = tiny(idx, output_hidden_states=True)
    torch.testing.assert_close(tiny.logits_from_hidden(out.hidden_states[-1]), out.logits)


@pytest.mark.parametrize(
    "preset, millions",
    [("tiny", 0.1232), ("nano", 0.886), ("micro", 2.71), ("small", 4.89), ("medium", 25.8), ("gpt2-small", 123.6)],
)
def test_preset_parameter_counts(preset, millions):
    config = DecoderConfig.from_preset(preset)
    with torch.device("meta"):
        model = Decoder(config)
    assert model.num_parameters() / 1e6 == pytest.approx(millions, rel=0.005)


def test_every_preset_is_covered_by_the_count_test():
    assert set(PRESETS) == {"tiny", "nano", "micro", "small", "medium", "gpt2-small"}


def test_tied_embeddings_share_one_tensor_and_untied_do_not():
    tied = Decoder(DecoderConfig.from_preset("tiny"))
    untied = Decoder(DecoderConfig.from_preset("tiny", tie_embeddings=False))
    assert tied.lm_head.weight is tied.embed.weight
    assert untied.num_parameters() - tied.num_parameters() == 256 * 64


def test_grouped_query_attention_runs_with_fewer_kv_heads():
    model = Decoder(DecoderConfig(n_layer=1, n_head=4, n_kv_head=2, d_model=64, block_size=16))
    assert model.blocks[0].attn.k_proj.out_features == 32
    assert model(torch.randint(0, 256, (1, 8))).logits.shape == (1, 8, 256)


def test_sequence_longer_than_block_size_is_refused(tiny):
    with pytest.raises(ValueError, match="block_size 32"):
        tiny(torch.zeros(1, 33, dtype=torch.long))


@pytest.mark.parametrize(
    "values, message",
    [
        ({"d_model": 65, "n_head": 2}, "not divisible"),
        ({"n_head": 4, "n_kv_head": 3}, "multiple of n_kv_head"),
        ({"dropout": 1.5}, "dropout"),
        ({"n_layers": 2}, "unknown key.*n_layers.*valid keys"),
        ({"n_layer": "2"}, "n_layer: expected int"),
    ],
)
def test_bad_configs_name_the_problem(values, message):
    with pytest.raises(ConfigError, match=message):
        DecoderConfig.from_dict(values)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid presets are: tiny, nano"):
        DecoderConfig.from_preset("huge")


def test_activation_checkpointing_gives_the_same_loss_and_gradients_and_saves_less():
    torch.manual_seed(0)
    model = Decoder(DecoderConfig.from_preset("tiny", vocab_size=97, block_size=32))
    idx = torch.randint(0, 97, (2, 32))

    def run(checkpointing):
        model.zero_grad()
        model.activation_checkpointing = checkpointing
        saved = []  # tensors autograd keeps for the backward pass (checkpointed blocks keep only inputs)
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
            loss = model(idx).logits.logsumexp(-1).mean()
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()], sum(saved)

    plain_loss, plain_grads, plain_saved = run(False)
    ckpt_loss, ckpt_grads, ckpt_saved = run(True)
    torch.testing.assert_close(ckpt_loss, plain_loss, rtol=0, atol=0)
    for a, b in zip(ckpt_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b)
    assert ckpt_saved < plain_saved / 2


def test_activation_checkpointing_leaves_probe_outputs_and_eval_alone(tiny):
    tiny.activation_checkpointing = True
    out = tiny(torch.randint(0, 97, (1, 8)), output_hidden_states=True, output_attentions=True)
    assert len(out.hidden_states) == 3 and out.attentions[0].shape == (1, 2, 8, 8)


def test_rotary_with_the_sign_folded_into_the_table_is_bitwise_rotate_half():
    from workbench.models.decoder import apply_rotary, rotary_tables, sign_folded_sin

    cos, sin = rotary_tables(16, 10, 10000.0)
    x = torch.randn(2, 3, 10, 16)
    rotate_half = torch.cat([-x[..., 8:], x[..., :8]], dim=-1)  # the textbook form
    assert torch.equal(apply_rotary(x, cos, sign_folded_sin(sin)), x * cos + rotate_half * sin)
    # Position 0 is the identity; the rotation keeps each pair's length.
    torch.testing.assert_close(apply_rotary(x, cos, sign_folded_sin(sin))[..., 0, :], x[..., 0, :])

    def pairs(t):
        return t[..., :8] ** 2 + t[..., 8:] ** 2

    torch.testing.assert_close(pairs(apply_rotary(x, cos, sign_folded_sin(sin))), pairs(x))


@pytest.mark.parametrize("tied", [True, False])
def test_from_state_builds_the_same_model_without_drawing_weights(tied):
    config = DecoderConfig.from_preset("tiny", tie_embeddings=tied)
    torch.manual_seed(0)
    original = Decoder(config).eval()
    state = {k: v.clone() for k, v in original.state_dict().items() if not (tied and k == "lm_head.weight")}
    rebuilt = Decoder.from_state(config, state)
    ids = torch.randint(0, config.vocab_size, (2, 16))
    assert torch.equal(rebuilt(ids).logits, original(ids).logits) and not rebuilt.training
    assert (rebuilt.lm_head.weight is rebuilt.embed.weight) == tied
    assert rebuilt.num_parameters() == original.num_parameters()
    del state["blocks.1.mlp.up_proj.weight"]
    with pytest.raises(ValueError, match=r"missing \['blocks\.1\.mlp\.up_proj\.weight'\]"):
        Decoder.from_state(config, state)


def test_fused_projections_equal_the_separate_ones_and_a_wrapped_projection_is_called_as_itself():
    from torch import nn

    from workbench.models.decoder import fused_linear

    torch.manual_seed(0)
    q, k, v = nn.Linear(8, 8, bias=False), nn.Linear(8, 4, bias=False), nn.Linear(8, 4, bias=False)
    x = torch.randn(4, 8, 8)  # 32 rows: the fused path
    separate = torch.cat([q(x), k(x), v(x)], dim=-1)
    torch.testing.assert_close(fused_linear(x, q, k, v), separate)
    one_token = x[:, :1]  # KV-cache decoding: each projection on its own, no weight copy
    torch.testing.assert_close(fused_linear(one_token, q, k, v), separate[:, :1])
    # A LoRA-style wrapper adds to its base's output: the fused path must not skip it.
    class Shifted(nn.Module):
        def __init__(self, base):
            super().__init__()
            self.base, self.weight = base, base.weight

        def forward(self, x):
            return self.base(x) + 1.0

    shifted = fused_linear(x, q, Shifted(k), v)
    torch.testing.assert_close(shifted[..., 8:12], k(x) + 1.0)
    torch.testing.assert_close(shifted[..., :8], q(x))


def test_gradients_reach_each_projection_of_the_fused_matmul(tiny):
    tiny.train()
    idx = torch.randint(0, tiny.config.vocab_size, (2, 8))
    tiny(idx).logits.sum().backward()
    block = tiny.blocks[0]
    for proj in (block.attn.q_proj, block.attn.k_proj, block.attn.v_proj, block.mlp.gate_proj, block.mlp.up_proj):
        assert proj.weight.grad is not None and proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("head_dim, attends_in", [(32, torch.float32), (64, torch.bfloat16)])
def test_narrow_heads_attend_in_fp32_under_cpu_bf16_autocast(monkeypatch, head_dim, attends_in):
    """The CPU's bf16 flash kernel is the slower one for heads under 64 wide: those attend in fp32 and hand bf16 on."""
    from workbench.models import decoder

    seen = []
    kernel = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(decoder.F, "scaled_dot_product_attention",
                        lambda q, k, v, **kw: seen.append(q.dtype) or kernel(q, k, v, **kw))
    q, k, v = (torch.randn(2, 2, 8, head_dim).bfloat16() for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = decoder.attention(q, k, v, is_causal=True)
    assert seen == [attends_in] and out.dtype == torch.bfloat16
    expected = kernel(q.float(), k.float(), v.float(), is_causal=True)
    assert torch.allclose(out.float(), expected, atol=2e-2)
