"""`corpus: hf` with `hf_streaming: true`: a dataset read row by row into the same Arrow cache as every corpus.

`load_dataset(streaming=True)` yields an IterableDataset; its rows become (source, text) pairs that
corpora.py's `_materialise` writes, exactly as it writes files, so everything downstream (the scan,
tokenization, the token stream) is the one path. A hub dataset needs the hub: offline it is refused
before anything is read; a local folder of data files streams offline.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator

import datasets

from workbench.data import corpora  # through the module, so a test's stand-in for hub_reachable is the one called
from workbench.data.corpora import CorpusError, CorpusUnavailableError


def from_hub_stream(hf_name, hf_config, text_column, validation_fraction, max_files, cache_dir):
    """`_from_hub` read row by row: the rows go straight into the Arrow cache, as every corpus's do.

    Sources are "hf:<name>#<row index>", as `_from_hub` numbers them. A dataset without a
    "validation" split cannot be shuffled without reading it whole, so validation is every k-th
    row of "train" (rows k-1, 2k-1, ...), k = round(1 / validation_fraction) but at least 2 (so
    a fraction over 1/2 holds out every second row); the rest train. `max_files` then keeps the
    first rows of each split as `_from_hub` does. `_materialise` reads the stream twice (hash,
    then write on a cache miss), so a hub dataset is streamed twice on its first load.
    """
    raw = _stream_hub_dataset(hf_name, hf_config, cache_dir)
    if "train" not in raw:
        raise CorpusError(f"{hf_name!r} has no 'train' split; it has: {', '.join(raw)}")
    _check_streamed_column(raw["train"], hf_name, text_column)
    if "validation" in raw:
        train = HubRows(raw["train"], hf_name, text_column)
        validation = HubRows(raw["validation"], hf_name, text_column)
    else:
        every = max(2, round(1 / validation_fraction))
        train = HubRows(raw["train"], hf_name, text_column, every=every, held_out=False)
        validation = HubRows(raw["train"], hf_name, text_column, every=every, held_out=True)
    if max_files is not None:
        wanted = max(1, math.ceil(max_files * validation_fraction))
        n_validation = sum(1 for _ in itertools.islice(validation, wanted))  # min(len(validation), wanted)
        validation, train = validation.first(n_validation), train.first(max_files - n_validation)
    return corpora._materialise({"train": train, "validation": validation}, cache_dir)


def _check_streamed_column(rows: datasets.IterableDataset, hf_name: str, text_column: str) -> None:
    """`_from_hub`'s column checks, from the declared features, or the first row where a stream declares none."""
    features = rows.features
    if features is None:
        first = next(iter(rows), None)
        if first is None:
            raise CorpusError(f"the 'train' split of {hf_name!r} has no rows")
        columns, kind = list(first), type(first.get(text_column)).__name__
        holds_strings = isinstance(first.get(text_column), str)
    else:
        columns, kind = list(features), features.get(text_column)
        holds_strings = getattr(kind, "dtype", None) in ("string", "large_string")
    if text_column not in columns:
        raise CorpusError(f"{hf_name!r} has no column {text_column!r}; its columns are: {', '.join(columns)}")
    if not holds_strings:
        raise CorpusError(f"column {text_column!r} of {hf_name!r} holds {kind}, not strings")


class HubRows:
    """(source, text) rows of one streamed split, read lazily each time it is iterated.

    `every` with `held_out` keeps only rows k-1, 2k-1, ... (k = every); with `held_out=False`, all
    the others. `limit` stops after that many rows, so a capped corpus reads only the stream's head.
    """

    def __init__(self, rows: datasets.IterableDataset, hf_name: str, text_column: str, *,
                 every: int | None = None, held_out: bool = False, limit: int | None = None):
        self.rows, self.hf_name, self.text_column = rows, hf_name, text_column
        self.every, self.held_out, self.limit = every, held_out, limit

    def first(self, limit: int) -> HubRows:
        """The same rows, at most `limit` of them."""
        return HubRows(self.rows, self.hf_name, self.text_column, every=self.every, held_out=self.held_out,
                       limit=limit)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        if self.limit == 0:
            return
        taken = 0
        for index, row in enumerate(self.rows):
            if self.every is not None and ((index + 1) % self.every == 0) != self.held_out:
                continue
            text = row[self.text_column]
            if not isinstance(text, str):
                raise CorpusError(f"column {self.text_column!r} of {self.hf_name!r} holds "
                                  f"{type(text).__name__} at row {index}, not strings")
            yield f"hf:{self.hf_name}#{index}", text
            taken += 1
            if taken == self.limit:
                return


def _stream_hub_dataset(hf_name: str, hf_config: str | None, cache_dir) -> datasets.IterableDatasetDict:
    """A local folder offline; a hub dataset only if the hub answers: a stream reads its files as it goes."""
    if os.path.exists(hf_name):
        with corpora._hub_offline():
            return datasets.load_dataset(hf_name, hf_config, streaming=True, cache_dir=cache_dir)
    endpoint = corpora.hub_endpoint()
    offline = _offline_requested()
    if offline or not corpora.hub_reachable(endpoint):
        why = "HF_HUB_OFFLINE is set" if offline else f"the Hugging Face hub ({endpoint}) is unreachable"
        raise CorpusUnavailableError(
            f"{why}, and streaming dataset {hf_name!r}{f' (config {hf_config!r})' if hf_config else ''} "
            f"needs the hub ({endpoint}): a stream reads the dataset's files as it goes; use streaming=False "
            "(hf_streaming=False) to read it from the local cache, or a local folder of data files as hf_name"
        )
    return datasets.load_dataset(hf_name, hf_config, streaming=True, cache_dir=cache_dir)


def _offline_requested() -> bool:
    """Whether HF_HUB_OFFLINE asks for the local cache only: the variable now, or as datasets and the hub read it."""
    import huggingface_hub.constants as hub_constants

    from_env = os.environ.get("HF_HUB_OFFLINE", "").upper() in datasets.config.ENV_VARS_TRUE_VALUES
    return from_env or bool(datasets.config.HF_HUB_OFFLINE) or bool(hub_constants.HF_HUB_OFFLINE)
