"""HFTokenizer: a Hugging Face fast tokenizer behind the workbench Tokenizer interface.

Each tiny model folder (tests/conftest.py) has a real byte-level BPE fast tokenizer; Llama's adds
BOS. The adapter must give what `transformers` gives, ids and offsets, and survive a save.
"""

import json

import pytest
import tokenizers as hf

from workbench.data import HFTokenizer, TokenizerError, WorkbenchTextEncoder, load_tokenizer
from workbench.data.tokenizers import ByteTokenizer

FAMILIES = ("llama", "gpt2", "qwen2")
TEXTS = [
    "Hello, world.",
    "naïve café — ∑ 🙂 𝔘",
    "\tindented\n\n  two  spaces   three\r\n",
    "special tokens in text: <s> </s> <|endoftext|> <unk>",
    "",
    " ",
]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    return request.param


@pytest.fixture(scope="module")
def hf_tokenizer(family, hf_causal_folder):
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(hf_causal_folder(family))


@pytest.fixture(scope="module")
def tokenizer(hf_tokenizer):
    return HFTokenizer.from_transformers(hf_tokenizer)


def test_ids_are_what_transformers_gives(tokenizer, hf_tokenizer, family):
    for text in TEXTS:
        assert tokenizer.encode(text) == hf_tokenizer(text)["input_ids"], text
    assert tokenizer.encode_batch(TEXTS) == hf_tokenizer(TEXTS)["input_ids"]
    adds_bos = family == "llama"
    assert (tokenizer.encode("abc")[0] == hf_tokenizer.bos_token_id) is adds_bos


def test_offsets_are_the_backends_character_spans(tokenizer, hf_tokenizer, family):
    for text in TEXTS:
        ids, offsets = tokenizer.encode_with_offsets(text)
        expected = hf_tokenizer(text, return_offsets_mapping=True)
        assert ids == expected["input_ids"]
        assert offsets == [tuple(span) for span in expected["offset_mapping"]]
        assert all(isinstance(span, tuple) and 0 <= span[0] <= span[1] <= len(text) for span in offsets)
    if family == "llama":
        assert tokenizer.encode_with_offsets("abc")[1][0] == (0, 0)  # the added BOS covers no character


def test_decode_gives_the_text_back_and_skips_nothing(tokenizer, hf_tokenizer, family):
    for text in TEXTS:
        ids = tokenizer.encode(text)
        decoded = tokenizer.decode(ids)
        assert decoded == hf_tokenizer.decode(ids)
        assert decoded == (("<s>" + text) if family == "llama" else text)


def test_decode_rejects_ids_outside_the_vocabulary(tokenizer):
    with pytest.raises(TokenizerError, match=str(tokenizer.vocab_size)):
        tokenizer.decode([0, tokenizer.vocab_size])


def test_vocab_size_and_special_ids_follow_the_transformers_tokenizer(tokenizer, hf_tokenizer):
    assert tokenizer.vocab_size == len(hf_tokenizer)
    assert tokenizer.bos_id == hf_tokenizer.bos_token_id
    assert tokenizer.eos_id == hf_tokenizer.eos_token_id
    expected_pad = hf_tokenizer.pad_token_id if hf_tokenizer.pad_token_id is not None else hf_tokenizer.eos_token_id
    assert tokenizer.pad_id == expected_pad
    assert tokenizer.name == str(hf_tokenizer.name_or_path)


def test_pad_id_falls_back_to_eos_then_zero(tokenizer):
    backend = tokenizer.backend
    assert HFTokenizer(backend, eos_id=1, pad_id=2).pad_id == 2
    assert HFTokenizer(backend, eos_id=1).pad_id == 1
    assert HFTokenizer(backend).pad_id == 0


def test_id_to_token_is_readable_text(tokenizer, hf_tokenizer):
    assert tokenizer.id_to_token(hf_tokenizer.eos_token_id) == hf_tokenizer.eos_token
    space = tokenizer.encode(" ")[-1]
    assert tokenizer.id_to_token(space) == " "  # not GPT-2's "Ġ"
    newline = tokenizer.encode("\n")[-1]
    assert tokenizer.id_to_token(newline) == "\n"  # not "Ċ"
    # The emoji is four bytes no merge joins: each is half a character, shown like the byte tokenizer shows it.
    emoji = [i for i in tokenizer.encode("🙂") if i != hf_tokenizer.bos_token_id]
    assert [tokenizer.id_to_token(i) for i in emoji] == [ByteTokenizer().id_to_token(b) for b in "🙂".encode()]
    pieces = "".join(tokenizer.id_to_token(i) for i in tokenizer.encode("Hello world") if i != tokenizer.bos_id)
    assert pieces == "Hello world"


def test_sentencepiece_style_pieces_read_as_text():
    vocab = {"<unk>": 0, "<0x0A>": 1, "<0xE2>": 2, "\u2581the": 3, "cat": 4}
    backend = hf.Tokenizer(hf.models.BPE(vocab=vocab, merges=[], unk_token="<unk>", byte_fallback=True))
    tokenizer = HFTokenizer(backend)
    assert [tokenizer.id_to_token(i) for i in range(5)] == ["<unk>", "\n", "<0xE2>", " the", "cat"]


def test_save_and_load_give_equal_ids_and_fingerprint(tokenizer, tmp_path):
    path = tokenizer.save(tmp_path)
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert saved["kind"] == "hf" and saved["vocab_size"] == tokenizer.vocab_size
    loaded = load_tokenizer(tmp_path)
    assert isinstance(loaded, HFTokenizer)
    assert loaded.fingerprint() == tokenizer.fingerprint()
    assert loaded == tokenizer
    assert loaded.encode_batch(TEXTS) == tokenizer.encode_batch(TEXTS)
    assert (loaded.bos_id, loaded.eos_id, loaded.pad_id) == (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id)


def test_the_backend_is_a_copy_untouched_by_transformers_calls(tokenizer, hf_tokenizer):
    before = tokenizer.fingerprint()
    hf_tokenizer(["a long text " * 20, "short"], truncation=True, max_length=8)
    assert len(tokenizer.encode("a long text " * 20)) > 8
    assert tokenizer.encode_batch(["a", "a b c"]) == [tokenizer.encode("a"), tokenizer.encode("a b c")]
    assert HFTokenizer.from_transformers(hf_tokenizer).fingerprint() == before


def test_workbench_text_encoder_accepts_it(tokenizer):
    encoder = WorkbenchTextEncoder(tokenizer, max_length=6)
    [encoded] = encoder.encode(["Hello, world. And more."])
    ids, offsets = tokenizer.encode_with_offsets("Hello, world. And more.")
    assert encoded.ids == ids[:6] and encoded.offsets == offsets[:6]
    assert encoder.vocab_size == tokenizer.vocab_size
    assert encoder.describe()["fingerprint"] == tokenizer.fingerprint()


@pytest.mark.parametrize("bad", [{"bos_id": -1}, {"eos_id": 10_000}, {"pad_id": True}, {"vocab_size": 0}])
def test_bad_special_ids_and_sizes_name_the_value(tokenizer, bad):
    with pytest.raises(TokenizerError, match=repr(next(iter(bad.values())))):
        HFTokenizer(tokenizer.backend, **bad)


def test_a_slow_tokenizer_is_refused():
    class Slow:
        pass

    with pytest.raises(TokenizerError, match="Slow"):
        HFTokenizer.from_transformers(Slow())
