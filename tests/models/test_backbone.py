import torch

from workbench.models import Decoder, DecoderBackbone, DecoderConfig


def test_decoder_backbone_gives_final_hidden_states_and_logits():
    torch.manual_seed(0)
    decoder = Decoder(DecoderConfig.from_preset("tiny", vocab_size=50, block_size=16)).eval()
    backbone = DecoderBackbone(decoder)
    ids = torch.randint(0, 50, (2, 9))
    hidden = backbone(ids, torch.ones_like(ids))
    assert hidden.shape == (2, 9, backbone.hidden_size) and backbone.hidden_size == 64
    torch.testing.assert_close(backbone.logits(hidden), decoder(ids).logits)


def test_right_padding_does_not_change_the_hidden_states_of_real_tokens():
    torch.manual_seed(0)
    backbone = DecoderBackbone(Decoder(DecoderConfig.from_preset("tiny", vocab_size=50, block_size=16))).eval()
    ids = torch.randint(1, 50, (1, 5))
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    mask = torch.tensor([[1] * 5 + [0] * 3])
    torch.testing.assert_close(backbone(padded, mask)[:, :5], backbone(ids, torch.ones_like(ids)))


def test_layer_groups_cover_every_parameter_once_bottom_to_top():
    decoder = Decoder(DecoderConfig.from_preset("nano"))
    groups = DecoderBackbone(decoder).layer_groups()
    assert len(groups) == decoder.config.n_layer + 1
    assert groups[0] is decoder.embed
    seen = [id(p) for g in groups for p in g.parameters()]
    assert len(seen) == len(set(seen)) == len({id(p) for p in decoder.parameters()})
