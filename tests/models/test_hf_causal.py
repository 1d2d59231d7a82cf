"""Hugging Face causal LMs (tiny random Llama, GPT-2, Qwen2 folders) as workbench models and backbones."""

import os

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from hf_models import CAUSAL_FAMILIES, build_causal_lm  # noqa: E402

from workbench.errors import RequestError  # noqa: E402
from workbench.models.hf_causal import HFCausalBackbone, HFCausalLM, find_parts  # noqa: E402

FAMILIES = pytest.mark.parametrize("family", CAUSAL_FAMILIES)


@pytest.fixture(scope="module")
def loaded(hf_causal_folder):
    """family -> (the model loaded from its folder, its tokenizer), loaded once per module."""
    cache = {}

    def load(family):
        if family not in cache:
            folder = hf_causal_folder(family)
            model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
            cache[family] = model, transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
        return cache[family]

    return load


def ids_of(tokenizer, text="Return a string describing the JSON document."):
    return torch.tensor([tokenizer(text)["input_ids"]])


@FAMILIES
def test_the_parts_are_found_where_each_family_keeps_them(family, loaded):
    model, _ = loaded(family)
    parts = find_parts(model)
    expected = {"llama": ("model.layers", "model.norm", ("model.embed_tokens",)),
                "qwen2": ("model.layers", "model.norm", ("model.embed_tokens",)),
                "gpt2": ("transformer.h", "transformer.ln_f", ("transformer.wte", "transformer.wpe"))}[family]
    assert (parts.layers, parts.norm, parts.embeddings) == expected
    lm = HFCausalLM(model)
    c = lm.config
    assert (c.block_size, c.d_model, c.n_layer, c.n_head, c.vocab_size) == (128, 64, 2, 4, 320)
    assert c.hf_config is model.config and not lm.training


@FAMILIES
def test_hidden_states_follow_output_hidden_states_with_the_last_layer_before_the_final_norm(family, loaded):
    model, tokenizer = loaded(family)
    lm = HFCausalLM(model)
    idx = ids_of(tokenizer)
    with torch.no_grad():
        ours = lm(idx, output_hidden_states=True)
        theirs = model(idx, output_hidden_states=True)
    assert len(ours.hidden_states) == len(theirs.hidden_states) == 1 + lm.config.n_layer
    for a, b in zip(ours.hidden_states[:-1], theirs.hidden_states[:-1], strict=True):
        assert torch.equal(a, b)
    assert not torch.allclose(ours.hidden_states[-1], theirs.hidden_states[-1])  # transformers' is normed
    assert torch.equal(lm.norm(ours.hidden_states[-1]), theirs.hidden_states[-1])
    assert torch.equal(ours.last_hidden, theirs.hidden_states[-1])
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-5, rtol=0)


@FAMILIES
def test_the_logit_lens_at_the_last_layer_is_the_models_logits(family, loaded):
    model, tokenizer = loaded(family)
    lm = HFCausalLM(model)
    idx = ids_of(tokenizer)
    with torch.no_grad():
        out = lm(idx, output_hidden_states=True)
        lens = lm.logits_from_hidden(out.hidden_states[-1])
        reference = model(idx).logits
    torch.testing.assert_close(lens, reference, atol=1e-5, rtol=0)
    assert lm(idx, compute_logits=False).logits is None


@FAMILIES
def test_attention_rows_sum_to_one_and_the_model_goes_back_to_its_attention(family, loaded):
    model, tokenizer = loaded(family)
    lm = HFCausalLM(model)
    idx = ids_of(tokenizer)
    before = model.config._attn_implementation
    with torch.no_grad():
        plain = lm(idx).logits
        out = lm(idx, output_attentions=True)
    T = idx.shape[1]
    assert len(out.attentions) == lm.config.n_layer
    for weights in out.attentions:
        assert weights.shape == (1, lm.config.n_head, T, T)
        torch.testing.assert_close(weights.sum(-1), torch.ones(1, lm.config.n_head, T), atol=1e-5, rtol=0)
        assert torch.all(weights.triu(1) == 0)  # causal
    assert model.config._attn_implementation == before != "eager"
    torch.testing.assert_close(out.logits, plain, atol=1e-5, rtol=0)


@FAMILIES
def test_a_cached_step_gives_the_logits_of_the_full_sequence(family, loaded):
    model, tokenizer = loaded(family)
    lm = HFCausalLM(model)
    idx = ids_of(tokenizer)
    T = idx.shape[1]
    assert HFCausalLM.supports_kv_cache
    with torch.no_grad():
        full = lm(idx).logits
        prefill = lm(idx[:, : T - 2], use_cache=True)
        assert prefill.past.get_seq_length() == T - 2
        step = lm(idx[:, T - 2 : T - 1], use_cache=True, past=prefill.past)
        last = lm(idx[:, T - 1 :], use_cache=True, past=step.past)
    assert lm(idx).past is None
    torch.testing.assert_close(prefill.logits, full[:, : T - 2], atol=1e-5, rtol=0)
    torch.testing.assert_close(step.logits[:, 0], full[:, T - 2], atol=1e-5, rtol=0)
    torch.testing.assert_close(last.logits[:, 0], full[:, T - 1], atol=1e-5, rtol=0)


@FAMILIES
def test_generate_greedy_matches_transformers_and_counts_parameters(family, loaded):
    model, tokenizer = loaded(family)
    lm = HFCausalLM(model)
    idx = ids_of(tokenizer)
    ours = lm.generate(idx, 6, temperature=0)
    theirs = model.generate(idx, attention_mask=torch.ones_like(idx), max_new_tokens=6, min_new_tokens=6,
                            do_sample=False, pad_token_id=tokenizer.eos_token_id)
    assert torch.equal(ours, theirs)
    assert lm.num_parameters() == model.num_parameters()  # tied weights (GPT-2, Qwen2) once
    with pytest.raises(RequestError, match="exceeds the model's block_size 128"):
        lm(torch.zeros(1, 129, dtype=torch.long))


def test_a_model_without_a_layer_list_is_refused_naming_what_was_looked_for():
    model, _ = build_causal_lm("llama")
    model.model.layers = nn.ModuleList(list(model.model.layers)[:1])  # no longer num_hidden_layers long
    with pytest.raises(RequestError, match="no list of 2 layers at any of layers, h, blocks"):
        HFCausalLM(model)
    with pytest.raises(RequestError, match="no output embeddings"):
        HFCausalLM(build_causal_lm("gpt2")[0].transformer)


# -- the backbone ---------------------------------------------------------------------------------------------


@FAMILIES
def test_backbone_layer_groups_cover_every_parameter_once_bottom_to_top(family):
    model, _ = build_causal_lm(family)
    backbone = HFCausalBackbone(HFCausalLM(model))  # an HFCausalLM or the raw model, the same trunk
    assert backbone.model is model and backbone.kind == "decoder" and backbone.default_pooling == "last"
    groups = backbone.layer_groups()
    assert len(groups) == model.config.num_hidden_layers + 1
    seen = [id(p) for g in groups for p in {id(q): q for q in g.parameters()}.values()]
    assert len(seen) == len(set(seen)) == len({id(p) for p in model.parameters()})
    norm, last = model.get_submodule(backbone.parts.norm), model.get_submodule(backbone.parts.layers)[-1]
    assert holds(groups[0], model.get_input_embeddings().weight)
    assert all(holds(groups[-1], p) for p in [*norm.parameters(), *last.parameters()])
    # Llama's unembedding is its own (top group); GPT-2 and Qwen2 tie it to the token embeddings.
    assert holds(groups[-1], model.get_output_embeddings().weight) == (family == "llama")
    if family == "gpt2":
        assert holds(groups[0], model.transformer.wpe.weight)


def holds(group: nn.Module, param: nn.Parameter) -> bool:
    return any(p is param for p in group.parameters())


@FAMILIES
def test_backbone_right_padding_gives_each_real_token_the_state_it_has_alone(family, loaded):
    model, tokenizer = loaded(family)
    backbone = HFCausalBackbone(model)
    short, long = ids_of(tokenizer, "Parse a JSON string."), ids_of(tokenizer, "Wrap text into lines of width.")
    pad = tokenizer.eos_token_id  # like the real checkpoints, none of the tiny ones has a pad token
    width = max(short.shape[1], long.shape[1]) + 3
    batch = torch.full((2, width), pad)
    mask = torch.zeros(2, width, dtype=torch.long)
    for row, ids in enumerate((short, long)):
        batch[row, : ids.shape[1]], mask[row, : ids.shape[1]] = ids[0], 1
    with torch.no_grad():
        together = backbone(batch, mask)
        for row, ids in enumerate((short, long)):
            alone = backbone(ids, torch.ones_like(ids))
            torch.testing.assert_close(together[row, : ids.shape[1]], alone[0], atol=1e-5, rtol=1e-5)
        lm_logits = HFCausalLM(model)(long).logits
        torch.testing.assert_close(backbone.logits(backbone(long, torch.ones_like(long))), lm_logits,
                                   atol=1e-5, rtol=0)
    assert together.shape == (2, width, backbone.hidden_size)


@FAMILIES
def test_backbone_lora_targets_are_the_familys_projections(family):
    model, _ = build_causal_lm(family)
    targets = HFCausalBackbone(model).lora_targets()
    kinds = {"gpt2": ["c_attn", "c_proj", "c_fc"]}.get(
        family, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    assert targets == kinds
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    assert set(targets) <= names


# -- fine-tuned on docstring-topic, then probed -----------------------------------------------------------------


def docstring_topic_batches(tokenizer, batch_size=4, length=24):
    """A miniature docstring-topic: docstrings of the standard library labelled by their package."""
    import email.message
    import email.parser
    import json.decoder
    import json.encoder
    import xml.dom.minidom

    modules = {0: (email.message, email.parser), 1: (json.decoder, json.encoder), 2: (xml.dom.minidom,)}
    examples = [(" ".join(obj.__doc__.split()), label) for label, mods in modules.items() for m in mods
                for obj in vars(m).values() if callable(obj) and getattr(obj, "__doc__", None)
                and getattr(obj, "__module__", None) == m.__name__][:24]
    pad = tokenizer.eos_token_id  # none of the tiny models has a pad token, like the real checkpoints
    batches = []
    for start in range(0, len(examples) - batch_size + 1, batch_size):
        chunk = examples[start : start + batch_size]
        encoded = [tokenizer(text)["input_ids"][:length] for text, _ in chunk]
        ids = torch.full((len(chunk), length), pad)
        mask = torch.zeros(len(chunk), length, dtype=torch.long)
        for row, e in enumerate(encoded):
            ids[row, : len(e)], mask[row, : len(e)] = torch.tensor(e), 1
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([y for _, y in chunk])})
    return batches


@pytest.mark.parametrize("strategy", ["full", "lora"])
@FAMILIES
def test_fine_tuned_with_full_and_lora_then_probed(family, strategy, hf_causal_folder):
    import lightning as L

    from workbench.data.tokenizers import BPETokenizer
    from workbench.heads import SequenceClassificationHead
    from workbench.modules import FinetuneModule, OptimConfig, Strategy, merge_lora
    from workbench.probe.attention import attention_maps
    from workbench.probe.lens import logit_lens

    folder = hf_causal_folder(family)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    backbone = HFCausalBackbone(model)
    head = SequenceClassificationHead(backbone.hidden_size, 3, pooling=backbone.default_pooling, dropout=0.0)
    module = FinetuneModule(backbone, head, Strategy(strategy, lora_rank=4), OptimConfig(
        learning_rate=1e-2, warmup_steps=1, max_steps=4), "sequence_classification")
    trainer = L.Trainer(max_steps=4, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=DataLoader(docstring_topic_batches(tokenizer), batch_size=None))
    assert trainer.global_step == 4
    merge_lora(module)
    moved = [n for n, p in model.named_parameters() if not torch.equal(p, before[n])]
    assert moved and set(dict(model.named_parameters())) == set(before)  # trained; the original keys
    if strategy == "lora":  # merged adapters move only their targets
        assert all(n.rsplit(".", 2)[-2] in backbone.lora_targets() for n in moved)

    lm = HFCausalLM(model.eval())
    probe_tokenizer = BPETokenizer(tokenizer.backend_tokenizer)  # the probes read a workbench tokenizer
    lens = logit_lens(lm, probe_tokenizer, "Parse a JSON")
    with torch.no_grad():
        logits = model(torch.tensor([probe_tokenizer.encode("Parse a JSON")])).logits[0]
    assert len(lens["layers"]) == 1 + lm.config.n_layer and lens["top_ids"][-1] == logits.argmax(-1).tolist()
    maps = attention_maps(lm, probe_tokenizer, "Parse a JSON")
    T = len(maps["tokens"])
    assert maps["weights"].shape == (lm.config.n_layer, lm.config.n_head, T, T)
    assert abs(maps["weights"].sum(-1) - 1).max() < 1e-5


def test_a_family_outside_the_fixtures_is_discovered_too_mistral():
    config = transformers.MistralConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    model = transformers.MistralForCausalLM(config).eval()
    lm = HFCausalLM(model)
    idx = torch.randint(0, 64, (2, 10))
    with torch.no_grad():
        out = lm(idx, output_hidden_states=True, output_attentions=True)
        torch.testing.assert_close(lm.logits_from_hidden(out.hidden_states[-1]), model(idx).logits, atol=1e-5, rtol=0)
    assert [a.shape for a in out.attentions] == [(2, 4, 10, 10)] * 2
    assert HFCausalBackbone(lm).lora_targets()[:2] == ["q_proj", "k_proj"]
