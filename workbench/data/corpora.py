"""Text corpora as `datasets.DatasetDict`s with "train" and "validation" splits.

Every corpus has the same two columns, "text" and "source", so everything
downstream (tokenizers, packing, the DataModule) is corpus-agnostic. Splits are
chosen by a hash of each document's relative path, never by Python's `hash`, so
the same files give the same split in every process and on every machine.

Corpora live in Arrow cache files (under `cache_dir`, default the `datasets`
cache) keyed by a hash of their content, which is what lets `datasets` cache
the tokenized and packed versions by fingerprint across processes.

Files are read as a stream of chunks of at most CHUNK_BYTES, cut at line ends, and a document
longer than that is stored as consecutive rows with the same source: no step from the file to
the token stream on disk holds more than a few chunks, so a corpus may be larger than memory.
"""

from __future__ import annotations

import codecs
import contextlib
import glob
import hashlib
import json
import math
import os
import socket
import sysconfig
import urllib.parse
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import datasets
import pyarrow.compute as pc

from workbench.config import keyword_options
from workbench.data.choices import CORPORA
from workbench.data.compression import ZLIB_LEVEL
from workbench.errors import RequestError, ResourceError

# Bump when the way a corpus is built changes, so stale Arrow caches are not reused.
CORPUS_FORMAT = "workbench-corpus-v2"  # v2: documents over CHUNK_BYTES are stored as chunks
CHUNK_BYTES = 1 << 20
SUMMARY_VERSION = "summary-v2"  # v2: the validation split's zlib yardstick
WRITER_BATCH_ROWS = 16  # rows per Arrow record batch and per map batch: a bounded buffer even for whole chunks
AUTO_NUM_PROC_BYTES = 64 << 20  # below this, starting worker processes for a map costs more than it saves
# pydoc_data is one generated 760 KB file of reference-manual prose, not code: wherever the
# path hash puts it, it dominates that split (it was 62% of validation on Python 3.11.7).
STDLIB_EXCLUDED_DIRS = frozenset({"site-packages", "test", "tests", "idle_test", "__pycache__", "pydoc_data"})
HUB_CONNECT_TIMEOUT_S = 3.0

FEATURES = datasets.Features({"text": datasets.Value("string"), "source": datasets.Value("string")})


class CorpusError(RequestError):
    """A corpus was asked for with a bad name or bad options."""


class CorpusUnavailableError(ResourceError):
    """A corpus exists in principle but cannot be fetched from here (e.g. the hub is unreachable)."""


def load_corpus(
    name: str,
    *,
    validation_fraction: float = 0.05,
    max_files: int | None = None,
    paths: list[str] | str | None = None,
    hf_name: str | None = None,
    hf_config: str | None = None,
    text_column: str = "text",
    streaming: bool = False,
    cache_dir: str | None = None,
) -> datasets.DatasetDict:
    """Load corpus `name` (one of CORPORA) as a DatasetDict with "train" and "validation".

    stdlib: the .py files of the running Python's standard library, without tests.
    text:   local files given by `paths` (a path, a glob, or a list of them). Several
            files are split by path hash; a single file is split by characters, the
            first (1 - validation_fraction) for training, like nanoGPT's shakespeare.
    hf:     `datasets.load_dataset(hf_name, hf_config)`, from the local cache first; with
            `streaming`, read row by row (`hub_stream.py`) instead of downloaded whole first.
    `max_files` caps the number of documents (files, or rows for hf; a single text
    file is always one document per split), taken from both splits in proportion.
    """
    _check(name, validation_fraction, max_files, paths, hf_name, hf_config, text_column, streaming)
    if name == "stdlib":
        root = Path(sysconfig.get_paths()["stdlib"])
        return _from_files(root, stdlib_files(root), validation_fraction, max_files, cache_dir)
    if name == "text":
        files = _expand_paths(paths)
        if len(files) == 1:
            return _from_single_file(files[0], validation_fraction, cache_dir)
        root = Path(os.path.commonpath([f.parent for f in files]))
        return _from_files(root, files, validation_fraction, max_files, cache_dir)
    if streaming:
        from workbench.data.hub_stream import from_hub_stream  # imports this module: loaded on use

        return from_hub_stream(hf_name, hf_config, text_column, validation_fraction, max_files, cache_dir)
    return _from_hub(hf_name, hf_config, text_column, validation_fraction, max_files, cache_dir)


def auto_num_proc(dataset: datasets.Dataset) -> int | None:
    """One process per core for a `Dataset.map` over AUTO_NUM_PROC_BYTES or more (from Arrow metadata), else None."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < 2 or len(dataset) < 2 or dataset.data.nbytes < AUTO_NUM_PROC_BYTES:
        return None
    return min(cores, len(dataset))


def check_corpus_options(name: str, options: dict) -> None:
    """Fail fast on a bad corpus name or options, before any loading (used by DataModules)."""
    values = keyword_options(load_corpus, options, what="corpus", error=CorpusError)
    values.pop("cache_dir")
    _check(name, **values)


def _check(name, validation_fraction, max_files, paths, hf_name, hf_config, text_column, streaming) -> None:
    if name not in CORPORA:
        raise CorpusError(f"unknown corpus {name!r}; valid corpora are: {', '.join(CORPORA)}")
    if isinstance(validation_fraction, bool) or not isinstance(validation_fraction, (int, float)):
        raise CorpusError(f"validation_fraction must be a number in (0, 1), got {validation_fraction!r}")
    if not 0 < validation_fraction < 1:
        raise CorpusError(f"validation_fraction must be in (0, 1) exclusive, got {validation_fraction!r}")
    if max_files is not None and (isinstance(max_files, bool) or not isinstance(max_files, int) or max_files < 2):
        raise CorpusError(f"max_files must be None or an int >= 2 (one file per split at least), got {max_files!r}")
    if not isinstance(streaming, bool):
        raise CorpusError(f"streaming must be True or False, got {streaming!r}")
    misplaced = {
        "stdlib": {"paths": paths, "hf_name": hf_name, "hf_config": hf_config},
        "text": {"hf_name": hf_name, "hf_config": hf_config},
        "hf": {"paths": paths},
    }[name]
    if name != "hf" and text_column != "text":
        misplaced["text_column"] = text_column
    if name != "hf" and streaming:
        misplaced["streaming"] = streaming
    given = [key for key, value in misplaced.items() if value is not None]
    if given:
        raise CorpusError(f"option(s) {', '.join(given)} do not apply to the {name!r} corpus")
    if name == "text" and not paths:
        raise CorpusError("the 'text' corpus needs paths=: a file path, a glob, or a list of them")
    if name == "hf" and not hf_name:
        raise CorpusError(
            "the 'hf' corpus needs hf_name=, a Hugging Face dataset name such as 'karpathy/tiny_shakespeare'"
        )


# ---------------------------------------------------------------- local files


def stdlib_files(root: Path) -> list[Path]:
    """The standard library's .py files under `root`, without site-packages and tests."""
    files = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in STDLIB_EXCLUDED_DIRS]
        files += [Path(directory, n) for n in names if n.endswith(".py") and not n.startswith("test_")]
    return files


def _expand_paths(paths: list[str] | str) -> list[Path]:
    patterns = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files: set[Path] = set()
    for pattern in map(str, patterns):
        matched = glob.glob(os.path.expanduser(pattern), recursive=True)
        matched = [Path(m) for m in matched if os.path.isfile(m)]
        if not matched:
            raise CorpusError(f"no files match {pattern!r} (give a file path, a glob, or a list of them)")
        files.update(m.resolve() for m in matched)
    return sorted(files)


def path_unit(relative_path: str) -> float:
    """Map a relative path to [0, 1) with sha256: the split rule, stable across processes."""
    digest = hashlib.sha256(relative_path.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_paths(relative_paths: list[str], validation_fraction: float, max_files: int | None = None):
    """Split sorted relative paths into (train, validation) by path hash.

    A split the hash leaves empty gets the file whose hash lies nearest the
    threshold, so both splits are non-empty whenever there are two files.
    `max_files` then keeps the first files of each split in sorted order:
    ceil(max_files * validation_fraction) for validation (at least 1), the rest train.
    """
    ordered = sorted(relative_paths)
    validation = [p for p in ordered if path_unit(p) < validation_fraction]
    train = [p for p in ordered if path_unit(p) >= validation_fraction]
    if len(ordered) >= 2 and not validation:
        nearest = min(train, key=path_unit)
        train.remove(nearest)
        validation = [nearest]
    if len(ordered) >= 2 and not train:
        nearest = max(validation, key=path_unit)
        validation.remove(nearest)
        train = [nearest]
    if max_files is not None:
        n_validation = min(len(validation), max(1, math.ceil(max_files * validation_fraction)))
        validation = validation[:n_validation]
        train = train[: max_files - n_validation]
    return train, validation


def read_chunks(path: Path, chunk_bytes: int | None = None) -> Iterator[str]:
    """The file as UTF-8 text (undecodable bytes become U+FFFD, deterministically), in chunks.

    A file of at most `chunk_bytes` is one chunk. A longer one is cut after the last line end of
    each read (or where the read ends, for a line longer than a read); the chunks joined are
    exactly the file's whole decoded text.
    """
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    carry = ""
    with open(path, "rb") as handle:
        block = handle.read(chunk_bytes)
        while block:
            following = handle.read(chunk_bytes)  # read ahead: the file's last chunk takes all that is left
            text = carry + decoder.decode(block, final=not following)
            end = len(text)
            if following and 0 < (line_end := text.rfind("\n") + 1) and end - line_end < chunk_bytes:
                end = line_end
            carry = text[end:]
            if end:
                yield text[:end]
            block = following


def read_text(path: Path) -> str:
    """The whole file as `read_chunks` decodes it, for a caller that wants one string (a small file)."""
    return "".join(read_chunks(path))


class FileDocuments:
    """(source, text) rows of files, read lazily and chunked; optionally only characters [start, stop).

    An iterable object rather than a list, so `Dataset.from_generator` writes the rows as they
    are read, and the content hash and the Arrow file are each one streaming pass.
    """

    def __init__(self, files: list[tuple[str, str]], start: int = 0, stop: int | None = None):
        self.files, self.start, self.stop = files, start, stop  # (source, path) pairs

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for source, path in self.files:
            position = 0
            for chunk in read_chunks(Path(path)):
                low, high = max(self.start - position, 0), len(chunk)
                if self.stop is not None:
                    high = min(high, self.stop - position)
                if low < high:
                    yield source, chunk[low:high]
                position += len(chunk)
                if self.stop is not None and position >= self.stop:
                    break


def _from_files(root: Path, files: list[Path], validation_fraction, max_files, cache_dir) -> datasets.DatasetDict:
    by_relative = {f.relative_to(root).as_posix(): f for f in files}
    if len(by_relative) < 2:
        raise CorpusError(f"need at least 2 files to make a train and a validation split, found {len(by_relative)}")
    train, validation = split_paths(list(by_relative), validation_fraction, max_files)
    documents = {
        "train": FileDocuments([(p, str(by_relative[p])) for p in train]),
        "validation": FileDocuments([(p, str(by_relative[p])) for p in validation]),
    }
    return _materialise(documents, cache_dir)


def _from_single_file(path: Path, validation_fraction, cache_dir) -> datasets.DatasetDict:
    n_characters = sum(len(chunk) for chunk in read_chunks(path))
    cut = int(n_characters * (1 - validation_fraction))
    if cut == 0 or cut == n_characters:
        raise CorpusError(
            f"{path} has {n_characters} characters, too few to split {validation_fraction} off for validation"
        )
    whole = [(path.name, str(path))]
    documents = {"train": FileDocuments(whole, 0, cut), "validation": FileDocuments(whole, cut)}
    return _materialise(documents, cache_dir)


def _generate(documents: Iterable[tuple[str, str]]) -> Iterator[dict]:
    for source, text in documents:
        yield {"text": text, "source": source}


def _materialise(documents: dict[str, Iterable[tuple[str, str]]], cache_dir) -> datasets.DatasetDict:
    """Write each split to an Arrow cache file named by the content hash (or reuse it).

    Each split's documents are iterated twice, to hash and (on a cache miss) to write.
    """
    content = _content_hash((split, docs) for split, docs in documents.items())
    splits = {}
    for split, docs in documents.items():
        splits[split] = datasets.Dataset.from_generator(
            _generate,
            features=FEATURES,
            gen_kwargs={"documents": docs},
            cache_dir=cache_dir,
            fingerprint=_short_hash(CORPUS_FORMAT, content, split),
            split=datasets.Split(split),
            writer_batch_size=WRITER_BATCH_ROWS,
        )
    return datasets.DatasetDict(splits)


# ---------------------------------------------------------------- Hugging Face hub


def _from_hub(hf_name, hf_config, text_column, validation_fraction, max_files, cache_dir) -> datasets.DatasetDict:
    raw = _load_hub_dataset(hf_name, hf_config, cache_dir)
    if "train" not in raw:
        raise CorpusError(f"{hf_name!r} has no 'train' split; it has: {', '.join(raw)}")
    columns = raw["train"].column_names
    if text_column not in columns:
        raise CorpusError(f"{hf_name!r} has no column {text_column!r}; its columns are: {', '.join(columns)}")
    kind = raw["train"].features[text_column]
    if getattr(kind, "dtype", None) not in ("string", "large_string"):
        raise CorpusError(f"column {text_column!r} of {hf_name!r} holds {kind}, not strings")
    train = _with_source(raw["train"], hf_name, text_column)
    if "validation" in raw:
        validation = _with_source(raw["validation"], hf_name, text_column)
    else:
        carved = train.train_test_split(test_size=validation_fraction, seed=0)
        train, validation = carved["train"], carved["test"]
    if max_files is not None:
        n_validation = min(len(validation), max(1, math.ceil(max_files * validation_fraction)))
        validation = validation.select(range(n_validation))
        train = train.select(range(min(len(train), max_files - n_validation)))
    return datasets.DatasetDict({"train": train, "validation": validation})


def _with_source(dataset: datasets.Dataset, hf_name: str, text_column: str) -> datasets.Dataset:
    """Keep only the text (renamed to "text") and add "source" = "hf:<name>#<row index>"."""
    dataset = dataset.select_columns([text_column])
    if text_column != "text":
        dataset = dataset.rename_column(text_column, "text")
    return dataset.map(
        _add_source,
        with_indices=True,
        batched=True,
        fn_kwargs={"prefix": f"hf:{hf_name}#"},
        new_fingerprint=_short_hash(CORPUS_FORMAT, dataset._fingerprint, hf_name),
        features=FEATURES,
        desc="adding sources",
    )


def _add_source(batch: dict, indices: list[int], prefix: str) -> dict:
    return {"text": batch["text"], "source": [f"{prefix}{i}" for i in indices]}


def _load_hub_dataset(hf_name: str, hf_config: str | None, cache_dir) -> datasets.DatasetDict:
    """The local cache first; the hub only if it answers within a few seconds."""
    try:
        with _hub_offline():
            return datasets.load_dataset(hf_name, hf_config, cache_dir=cache_dir)
    except (ConnectionError, FileNotFoundError):
        pass
    endpoint = hub_endpoint()
    if not hub_reachable(endpoint):
        raise CorpusUnavailableError(
            f"the Hugging Face hub ({endpoint}) is unreachable and dataset {hf_name!r}"
            f"{f' (config {hf_config!r})' if hf_config else ''} is not in the local cache; "
            "for local files use the 'text' corpus: load_corpus('text', paths='path/or/*.glob')"
        )
    return datasets.load_dataset(hf_name, hf_config, cache_dir=cache_dir)


@contextlib.contextmanager
def _hub_offline():
    """Make `datasets` and `huggingface_hub` use only the local cache, for this block."""
    import huggingface_hub.constants as hub_constants

    saved = datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def hub_endpoint() -> str:
    """The hub's URL, honouring HF_ENDPOINT set after import."""
    import huggingface_hub.constants as hub_constants

    return os.environ.get("HF_ENDPOINT", hub_constants.ENDPOINT).rstrip("/")


def hub_reachable(endpoint: str | None = None, timeout: float = HUB_CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub opens within `timeout` seconds."""
    url = urllib.parse.urlsplit(endpoint or hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------- identity and summary


def corpus_fingerprint(corpus: datasets.DatasetDict) -> str:
    """16 hex chars of sha256 over every split's sources and texts: same content, same hash."""
    return _summary(corpus)["fingerprint"]


def describe_corpus(corpus: datasets.DatasetDict) -> dict:
    """A JSON-serialisable summary for the run record: fingerprint and per-split sizes."""
    return json.loads(json.dumps(_summary(corpus)))  # a copy: callers may edit theirs


def _summary(corpus: datasets.DatasetDict) -> dict:
    """One streaming pass over the corpus, kept beside its Arrow files under their fingerprints.

    Every run of a cached corpus asks for this again; reading the sidecar instead of the corpus
    keeps a run on a multi-GB corpus from paging all of it in just to describe it.
    """
    splits = _split_order(corpus)
    sidecar = _summary_path(corpus, splits)
    if sidecar is not None and sidecar.is_file():
        return json.loads(sidecar.read_text())
    summary: dict = {"fingerprint": _content_hash((split, _documents(corpus[split])) for split in splits)}
    for split in splits:  # the validation split's zlib yardstick is the one a model's val_bpb is read against
        summary[split] = _split_summary(corpus[split], with_zlib=split == "validation")
    if sidecar is not None:
        staged = sidecar.with_name(f"{sidecar.name}.{os.getpid()}.tmp")
        staged.write_text(json.dumps(summary))
        os.replace(staged, sidecar)
    return summary


def _split_summary(dataset: datasets.Dataset, *, with_zlib: bool) -> dict:
    """Documents, characters and UTF-8 bytes of one split, a few rows at a time; with_zlib: zlib's bits per byte."""
    sizes = {"documents": len(dataset), "characters": 0, "bytes": 0}
    compressor, compressed = zlib.compressobj(ZLIB_LEVEL), 0
    for batch in dataset.select_columns(["text"]).with_format("arrow").iter(batch_size=WRITER_BATCH_ROWS):
        sizes["characters"] += pc.sum(pc.utf8_length(batch["text"])).as_py() or 0
        sizes["bytes"] += pc.sum(pc.binary_length(batch["text"])).as_py() or 0
        if with_zlib:
            compressed += sum(len(compressor.compress(text.encode("utf-8"))) for text in batch["text"].to_pylist())
    if with_zlib and sizes["bytes"]:
        sizes["zlib_bpb"] = 8 * (compressed + len(compressor.flush())) / sizes["bytes"]
    return sizes


def _summary_path(corpus: datasets.DatasetDict, splits: list[str]) -> Path | None:
    """Where a corpus's summary is kept, or None when a split lives only in memory."""
    if not all(corpus[split].cache_files for split in splits):
        return None
    key = _short_hash(SUMMARY_VERSION, *(f"{split}={corpus[split]._fingerprint}" for split in splits))
    return Path(corpus[splits[0]].cache_files[0]["filename"]).parent / f"workbench-summary-{key}.json"


def corpus_phrase(name: str, *, max_files: int | None = None, hf_name: str | None = None,
                  paths: list[str] | str | None = None, python_version: str | None = None) -> str:
    """How a model card names a corpus: "the Python 3.11.7 standard library's source (120 of its files)"."""
    if name == "stdlib":
        python = f"Python {python_version}" if python_version else "Python"
        return f"the {python} standard library's source" + (f" ({max_files} of its files)" if max_files else "")
    if name == "hf":
        return f"the Hugging Face dataset `{hf_name}`"
    if name == "text":
        return f"local text files ({', '.join(map(str, paths)) if isinstance(paths, list) else paths})"
    return f"the corpus `{name}`"


def corpus_limitation(name: str, phrase: str, *, tokenizer_kind: str | None = None) -> str:
    """What a model that has read only this corpus cannot know, for its card's known limitations."""
    if name == "stdlib":
        return ("It has read only Python standard-library source (Python code, English comments and docstrings): "
                "it knows nothing of other languages, third-party libraries or later Python versions"
                + (", and its tokenizer was fitted to that text." if tokenizer_kind == "bpe" else "."))
    return f"It has read only {phrase}: outside that text its predictions mean little."


def _split_order(corpus: datasets.DatasetDict) -> list[str]:
    named = [s for s in ("train", "validation") if s in corpus]
    return named + sorted(s for s in corpus if s not in named)


def _documents(dataset: datasets.Dataset) -> Iterator[tuple[str, str]]:
    for batch in dataset.iter(batch_size=WRITER_BATCH_ROWS):
        yield from zip(batch["source"], batch["text"], strict=True)


def _content_hash(splits: Iterable[tuple[str, Iterable[tuple[str, str]]]]) -> str:
    digest = hashlib.sha256()
    for split, documents in splits:
        _update(digest, b"S", split)
        for source, text in documents:
            _update(digest, b"D", source)
            _update(digest, b"T", text)
    return digest.hexdigest()[:16]


def _update(digest, tag: bytes, value: str) -> None:
    """Tag and length-prefix each field, so no two different corpora feed the same bytes."""
    data = value.encode("utf-8", errors="surrogatepass")
    digest.update(tag + len(data).to_bytes(8, "big"))
    digest.update(data)


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:16]
