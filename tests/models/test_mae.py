import pytest
import torch

from workbench.config import ConfigError
from workbench.errors import RequestError
from workbench.models.mae import (
    MAE,
    MAE_DECODER_PRESETS,
    MAEDecoderConfig,
    kept_count,
    masked_mse,
    normalized_patches,
    random_masking,
)
from workbench.models.vit import VIT_PRESETS, ViT, ViTConfig, gather_tokens


def tiny_mae(pooling: str = "cls") -> MAE:
    torch.manual_seed(0)
    return MAE(ViTConfig.from_preset("tiny", pooling=pooling), MAEDecoderConfig.from_preset("tiny"))


@pytest.mark.parametrize("num_patches, ratio, kept", [(16, 0.75, 4), (49, 0.75, 12), (196, 0.75, 49), (10, 0.5, 5)])
def test_each_image_keeps_exactly_round_n_times_one_minus_ratio(num_patches, ratio, kept):
    masking = random_masking(5, num_patches, ratio, torch.Generator().manual_seed(1))
    assert masking.keep.shape == (5, kept)
    assert masking.mask.shape == (5, num_patches)
    assert masking.mask.sum(1).tolist() == [num_patches - kept] * 5


def test_kept_and_masked_patches_partition_all_patches():
    masking = random_masking(4, 16, 0.75, torch.Generator().manual_seed(2))
    for b in range(4):
        kept = set(masking.keep[b].tolist())
        masked = set(masking.mask[b].nonzero().flatten().tolist())
        assert kept.isdisjoint(masked)
        assert kept | masked == set(range(16))


def test_restore_puts_kept_then_masked_tokens_back_in_row_major_order():
    masking = random_masking(3, 16, 0.75, torch.Generator().manual_seed(3))
    tokens = torch.arange(16, dtype=torch.float32).repeat(3, 1).unsqueeze(-1)  # token i holds i
    shuffle = masking.restore.argsort(dim=1)  # the shuffle that restore inverts: kept patches first
    assert torch.equal(shuffle[:, :4], masking.keep)
    assert torch.equal(gather_tokens(masking.mask.unsqueeze(-1), shuffle)[:, 4:].squeeze(-1), torch.ones(3, 12).bool())
    in_shuffled_order = gather_tokens(tokens, shuffle)
    torch.testing.assert_close(gather_tokens(in_shuffled_order, masking.restore), tokens)


def test_same_generator_seed_gives_the_same_mask_and_another_seed_another():
    first = random_masking(4, 49, 0.75, torch.Generator().manual_seed(7))
    again = random_masking(4, 49, 0.75, torch.Generator().manual_seed(7))
    other = random_masking(4, 49, 0.75, torch.Generator().manual_seed(8))
    assert torch.equal(first.mask, again.mask) and torch.equal(first.keep, again.keep)
    assert not torch.equal(first.mask, other.mask)


@pytest.mark.parametrize("num_patches, ratio", [(16, 1.0), (16, -0.1), (16, 0.99), (4, 0.1)])
def test_ratios_that_keep_nothing_or_hide_nothing_are_refused(num_patches, ratio):
    # 0.99 of 16 keeps round(0.16) = 0; 0.1 of 4 keeps round(3.6) = 4, hiding nothing.
    with pytest.raises(RequestError, match="mask_ratio"):
        kept_count(num_patches, ratio)


def test_target_is_each_patch_normalized_by_its_own_mean_and_variance():
    pixels = torch.rand(2, 3, 8, 8) * 5 + torch.arange(2.0).view(2, 1, 1, 1)
    target = normalized_patches(pixels, 4)
    assert target.shape == (2, 4, 4 * 4 * 3)
    torch.testing.assert_close(target.mean(-1), torch.zeros(2, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(target.var(-1), torch.ones(2, 4), atol=1e-3, rtol=0)
    flat = normalized_patches(torch.full((1, 1, 4, 4), 0.3), 2)
    assert torch.all(flat.abs() < 1e-4)  # a flat patch is zero, not a division by zero


def test_forward_shapes_and_the_loss_is_the_masked_mse():
    model = tiny_mae()
    pixels = torch.randn(3, 1, 8, 8)
    out = model(pixels, mask_ratio=0.75, generator=torch.Generator().manual_seed(0))
    assert out.prediction.shape == (3, 16, 4)
    assert out.mask.shape == (3, 16) and out.mask.sum().item() == 3 * 12
    torch.testing.assert_close(out.loss, masked_mse(out.prediction, normalized_patches(pixels, 2), out.mask))


def test_changing_a_kept_patch_prediction_leaves_the_loss_unchanged():
    pixels = torch.randn(2, 1, 8, 8)
    target = normalized_patches(pixels, 2)
    mask = random_masking(2, 16, 0.75, torch.Generator().manual_seed(4)).mask
    prediction = torch.randn(2, 16, 4)
    loss = masked_mse(prediction, target, mask)
    at_kept, at_masked = prediction.clone(), prediction.clone()
    kept_index, masked_index = (~mask[0]).nonzero()[0, 0], mask[0].nonzero()[0, 0]
    at_kept[0, kept_index] += 10.0
    at_masked[0, masked_index] += 10.0
    assert masked_mse(at_kept, target, mask) == loss
    assert masked_mse(at_masked, target, mask) != loss


def test_the_encoder_sees_only_the_visible_patches():
    model = tiny_mae()
    seen = []
    model.encoder.blocks[0].register_forward_hook(lambda module, args, output: seen.append(args[0].shape))
    model(torch.randn(2, 1, 8, 8), mask_ratio=0.75)
    assert seen == [torch.Size([2, 1 + 4, 64])]  # the class token and 4 of 16 patches


@pytest.fixture
def one_thread():
    """On a shared 2-core machine two threads contend with other work and run ~10x slower (as tests/audit says)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_a_few_steps_on_a_tiny_batch_reduce_the_loss(pooling, one_thread):
    model = tiny_mae(pooling).train()
    # One image seen under different masks: its hidden patches are learnable (pure noise images would not be).
    pixels = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(5)).expand(8, -1, -1, -1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)

    def loss_on_fixed_masks() -> float:
        with torch.no_grad():
            return model(pixels, generator=torch.Generator().manual_seed(99)).loss.item()

    before = loss_on_fixed_masks()
    for step in range(20):
        optimizer.zero_grad()
        model(pixels, generator=torch.Generator().manual_seed(step)).loss.backward()
        optimizer.step()
    assert loss_on_fixed_masks() < 0.8 * before


def test_the_encoder_is_a_plain_vit_that_loads_on_its_own():
    model = tiny_mae()
    assert type(model.encoder) is ViT
    alone = ViT.from_state(model.encoder_config, model.encoder.state_dict())
    pixels = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(alone(pixels).pooled, model.encoder.eval()(pixels).pooled, rtol=0, atol=0)


def test_decoder_presets_match_the_vit_presets_and_are_narrower():
    assert set(MAE_DECODER_PRESETS) == set(VIT_PRESETS)
    for name in VIT_PRESETS:
        encoder, decoder = ViTConfig.from_preset(name), MAEDecoderConfig.from_preset(name)
        assert decoder.d_model <= encoder.d_model and decoder.n_layer < encoder.n_layer


def test_decoder_config_errors_and_round_trip():
    with pytest.raises(ConfigError, match="d_model=100"):
        MAEDecoderConfig(d_model=100, n_head=3)
    with pytest.raises(ConfigError, match="unknown MAE decoder preset 'x'.*tiny"):
        MAEDecoderConfig.from_preset("x")
    config = MAEDecoderConfig.from_preset("small", n_kv_head=1)
    assert MAEDecoderConfig.from_dict(config.to_dict()) == config
