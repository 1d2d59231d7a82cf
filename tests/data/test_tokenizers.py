import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.data import (
    TOKENIZERS,
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    TokenizerError,
    build_tokenizer,
    load_tokenizer,
)

TRAINING = [Path(json.__file__).read_text(), Path(textwrap.__file__).read_text()]
ODD_TEXT = "naïve café — ∑ 🙂\x00\t\r\n  trailing  "


@pytest.fixture(scope="module")
def bpe():
    return build_tokenizer("bpe", TRAINING, vocab_size=400)


def build(kind):
    return build_tokenizer(kind, TRAINING, vocab_size=400 if kind == "bpe" else None)


# ---------------------------------------------------------------- bad input


def test_unknown_kind_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"'wordpiece'.*byte, char, bpe"):
        build_tokenizer("wordpiece", TRAINING)


@pytest.mark.parametrize(
    "kind, texts, vocab_size, message",
    [
        ("bpe", TRAINING, 256, "vocab_size >= 257"),
        ("bpe", TRAINING, None, "vocab_size >= 257"),
        ("bpe", None, 300, "trained from texts"),
        ("char", None, None, "trained from texts"),
        ("char", "one string", None, "not one string"),
        ("char", [""], None, "empty"),
        ("char", TRAINING, 100, "leave vocab_size unset"),
        ("byte", None, 300, "always 256"),
    ],
)
def test_bad_options_get_clear_errors(kind, texts, vocab_size, message):
    with pytest.raises(TokenizerError, match=message):
        build_tokenizer(kind, texts, vocab_size)


def test_byte_ignores_texts_and_accepts_its_own_size():
    assert build_tokenizer("byte", ["whatever"], vocab_size=256) == ByteTokenizer()


# ---------------------------------------------------------------- round trips


def test_byte_round_trips_any_text():
    tokenizer = ByteTokenizer()
    ids = tokenizer.encode(ODD_TEXT)
    assert ids == list(ODD_TEXT.encode("utf-8"))
    assert tokenizer.decode(ids) == ODD_TEXT
    assert tokenizer.decode(ids[:-20] + [0xE2]).endswith("\ufffd")  # half a character
    assert tokenizer.id_to_token(ord("a")) == "a" and tokenizer.id_to_token(0xE2) == "<0xE2>"


def test_char_round_trips_seen_characters_and_marks_unseen_ones():
    tokenizer = build_tokenizer("char", ["hello world", "abc"])
    assert tokenizer.chars == sorted(set("hello worldabc"))
    assert tokenizer.vocab_size == len(tokenizer.chars) + 1
    assert tokenizer.decode(tokenizer.encode("hello abc")) == "hello abc"
    ids = tokenizer.encode("hex🙂")
    assert ids[:2] == tokenizer.encode("he")
    assert ids[2:] == [tokenizer.unk_id, tokenizer.unk_id]
    assert tokenizer.decode(ids) == "he\ufffd\ufffd"
    assert tokenizer.id_to_token(tokenizer.unk_id) == "<unk>"
    assert [tokenizer.id_to_token(i) for i in range(3)] == tokenizer.chars[:3]


def test_char_encode_matches_a_plain_lookup_on_a_real_file():
    tokenizer = build("char")
    lookup = {c: i for i, c in enumerate(tokenizer.chars)}
    assert tokenizer.encode(TRAINING[0]) == [lookup[c] for c in TRAINING[0]]
    assert tokenizer.encode_batch(TRAINING[:1] + [""]) == [tokenizer.encode(TRAINING[0]), []]


def test_bpe_round_trips_text_it_never_saw(bpe):
    for text in (ODD_TEXT, TRAINING[1][:2000], "", " ", "日本語のテキスト"):
        assert bpe.decode(bpe.encode(text)) == text
    assert bpe.encode_batch([ODD_TEXT, "x"]) == [bpe.encode(ODD_TEXT), bpe.encode("x")]
    assert len(bpe.encode(TRAINING[0])) < 0.7 * len(TRAINING[0])  # it learned merges


@pytest.mark.parametrize("kind", ["byte", "char", "bpe"])
def test_encode_arrays_are_encode_batch_as_int32(kind):
    tokenizer = build(kind)
    texts = [TRAINING[0][:3000], "", ODD_TEXT]
    arrays = tokenizer.encode_arrays(texts)
    assert all(a.dtype == np.int32 for a in arrays)
    assert [a.tolist() for a in arrays] == tokenizer.encode_batch(texts)


def test_bpe_has_the_requested_vocabulary_and_readable_pieces(bpe):
    assert bpe.vocab_size == 400
    pieces = [bpe.id_to_token(i) for i in range(bpe.vocab_size)]
    assert " " in pieces and "\n" in pieces  # byte-level marks (Ġ, Ċ) decoded back to text
    assert any(len(p) > 3 and p.strip().isidentifier() for p in pieces[256:])
    assert "<0x" in bpe.id_to_token(bpe.encode("🙂")[0])  # partial UTF-8 shown as bytes


def test_bpe_training_is_deterministic(bpe):
    again = build_tokenizer("bpe", TRAINING, vocab_size=400)
    assert again.definition() == bpe.definition()
    assert again.fingerprint() == bpe.fingerprint()
    assert build_tokenizer("bpe", TRAINING, vocab_size=300).fingerprint() != bpe.fingerprint()


def test_decode_accepts_tensors_and_refuses_unknown_ids(bpe):
    ids = bpe.encode("hello")
    assert bpe.decode(torch.tensor(ids)) == "hello"
    with pytest.raises(TokenizerError, match="outside"):
        bpe.decode([bpe.vocab_size])
    with pytest.raises(TokenizerError, match="outside"):
        ByteTokenizer().decode([-1])


# ---------------------------------------------------------------- save and load


@pytest.mark.parametrize("kind", TOKENIZERS)
def test_save_then_load_gives_an_equal_tokenizer(kind, tmp_path):
    tokenizer = build(kind)
    path = tokenizer.save(tmp_path / "model")
    assert path == tmp_path / "model" / "tokenizer.json"
    assert [p.name for p in path.parent.iterdir()] == ["tokenizer.json"]  # no temp file left
    loaded = load_tokenizer(tmp_path / "model")
    assert type(loaded) is type(tokenizer) and loaded == tokenizer
    assert loaded.encode(TRAINING[1][:500]) == tokenizer.encode(TRAINING[1][:500])
    assert load_tokenizer(path) == tokenizer  # the file itself works too


def test_fingerprints_differ_between_kinds():
    assert len({build(kind).fingerprint() for kind in TOKENIZERS}) == 3


@pytest.mark.slow
def test_bpe_loads_equal_in_a_fresh_process(bpe, tmp_path, run_fresh):
    bpe.save(tmp_path)
    fresh = run_fresh(
        f"""
        import json
        from workbench.data import load_tokenizer
        tokenizer = load_tokenizer({str(tmp_path)!r})
        print(json.dumps({{"kind": tokenizer.kind, "fingerprint": tokenizer.fingerprint(),
                          "ids": tokenizer.encode({ODD_TEXT!r})}}))
        """,
        PYTHONHASHSEED="7",
    )
    assert fresh == {"kind": "bpe", "fingerprint": bpe.fingerprint(), "ids": bpe.encode(ODD_TEXT)}


def test_load_names_the_missing_or_malformed_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no tokenizer.json in {tmp_path}"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(TokenizerError, match=f"malformed tokenizer file {tmp_path}/tokenizer.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"kind": "sentencepiece"}')
    with pytest.raises(TokenizerError, match="unknown kind 'sentencepiece'"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"kind": "bpe", "tokenizer": {"model": 3}}')
    with pytest.raises(TokenizerError, match="malformed"):
        load_tokenizer(tmp_path)


def test_classes_are_the_kinds():
    assert [cls.kind for cls in (ByteTokenizer, CharTokenizer, BPETokenizer)] == list(TOKENIZERS)
