"""Documents -> token ids -> fixed-length training blocks, cached by `datasets`.

Both steps are `Dataset.map` calls with fingerprints we derive ourselves (input
fingerprint + tokenizer fingerprint + format version), so a second process that
asks for the same corpus, tokenizer and block size reads the Arrow cache file
instead of redoing the work.

A block is block_size + 1 ids: inputs are row[:-1], targets row[1:]. Rows are
cut from the concatenated token stream every block_size tokens, so consecutive
rows share one token and every token except the first is a target exactly once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from workbench.data.tokenizers import Tokenizer
from workbench.errors import RequestError

# Bump when the output of tokenize or pack changes for the same inputs.
TOKENIZE_VERSION = "tokenize-v1"
PACK_VERSION = "pack-v1"


def tokenize(dataset: datasets.Dataset, tokenizer: Tokenizer, *, num_proc: int | None = None) -> datasets.Dataset:
    """Map a "text" column to "input_ids" and "n_bytes" (UTF-8 length, for bits per byte)."""
    if "text" not in dataset.column_names:
        raise RequestError(f"tokenize needs a 'text' column; the dataset has: {', '.join(dataset.column_names)}")
    return dataset.map(
        _encode,
        batched=True,
        remove_columns=dataset.column_names,
        fn_kwargs={"tokenizer": tokenizer},
        features=datasets.Features(
            {"input_ids": datasets.List(datasets.Value("int32")), "n_bytes": datasets.Value("int64")}
        ),
        num_proc=num_proc,
        new_fingerprint=_hash(dataset._fingerprint, tokenizer.fingerprint(), TOKENIZE_VERSION),
        desc=f"tokenizing ({tokenizer.kind})",
    )


def _encode(batch: dict, tokenizer: Tokenizer) -> dict:
    texts = batch["text"]
    return {"input_ids": tokenizer.encode_batch(texts), "n_bytes": [len(t.encode("utf-8")) for t in texts]}


def pack(tokens: datasets.Dataset, block_size: int, *, separator_ids: Sequence[int] = ()) -> datasets.Dataset:
    """Concatenate documents (each followed by `separator_ids`) and cut rows of block_size + 1.

    Row i is stream[i * block_size : i * block_size + block_size + 1]; the tail
    that does not fill a row is dropped. The whole split is packed in one pass
    (held in memory as int32), which keeps rows exact across document batches.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise RequestError(f"block_size must be an int >= 1, got {block_size!r}")
    if "input_ids" not in tokens.column_names:
        raise RequestError(f"pack needs an 'input_ids' column; the dataset has: {', '.join(tokens.column_names)}")
    separator_ids = [int(i) for i in separator_ids]
    n_tokens = count_tokens(tokens) + len(separator_ids) * len(tokens)
    if n_tokens < block_size + 1:
        raise RequestError(
            f"only {n_tokens} tokens, fewer than one block: block_size={block_size} needs {block_size + 1}"
        )
    packed = tokens.with_format("arrow").map(
        _pack_table,
        batched=True,
        batch_size=None,
        remove_columns=tokens.column_names,
        fn_kwargs={"block_size": block_size, "separator_ids": separator_ids},
        features=datasets.Features({"input_ids": datasets.List(datasets.Value("int32"), length=block_size + 1)}),
        new_fingerprint=_hash(tokens._fingerprint, str(block_size), repr(separator_ids), PACK_VERSION),
        desc=f"packing blocks of {block_size}",
    )
    return packed.with_format(None)


def _pack_table(table: pa.Table, block_size: int, separator_ids: list[int]) -> pa.Table:
    stream = _token_stream(table.column("input_ids"), separator_ids)
    n_rows = (len(stream) - 1) // block_size
    windows = np.lib.stride_tricks.sliding_window_view(stream, block_size + 1)
    rows = np.ascontiguousarray(windows[::block_size][:n_rows])
    flat = pa.array(rows.reshape(-1), type=pa.int32())
    return pa.table({"input_ids": pa.FixedSizeListArray.from_arrays(flat, block_size + 1)})


def _token_stream(column: pa.ChunkedArray, separator_ids: list[int]) -> np.ndarray:
    """All documents' ids in order, each followed by the separator, as one int32 array."""
    tokens = pc.list_flatten(column).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    if not separator_ids:
        return tokens
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    width = len(separator_ids)
    # Each document moves right by `width` slots for every separator before it.
    shift = np.repeat(np.arange(len(lengths)) * width, lengths)
    stream = np.empty(len(tokens) + width * len(lengths), dtype=np.int32)
    stream[np.arange(len(tokens)) + shift] = tokens
    ends = np.cumsum(lengths) + np.arange(1, len(lengths) + 1) * width
    stream[(ends[:, None] - width + np.arange(width)).reshape(-1)] = np.tile(separator_ids, len(lengths))
    return stream


def blocks_tensor(packed: datasets.Dataset) -> torch.Tensor:
    """The packed rows as one LongTensor (N, block_size + 1), for sampling without `datasets`."""
    if "input_ids" not in packed.column_names:
        columns = ", ".join(packed.column_names)
        raise RequestError(f"blocks_tensor needs an 'input_ids' column; the dataset has: {columns}")
    column = packed.with_format("arrow")[:]["input_ids"]
    if not pa.types.is_fixed_size_list(column.type):
        raise RequestError(f"'input_ids' must hold fixed-length rows (use pack), got {column.type}")
    width = column.type.list_size
    values = pc.list_flatten(column).to_numpy(zero_copy_only=False)
    return torch.from_numpy(values.astype(np.int64).reshape(len(column), width))


def count_tokens(tokens: datasets.Dataset) -> int:
    """Total ids over all rows of an "input_ids" column, without decoding rows to Python."""
    column = tokens.with_format("arrow")[:]["input_ids"]
    return int(pc.sum(pc.list_value_length(column)).as_py() or 0)


def count_bytes(tokens: datasets.Dataset) -> int:
    """Total UTF-8 bytes of the documents behind a tokenized dataset."""
    return int(pc.sum(tokens.with_format("arrow")[:]["n_bytes"]).as_py() or 0)


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:16]
