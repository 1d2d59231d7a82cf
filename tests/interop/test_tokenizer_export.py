"""Workbench tokenizers exported as Hugging Face fast tokenizers: plain transformers, same ids.

Each kind is trained on real texts (two stdlib modules), exported, and loaded back with nothing
but `transformers.AutoTokenizer` and `tokenizers.Tokenizer.from_file`.
"""

import json
import textwrap
from pathlib import Path

import pytest
import tokenizers as hf

from workbench.data import HFTokenizer, TokenizerError, build_tokenizer
from workbench.interop.tokenizer import save_hf_tokenizer, to_hf_backend

transformers = pytest.importorskip("transformers")

TRAINING = [Path(json.__file__).read_text(encoding="utf-8"), Path(textwrap.__file__).read_text(encoding="utf-8")]
TEXTS = [
    "def f(x):\n    return x + 1\n",
    "naïve café — ∑ ü ß",
    "astral: 🙂 𝔘 👩‍👩‍👧",
    "\t\ttabs,  two spaces,   three,\n\n\nnewlines\r\n",
    "   leading and trailing   ",
    "a literal <unk> and <s> and <|endoftext|>",
    "spaces before punctuation , . ! ?",
    "",
    " ",
    "\x00\x7f",
]


def trained(kind):
    return build_tokenizer(kind, TRAINING, vocab_size=400 if kind == "bpe" else None)


@pytest.fixture(scope="module", params=["byte", "char", "bpe"])
def exported(request, tmp_path_factory):
    tokenizer = trained(request.param)
    folder = tmp_path_factory.mktemp(f"hf-{request.param}")
    files = save_hf_tokenizer(tokenizer, folder, model_max_length=128)
    return tokenizer, folder, files


def test_the_folder_holds_what_transformers_5_writes(exported):
    _, folder, files = exported
    assert sorted(p.name for p in files) == ["tokenizer.json", "tokenizer_config.json"]
    assert all(p.parent == folder and p.is_file() for p in files)
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["model_max_length"] == 128
    assert not json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]


def test_plain_auto_tokenizer_gives_the_workbench_ids_and_text(exported):
    tokenizer, folder, _ = exported
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    assert auto.model_max_length == 128
    assert len(auto) == tokenizer.vocab_size
    for text in TEXTS:
        ids = tokenizer.encode(text)
        assert auto(text)["input_ids"] == ids, text
        assert auto.decode(ids) == tokenizer.decode(ids), text
    assert auto(TEXTS)["input_ids"] == tokenizer.encode_batch(TEXTS)


def test_plain_tokenizers_file_gives_the_workbench_ids(exported):
    tokenizer, folder, _ = exported
    backend = hf.Tokenizer.from_file(str(folder / "tokenizer.json"))
    for text in TEXTS:
        ids = tokenizer.encode(text)
        assert backend.encode(text).ids == ids, text
        assert backend.decode(ids) == tokenizer.decode(ids), text


def test_decoding_gives_the_text_back_unseen_characters_as_replacement(exported):
    tokenizer, folder, _ = exported
    auto = transformers.AutoTokenizer.from_pretrained(folder)
    seen = set(tokenizer.chars) if tokenizer.kind == "char" else None  # byte and bpe see every byte
    for text in TEXTS:
        expected = text if seen is None else "".join(c if c in seen else "\ufffd" for c in text)
        assert auto.decode(auto(text)["input_ids"]) == expected, text


def test_char_unseen_characters_and_a_literal_unk():
    tokenizer = trained("char")
    assert "🙂" not in tokenizer.chars and "<" in tokenizer.chars
    backend = to_hf_backend(tokenizer)
    text = "x🙂<unk>"
    ids = tokenizer.encode(text)
    assert ids[1] == tokenizer.unk_id and len(ids) == 7  # the emoji is one <unk>; "<unk>" is five characters
    assert backend.encode(text).ids == ids
    assert backend.decode(ids) == tokenizer.decode(ids) == "x\ufffd<unk>"


def test_byte_decodes_broken_utf8_like_the_workbench():
    tokenizer = trained("byte")
    backend = to_hf_backend(tokenizer)
    for ids in ([0xFF], [0xE2, 0x82], [0x61, 0xF0, 0x9F, 0x99, 0x62], [0xC3, 0x28, 0xED, 0xA0, 0x80]):
        assert backend.decode(ids) == tokenizer.decode(ids), ids


def test_an_hf_tokenizer_exports_with_its_special_tokens(hf_causal_folder, tmp_path):
    source = transformers.AutoTokenizer.from_pretrained(hf_causal_folder("llama"))
    tokenizer = HFTokenizer.from_transformers(source)
    save_hf_tokenizer(tokenizer, tmp_path)
    auto = transformers.AutoTokenizer.from_pretrained(tmp_path)
    assert (auto.bos_token, auto.eos_token, auto.pad_token) == ("<s>", "</s>", None)
    for text in TEXTS:
        assert auto(text)["input_ids"] == tokenizer.encode(text) == source(text)["input_ids"]


def test_model_max_length_is_optional_and_checked(tmp_path):
    save_hf_tokenizer(trained("byte"), tmp_path / "unset")
    assert transformers.AutoTokenizer.from_pretrained(tmp_path / "unset").model_max_length > 10**20
    with pytest.raises(TokenizerError, match="0"):
        save_hf_tokenizer(trained("byte"), tmp_path / "bad", model_max_length=0)


def test_an_unknown_kind_is_refused():
    class Other:
        kind = "wordpiece"

    with pytest.raises(TokenizerError, match="'wordpiece'.*byte, char, bpe, hf"):
        to_hf_backend(Other())
