"""The masked-LM encoder: the decoder's blocks, seeing both sides of every position and never the padding."""

import pytest
import torch

from workbench.errors import RequestError
from workbench.models import Decoder, DecoderConfig, Encoder, EncoderBackbone, EncoderConfig, fill_masks
from workbench.models.backbone import DecoderBackbone, workbench_backbone


def tiny_encoder(seed: int = 0) -> Encoder:
    torch.manual_seed(seed)
    return Encoder(EncoderConfig.for_tokenizer("tiny", 40, block_size=16)).eval()


def test_the_vocabulary_adds_the_mask_token_last():
    config = EncoderConfig.for_tokenizer("nano", 256)
    assert config.vocab_size == 257 and config.mask_token_id == 256
    assert (config.n_layer, config.d_model) == (DecoderConfig.from_preset("nano").n_layer, 128)  # the same presets


def test_changing_a_later_token_changes_earlier_hidden_states_in_the_encoder_only():
    torch.manual_seed(0)
    config = DecoderConfig.from_preset("tiny", vocab_size=41, block_size=16)
    decoder = Decoder(config).eval()
    encoder = Encoder(EncoderConfig.from_dict(config.to_dict())).eval()
    encoder.load_state_dict(decoder.state_dict())  # the same weights: only the mask differs
    ids = torch.randint(0, 40, (1, 12))
    later = ids.clone()
    later[0, 9] = (ids[0, 9] + 1) % 40
    for model, sees_later in ((encoder, True), (decoder, False)):
        before, after = model(ids).last_hidden[0, :9], model(later).last_hidden[0, :9]
        assert (not torch.allclose(before, after, atol=1e-6)) == sees_later, type(model).__name__


def test_padding_is_never_attended_to():
    encoder = tiny_encoder()
    ids = torch.randint(0, 40, (1, 10))
    padded = torch.cat([ids, torch.full((1, 6), 7)], dim=1)
    mask = torch.cat([torch.ones(1, 10), torch.zeros(1, 6)], dim=1).long()
    alone = encoder(ids).last_hidden
    with_padding = encoder(padded, attention_mask=mask).last_hidden[:, :10]
    assert torch.allclose(alone, with_padding, atol=1e-5)
    assert not torch.allclose(alone, encoder(padded).last_hidden[:, :10], atol=1e-5)  # unmasked, padding counts


def test_attention_weights_are_bidirectional_and_skip_padding():
    encoder = tiny_encoder()
    ids = torch.randint(0, 40, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[1, 6:] = 0
    out = encoder(ids, attention_mask=mask, output_attentions=True)
    weights = out.attentions[0]
    assert weights.shape == (2, 2, 8, 8)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 2, 8))
    assert (weights[0].triu(1) > 0).any()  # early positions attend to later ones
    assert torch.equal(weights[1, :, :, 6:], torch.zeros(2, 8, 2))
    fused = encoder(ids, attention_mask=mask).last_hidden
    assert torch.allclose(out.last_hidden, fused, atol=1e-5)  # the explicit path computes what the kernel does


def test_masked_positions_are_filled_and_the_mask_is_never_predicted():
    encoder = tiny_encoder()
    ids = torch.full((1, 8), encoder.config.mask_token_id)
    top, probabilities = fill_masks(encoder, ids, top_k=3)
    assert top.shape == (1, 8, 3) and (top != encoder.config.mask_token_id).all()
    assert (probabilities[..., :-1] >= probabilities[..., 1:]).all() and (probabilities.sum(-1) <= 1 + 1e-6).all()


def test_an_encoder_neither_generates_nor_caches():
    encoder = tiny_encoder()
    with pytest.raises(RequestError, match="masked tokens"):
        encoder.generate(torch.zeros(1, 2, dtype=torch.long), 3)
    with pytest.raises(RequestError, match="no key/value cache"):
        encoder(torch.zeros(1, 2, dtype=torch.long), use_cache=True)


def test_the_backbone_of_an_encoder_passes_the_mask_and_pools_by_mean():
    encoder = tiny_encoder()
    backbone = workbench_backbone(encoder)
    assert isinstance(backbone, EncoderBackbone) and backbone.kind == "encoder" and backbone.default_pooling == "mean"
    assert type(workbench_backbone(Decoder(DecoderConfig.from_preset("tiny", vocab_size=40)))) is DecoderBackbone
    ids, mask = torch.randint(0, 40, (1, 6)), torch.tensor([[1, 1, 1, 1, 0, 0]])
    assert torch.allclose(backbone(ids, mask)[:, :4], encoder(ids[:, :4]).last_hidden, atol=1e-5)
    assert [name for name, _ in encoder.named_parameters()] == [name for name, _ in backbone.decoder.named_parameters()]


def test_an_encoder_checkpoint_loads_back_as_an_encoder(tmp_path):
    from workbench.data.tokenizers import ByteTokenizer
    from workbench.modules.checkpoint import load_pretrained, save_pretrained

    encoder = Encoder(EncoderConfig.for_tokenizer("tiny", 256, block_size=16)).eval()
    save_pretrained(tmp_path, encoder, ByteTokenizer())
    loaded, _ = load_pretrained(tmp_path)
    assert type(loaded) is Encoder and loaded.config == encoder.config
    ids = torch.randint(0, 256, (2, 9))
    assert torch.equal(loaded(ids).logits, encoder(ids).logits)


def test_the_causal_lm_head_refuses_an_encoder_whose_logits_are_not_next_token_ones():
    from workbench.config import ConfigError
    from workbench.heads import build_head

    backbone = workbench_backbone(tiny_encoder())
    assert callable(backbone.logits)  # it has logits, but they predict the token in place
    with pytest.raises(ConfigError, match="backbone of kind 'encoder'.*decoder base for causal_lm"):
        build_head("lm", backbone.hidden_size, backbone=backbone)
