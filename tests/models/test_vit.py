import pytest
import torch

from workbench.config import ConfigError
from workbench.errors import RequestError
from workbench.models.vit import VIT_PRESETS, ViT, ViTConfig, patchify, unpatchify


def tiny_vit(**overrides) -> ViT:
    torch.manual_seed(0)
    return ViT(ViTConfig.from_preset("tiny", **overrides)).eval()


def one_bright_patch(config: ViTConfig, row: int, col: int) -> torch.Tensor:
    image = torch.zeros(1, config.channels, config.image_size, config.image_size)
    p = config.patch_size
    image[:, :, row * p : (row + 1) * p, col * p : (col + 1) * p] = 1.0
    return image


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_a_bright_patch_changes_only_its_own_token_in_row_major_order(pooling):
    model = tiny_vit(pooling=pooling)
    config, prefix = model.config, model.config.num_prefix_tokens
    row, col = 1, 2  # row-major index 6; column-major would be 9
    token = prefix + row * config.grid_size + col
    with torch.no_grad():
        blank = model(torch.zeros(1, 1, 8, 8), output_hidden_states=True)
        bright = model(one_bright_patch(config, row, col), output_hidden_states=True)
    embedded = (bright.hidden_states[0] - blank.hidden_states[0]).abs().sum(-1)[0]
    assert embedded[token] > 0
    assert torch.all(torch.cat([embedded[:token], embedded[token + 1 :]]) == 0)
    after_blocks = (bright.hidden_states[-1] - blank.hidden_states[-1]).abs().sum(-1)[0]
    assert after_blocks.argmax().item() == token


def test_patchify_reads_row_by_row_and_unpatchify_inverts_it():
    pixels = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    patches = patchify(pixels, 4)
    assert patches.shape == (2, 4, 4 * 4 * 3)
    # patch 1 is the top-right one; its first value is pixel (row 0, col 4) of channel 0.
    assert patches[0, 1, 0] == pixels[0, 0, 0, 4]
    assert patches[0, 2, 0] == pixels[0, 0, 4, 0]
    assert patches[0, 0, 1] == pixels[0, 1, 0, 0]  # channels are innermost inside a patch
    torch.testing.assert_close(unpatchify(patches, 4, 3), pixels, rtol=0, atol=0)
    with pytest.raises(RequestError, match="square grid"):
        unpatchify(patches[:, :3], 4, 3)


@pytest.mark.parametrize("pooling, tokens", [("cls", 17), ("mean", 16)])
def test_output_shapes_and_pooling(pooling, tokens):
    model = tiny_vit(pooling=pooling)
    pixels = torch.randn(3, 1, 8, 8)
    out = model(pixels, output_hidden_states=True, output_attentions=True)
    assert out.last_hidden.shape == (3, tokens, 64)
    assert out.pooled.shape == (3, 64)
    assert len(out.hidden_states) == model.config.n_layer + 1
    expected_pooled = out.last_hidden[:, 0] if pooling == "cls" else out.last_hidden.mean(1)
    torch.testing.assert_close(out.pooled, expected_pooled)


def test_attentions_are_bidirectional_distributions_over_every_token():
    model = tiny_vit()
    out = model(torch.randn(2, 1, 8, 8), output_attentions=True)
    assert len(out.attentions) == 2
    weights = out.attentions[0]
    assert weights.shape == (2, 2, 17, 17)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 2, 17))
    assert weights.triu(diagonal=1).abs().sum() > 0  # later tokens are attended to: not causal


def test_explicit_attention_path_matches_the_fused_kernel():
    model = tiny_vit()
    pixels = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(model(pixels).last_hidden, model(pixels, output_attentions=True).last_hidden,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_keep_runs_only_the_chosen_patches_with_their_own_positions(pooling):
    model = tiny_vit(pooling=pooling)
    prefix = model.config.num_prefix_tokens
    pixels = torch.randn(2, 1, 8, 8)
    keep = torch.tensor([[5, 0, 9], [15, 3, 7]])
    full = model.embed(pixels)
    part = model.embed(pixels, keep)
    assert part.shape == (2, prefix + 3, 64)
    for b in range(2):
        torch.testing.assert_close(part[b, prefix:], full[b, prefix + keep[b]])
    if prefix:
        torch.testing.assert_close(part[:, 0], full[:, 0])  # the class token is always kept
    out = model(pixels, keep=keep)
    assert out.last_hidden.shape == (2, prefix + 3, 64)


def test_wrong_image_shape_is_a_request_error_naming_both_shapes():
    with pytest.raises(RequestError, match=r"\(B, 1, 8, 8\).*\(2, 3, 8, 8\)"):
        tiny_vit()(torch.zeros(2, 3, 8, 8))


@pytest.mark.parametrize("preset, millions", [("tiny", 0.108), ("small", 4.84), ("small-rgb", 4.85),
                                              ("vit-s16", 21.6)])
def test_presets_build_with_their_parameter_counts(preset, millions):
    with torch.device("meta"):
        model = ViT(ViTConfig.from_preset(preset))
    assert model.num_parameters() / 1e6 == pytest.approx(millions, rel=0.01)
    assert model.config.d_model % 64 == 0


def test_vit_s16_is_the_paper_geometry():
    config = ViTConfig.from_preset("vit-s16")
    assert (config.num_patches, config.head_dim, config.patch_dim) == (196, 64, 768)


def test_from_state_round_trip_gives_equal_outputs():
    model = tiny_vit()
    rebuilt = ViT.from_state(model.config, model.state_dict())
    pixels = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(rebuilt(pixels).last_hidden, model(pixels).last_hidden, rtol=0, atol=0)
    with pytest.raises(RequestError, match="missing.*norm.weight"):
        ViT.from_state(model.config, {k: v for k, v in model.state_dict().items() if k != "norm.weight"})


def test_parameter_names_keep_the_projection_names_lora_targets():
    names = {name.rsplit(".", 2)[-2] for name, _ in tiny_vit().named_parameters() if "blocks." in name}
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= names


def test_residual_output_projections_start_smaller():
    with torch.no_grad():
        model = ViT(ViTConfig(image_size=32, patch_size=4, n_layer=8, d_model=256, n_head=4))
    q, o = model.blocks[0].attn.q_proj.weight, model.blocks[0].attn.o_proj.weight
    assert q.std().item() == pytest.approx(0.02, rel=0.05)
    assert o.std().item() == pytest.approx(0.02 / 4, rel=0.05)


def test_activation_checkpointing_gives_the_same_gradients():
    model = tiny_vit().train()
    pixels = torch.randn(2, 1, 8, 8)
    model(pixels).pooled.sum().backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model.activation_checkpointing = True
    model(pixels).pooled.sum().backward()
    for a, p in zip(plain, model.parameters(), strict=True):
        torch.testing.assert_close(p.grad, a)


@pytest.mark.parametrize("overrides, field", [
    (dict(image_size=30, patch_size=4), "image_size=30"),
    (dict(d_model=100, n_head=3), "d_model=100"),
    (dict(n_kv_head=3, n_head=4), "n_kv_head=3"),
    (dict(pooling="max"), "pooling"),
    (dict(dropout=1.0), "dropout"),
    (dict(patch_size=0), "patch_size"),
])
def test_invalid_configs_name_the_field_and_value(overrides, field):
    with pytest.raises(ConfigError, match=field):
        ViTConfig(**overrides)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown ViT preset 'huge'.*" + ", ".join(VIT_PRESETS)):
        ViTConfig.from_preset("huge")


def test_config_dict_round_trip():
    config = ViTConfig.from_preset("small", pooling="mean", n_kv_head=2)
    assert ViTConfig.from_dict(config.to_dict()) == config
