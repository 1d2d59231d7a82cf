"""Documents -> token ids (`Dataset.map`, cached) -> one token stream on disk -> fixed-length blocks.

Tokenizing is a `Dataset.map` with a fingerprint we derive ourselves (input fingerprint +
tokenizer fingerprint + format version), so a second process that asks for the same corpus
and tokenizer reads the Arrow cache instead of redoing the work; a large corpus is tokenized
by several processes (`num_proc`), each writing its shard.

The ids of every document, in order, are then written once to a flat binary file beside that
cache (uint16 when the vocabulary fits, else int32), streamed batch by batch. Training
memory-maps it: a batch copies its rows out of the page cache, and nothing holds the corpus.

A block is block_size + 1 ids: inputs are row[:-1], targets row[1:]. Rows are cut from the
stream every block_size tokens, so consecutive rows share one token and every token except
the first is a target exactly once; the tail that does not fill a row is dropped.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from datasets.utils.tqdm import tqdm as hf_tqdm

from workbench.data.corpora import WRITER_BATCH_ROWS, auto_num_proc
from workbench.data.tokenizers import Tokenizer
from workbench.errors import RequestError

# Bump when the output of tokenize or pack changes for the same inputs.
TOKENIZE_VERSION = "tokenize-v1"
STREAM_VERSION = "stream-v1"


def tokenize(dataset: datasets.Dataset, tokenizer: Tokenizer, *, num_proc: int | None = None) -> datasets.Dataset:
    """Map a "text" column to "input_ids" and "n_bytes" (UTF-8 length, for bits per byte).

    `num_proc` None picks `auto_num_proc(dataset)`; the result is the same for any number.
    """
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
        num_proc=num_proc or auto_num_proc(dataset),
        batch_size=WRITER_BATCH_ROWS,
        writer_batch_size=WRITER_BATCH_ROWS,
        new_fingerprint=_hash(dataset._fingerprint, tokenizer.fingerprint(), TOKENIZE_VERSION),
        desc=f"tokenizing ({tokenizer.kind})",
    )


def _encode(batch: dict, tokenizer: Tokenizer) -> dict:
    texts = batch["text"]
    return {"input_ids": tokenizer.encode_arrays(texts), "n_bytes": [len(t.encode("utf-8")) for t in texts]}


def token_blocks(tokens: datasets.Dataset, block_size: int, *, separator_ids: Sequence[int] = (),
                 vocab_size: int | None = None) -> TokenBlocks:
    """The rows of block_size + 1 ids over all documents of `tokens` (each followed by `separator_ids`).

    The stream file is written once per (tokens fingerprint, separators, dtype) and read a row at a time;
    a tokenized dataset that lives only in memory gets its stream in memory too.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise RequestError(f"block_size must be an int >= 1, got {block_size!r}")
    if "input_ids" not in tokens.column_names:
        columns = ", ".join(tokens.column_names)
        raise RequestError(f"token_blocks needs an 'input_ids' column; the dataset has: {columns}")
    separator_ids = [int(i) for i in separator_ids]
    n_tokens = count_tokens(tokens) + len(separator_ids) * len(tokens)
    if n_tokens < block_size + 1:
        raise RequestError(
            f"only {n_tokens} tokens, fewer than one block: block_size={block_size} needs {block_size + 1}"
        )
    dtype = np.dtype(np.uint16 if vocab_size is not None and vocab_size <= 1 << 16 else np.int32)
    if not tokens.cache_files:
        stream = np.concatenate(list(_stream_pieces(tokens, separator_ids, dtype)))
        return TokenBlocks(stream, block_size)
    name = f"token-stream-{_hash(tokens._fingerprint, repr(separator_ids), dtype.str, STREAM_VERSION)}.bin"
    path = Path(tokens.cache_files[0]["filename"]).parent / name
    if not path.is_file():
        _write_stream(tokens, separator_ids, dtype, path)
    return TokenBlocks(TokenFile(path, dtype), block_size)


class TokenFile:
    """A token stream on disk, read a window at a time with `os.pread`, never mapped.

    Not np.memmap: on kernels whose page cache uses large folios (Linux 6.x), every touched page
    of a mapping brings its whole folio into the process's resident set, so a few hundred random
    rows of 514 bytes mapped ~500 MB of a 760 MB stream (measured, MADV_RANDOM and MADV_NOHUGEPAGE
    alike). A pread copies just the bytes asked for (~6 us a row), and the file pages stay the
    kernel's cache, shared and dropped under pressure, outside the process's RSS.
    """

    def __init__(self, path: str | os.PathLike, dtype: np.dtype):
        self.filename, self.dtype = str(path), np.dtype(dtype)
        self.length = os.path.getsize(path) // self.dtype.itemsize
        self._fd: int | None = None
        self._pid = None

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict:  # a worker process opens its own descriptor
        return {**self.__dict__, "_fd": None, "_pid": None}

    def __del__(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)

    def read(self, start: int, count: int) -> np.ndarray:
        """`count` ids from position `start`."""
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.filename, os.O_RDONLY), os.getpid()
        size = self.dtype.itemsize
        data = os.pread(self._fd, count * size, start * size)
        if len(data) != count * size:
            raise OSError(f"{self.filename}: read {len(data)} of {count * size} bytes at id {start}; "
                          "the token stream is shorter than when it was opened (delete it to rebuild)")
        return np.frombuffer(data, dtype=self.dtype)


class TokenBlocks:
    """Rows of block_size + 1 ids cut every block_size tokens from one stream (an array or a TokenFile).

    Indexing (an int, a slice, or a sequence/tensor of row numbers) copies just those rows out
    as an int64 tensor; `len` and `shape` count rows, so it stands where a (rows, block_size + 1)
    tensor of blocks once stood, without ever holding them all.
    """

    def __init__(self, stream: np.ndarray | TokenFile, block_size: int):
        self.stream, self.block_size = stream, block_size
        self._n_rows = (len(stream) - 1) // block_size

    def __len__(self) -> int:
        return self._n_rows

    @property
    def shape(self) -> tuple[int, int]:
        return (self._n_rows, self.block_size + 1)

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, torch.Tensor):
            index = index.numpy()
        if isinstance(index, (int, np.integer)):
            return torch.from_numpy(self._rows(np.array([self._row_number(index)]))[0])
        if isinstance(index, slice):
            rows = np.arange(*index.indices(self._n_rows))
        else:
            rows = np.array([self._row_number(i) for i in np.asarray(index).reshape(-1)], dtype=np.int64)
        return torch.from_numpy(self._rows(rows))

    def _row_number(self, index) -> int:
        index = int(index)
        if not -self._n_rows <= index < self._n_rows:
            raise IndexError(f"row {index} of {self._n_rows}")
        return index % self._n_rows

    def _rows(self, rows: np.ndarray) -> np.ndarray:
        width, out = self.block_size + 1, np.empty((len(rows), self.block_size + 1), dtype=np.int64)
        if isinstance(self.stream, TokenFile):
            for i, row in enumerate(rows):
                out[i] = self.stream.read(int(row) * self.block_size, width)
        else:
            starts = rows * self.block_size
            out[:] = self.stream[starts[:, None] + np.arange(width)]
        return out

    def __repr__(self) -> str:
        where = getattr(self.stream, "filename", None) or "memory"
        return f"TokenBlocks({len(self)} rows of {self.block_size + 1} ids, {self.stream.dtype} in {where})"


def _write_stream(tokens: datasets.Dataset, separator_ids: list[int], dtype: np.dtype, path: Path) -> None:
    """Stream every document's ids to `path`, through a temporary file renamed into place when whole.

    Several processes may write the same stream at once (the ranks of one run): each writes its own
    temporary file, and the identical results replace one another atomically.
    """
    staged = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with open(staged, "wb") as out:
            for piece in _stream_pieces(tokens, separator_ids, dtype, progress=True):
                out.write(piece.tobytes())
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def _stream_pieces(tokens: datasets.Dataset, separator_ids: list[int], dtype: np.dtype, *, progress: bool = False):
    batches = tokens.select_columns(["input_ids"]).with_format("arrow").iter(batch_size=WRITER_BATCH_ROWS)
    if progress:
        total = -(-len(tokens) // WRITER_BATCH_ROWS)
        batches = hf_tqdm(batches, total=total, desc="writing the token stream", unit="batch")
    for batch in batches:
        yield _token_stream(batch["input_ids"], separator_ids).astype(dtype, copy=False)


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


def count_tokens(tokens: datasets.Dataset) -> int:
    """Total ids over all rows of an "input_ids" column, without decoding rows to Python."""
    column = tokens.with_format("arrow")[:]["input_ids"]
    return int(pc.sum(pc.list_value_length(column)).as_py() or 0)


def count_bytes(tokens: datasets.Dataset) -> int:
    """Total UTF-8 bytes of the documents behind a tokenized dataset."""
    return int(pc.sum(tokens.with_format("arrow")[:]["n_bytes"]).as_py() or 0)


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:16]
