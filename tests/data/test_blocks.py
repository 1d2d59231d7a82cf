import datasets
import numpy as np
import pytest
import torch

from workbench.data import ByteTokenizer, TokenBlocks, build_tokenizer, load_corpus, token_blocks, tokenize
from workbench.data.blocks import TokenFile

TOY = [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 11, 12, 13, 14, 15, 16]]  # stream 0..16


def toy_tokens(documents=TOY) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"input_ids": documents, "n_bytes": [len(d) for d in documents]})


@pytest.fixture
def corpus(text_files, cache_dir):
    return load_corpus("text", paths=str(text_files / "*.txt"), validation_fraction=0.2, cache_dir=cache_dir)


def all_rows(blocks: TokenBlocks) -> torch.Tensor:
    return blocks[:]


# ---------------------------------------------------------------- blocks


def test_rows_overlap_by_one_token_and_drop_the_tail():
    rows = all_rows(token_blocks(toy_tokens(), 4))
    stream = torch.arange(17)
    assert rows.dtype == torch.long and rows.shape == (4, 5)  # (17 - 1) // 4 rows of 4 + 1
    for i, row in enumerate(rows):
        assert row.tolist() == stream[i * 4 : i * 4 + 5].tolist()
    inputs, targets = rows[:, :-1], rows[:, 1:]
    assert torch.equal(targets.reshape(-1), stream[1:17])  # every token after the first is a target once
    assert torch.equal(inputs.reshape(-1), stream[:16])


def test_separators_follow_every_document():
    rows = all_rows(token_blocks(toy_tokens([[1, 2], [3], [4, 5, 6]]), 3, separator_ids=[0, 9]))
    stream = [1, 2, 0, 9, 3, 0, 9, 4, 5, 6, 0, 9]
    assert rows.tolist() == [stream[0:4], stream[3:7], stream[6:10]]  # (12 - 1) // 3 rows; tail dropped


def test_exactly_one_block_and_too_few_tokens():
    assert all_rows(token_blocks(toy_tokens([[1, 2], [3]]), 2)).tolist() == [[1, 2, 3]]
    with pytest.raises(ValueError, match=r"only 3 tokens.*block_size=3 needs 4"):
        token_blocks(toy_tokens([[1, 2], [3]]), 3)
    with pytest.raises(ValueError, match="block_size must be an int >= 1"):
        token_blocks(toy_tokens(), 0)
    with pytest.raises(ValueError, match="needs an 'input_ids' column"):
        token_blocks(datasets.Dataset.from_dict({"text": ["a"]}), 1)


def test_block_size_one_gives_every_bigram():
    rows = all_rows(token_blocks(toy_tokens([[7, 8, 9]]), 1))
    assert rows.tolist() == [[7, 8], [8, 9]]


def test_rows_are_indexed_like_a_tensor_of_blocks():
    blocks = token_blocks(toy_tokens(), 4)
    whole = all_rows(blocks)
    assert len(blocks) == 4 and blocks.shape == (4, 5) and whole.dtype == torch.long
    assert torch.equal(blocks[2], whole[2]) and torch.equal(blocks[1:3], whole[1:3])
    picked = torch.tensor([3, 0, 3], dtype=torch.int32)
    assert torch.equal(blocks[picked], whole[picked.long()])


def test_a_cached_corpus_streams_from_a_file_of_the_smallest_dtype(corpus):
    tokens = tokenize(corpus["train"], ByteTokenizer())
    blocks = token_blocks(tokens, 32, vocab_size=256)
    assert isinstance(blocks.stream, TokenFile) and blocks.stream.dtype == np.uint16
    stream = np.concatenate([np.asarray(ids) for ids in tokens["input_ids"]])
    assert np.array_equal(np.fromfile(blocks.stream.filename, dtype=np.uint16), stream)
    assert len(blocks.stream) == len(stream) and np.array_equal(blocks.stream.read(5, 40), stream[5:45])
    in_memory = TokenBlocks(stream, 32)  # the same rows, cut from an array instead of the file
    assert torch.equal(all_rows(blocks), all_rows(in_memory))
    picked = [len(blocks) - 1, 0, 7, -1]
    assert torch.equal(blocks[picked], in_memory[picked]) and torch.equal(blocks[-1], in_memory[len(blocks) - 1])
    with pytest.raises(IndexError, match=f"row {len(blocks)} of {len(blocks)}"):
        blocks[len(blocks)]
    wide = token_blocks(tokens, 32)  # no vocabulary size given: int32, its own file
    assert wide.stream.dtype == np.int32 and wide.stream.filename != blocks.stream.filename
    assert torch.equal(all_rows(wide), all_rows(blocks))
    again = token_blocks(tokens, 16, vocab_size=256)  # another block size cuts the same stream file
    assert again.stream.filename == blocks.stream.filename and len(again) == (len(stream) - 1) // 16


# ---------------------------------------------------------------- tokenize


def test_tokenize_gives_ids_and_byte_counts(corpus):
    tokens = tokenize(corpus["train"], ByteTokenizer())
    assert tokens.column_names == ["input_ids", "n_bytes"]
    assert len(tokens) == len(corpus["train"])
    text = corpus["train"][0]["text"]
    assert tokens[0]["input_ids"] == list(text.encode("utf-8"))
    assert tokens[0]["n_bytes"] == len(text.encode("utf-8"))


class RefusesToEncode(ByteTokenizer):
    """Same definition (so same fingerprint) as ByteTokenizer, but any encoding fails the test."""

    def encode_arrays(self, texts):
        raise AssertionError("tokenize recomputed instead of reading its cache")


def test_tokenize_and_the_stream_are_served_from_the_cache(corpus, monkeypatch):
    first = tokenize(corpus["train"], ByteTokenizer())
    again = tokenize(corpus["train"], RefusesToEncode())
    assert again._fingerprint == first._fingerprint
    assert again.cache_files == first.cache_files and first.cache_files
    written = token_blocks(first, 32, vocab_size=256)
    monkeypatch.setattr("workbench.data.blocks._write_stream", RefusesToEncode.encode_arrays)
    assert token_blocks(again, 32, vocab_size=256).stream.filename == written.stream.filename


def test_same_tokenizer_built_twice_shares_the_cache_a_different_one_does_not(corpus):
    texts = list(corpus["train"]["text"])
    one, two = build_tokenizer("bpe", texts, 300), build_tokenizer("bpe", texts, 300)
    assert one is not two and one.fingerprint() == two.fingerprint()
    assert tokenize(corpus["train"], one).cache_files == tokenize(corpus["train"], two).cache_files
    char = build_tokenizer("char", texts)
    assert tokenize(corpus["train"], char)._fingerprint != tokenize(corpus["train"], one)._fingerprint


def test_tokenize_with_worker_processes_matches_one_process(corpus):
    tokenizer = build_tokenizer("char", corpus["train"]["text"])
    single = tokenize(corpus["train"], tokenizer)
    multi = tokenize(corpus["train"].select(range(len(corpus["train"]))), tokenizer, num_proc=2)
    assert multi["input_ids"][:] == single["input_ids"][:]


@pytest.mark.slow
def test_cache_is_reused_by_a_fresh_process(corpus, text_files, cache_dir, run_fresh):
    tokens = tokenize(corpus["validation"], ByteTokenizer())
    stream = token_blocks(tokens, 32, vocab_size=256).stream.filename
    fresh = run_fresh(
        f"""
        import json
        from workbench.data import ByteTokenizer, load_corpus, token_blocks, tokenize
        class RefusesToEncode(ByteTokenizer):
            def encode_arrays(self, texts):
                raise AssertionError("recomputed")
        corpus = load_corpus("text", paths={str(text_files / "*.txt")!r}, validation_fraction=0.2,
                             cache_dir={cache_dir!r})
        tokens = tokenize(corpus["validation"], RefusesToEncode())
        blocks = token_blocks(tokens, 32, vocab_size=256)
        print(json.dumps({{"tokens": tokens.cache_files, "stream": blocks.stream.filename}}))
        """,
        PYTHONHASHSEED="99",
    )
    assert fresh == {"tokens": tokens.cache_files, "stream": stream}


def test_tokenize_needs_a_text_column():
    with pytest.raises(ValueError, match="needs a 'text' column; the dataset has: body"):
        tokenize(datasets.Dataset.from_dict({"body": ["x"]}), ByteTokenizer())
