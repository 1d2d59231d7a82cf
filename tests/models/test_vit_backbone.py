"""The ViT as a fine-tuning backbone: hidden states per token, layer groups for the strategies, LoRA's targets."""

import torch
from torch import nn

from workbench.models import ViT, ViTBackbone, ViTConfig
from workbench.modules.lora import check_targets
from workbench.modules.strategies import layer_group_parameters


def backbone(**overrides) -> ViTBackbone:
    torch.manual_seed(0)
    return ViTBackbone(ViT(ViTConfig.from_preset("tiny", **overrides)))


def test_it_returns_one_state_per_token_and_pools_by_the_class_token():
    vit = backbone()
    pixels = torch.randn(3, 1, 8, 8)
    hidden = vit(pixels, None)
    assert hidden.shape == (3, 17, 64) and vit.hidden_size == 64  # the class token, then 16 patches
    torch.testing.assert_close(hidden[:, 0], vit.vit(pixels).pooled)  # "first" pooling reads the ViT's own summary
    assert vit.kind == "vit" and vit.default_pooling == "first"
    assert backbone(pooling="mean").default_pooling == "mean"
    assert backbone(pooling="mean")(torch.randn(2, 1, 8, 8), None).shape == (2, 16, 64)


def test_layer_groups_hold_every_parameter_once_embeddings_first_norm_on_top():
    vit = backbone(n_layer=3)
    keys = list(vit.state_dict())
    groups = layer_group_parameters(vit)
    assert len(groups) == 4  # embeddings, two blocks, the top block with the norm
    first = {id(p) for p in groups[0]}
    assert {id(vit.vit.patch_embed.weight), id(vit.vit.pos_embed), id(vit.vit.cls_token)} == first
    assert id(vit.vit.norm.weight) in {id(p) for p in groups[-1]}
    every = [id(p) for group in groups for p in group]
    assert sorted(every) == sorted(id(p) for p in vit.parameters())
    assert list(vit.state_dict()) == keys  # the groups never register a second name for a tensor


def test_lora_targets_are_the_attention_projections_of_every_block():
    vit = backbone()
    selected = check_targets(vit, vit.lora_targets())
    assert len(selected) == 2 * 4 and all(isinstance(vit.get_submodule(name), nn.Linear) for name in selected)
    assert {name.rsplit(".", 1)[-1] for name in selected} == {"q_proj", "k_proj", "v_proj", "o_proj"}
