"""Three tokenizers behind one interface, each saved as a single tokenizer.json.

byte: the 256 UTF-8 byte values; no training, nothing unseen.
char: the sorted characters of the training texts, plus `<unk>` (the last id)
      for characters the training texts never showed; `<unk>` decodes to U+FFFD.
bpe:  byte-level BPE trained with Hugging Face `tokenizers`; every byte is in the
      base alphabet, so any text round-trips exactly.

The file is the tokenizer's whole definition: the run folder keeps it beside the
weights, and `fingerprint()` hashes it so `datasets` can cache tokenized corpora.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import tokenizers as hf

from workbench.data.choices import TOKENIZERS
from workbench.errors import RequestError
from workbench.files import atomic_write

FILENAME = "tokenizer.json"
UNK = "<unk>"
MIN_BPE_VOCAB = 257


class TokenizerError(RequestError):
    """A tokenizer was asked for with bad options, or its file is malformed."""


class Tokenizer(ABC):
    """Text <-> token ids, plus what the workbench needs around that: labels, saving, identity."""

    kind: ClassVar[str]

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @abstractmethod
    def encode(self, text: str) -> list[int]: ...

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [self.encode(t) for t in texts]

    def encode_arrays(self, texts: list[str]) -> list[np.ndarray]:
        """`encode_batch` as int32 arrays: a megabyte of text is 4 MB of ids, not 30 MB of Python ints."""
        return [np.asarray(ids, dtype=np.int32) for ids in self.encode_batch(texts)]

    @abstractmethod
    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """`encode(text)` plus each id's (start, end) character span in `text`.

        Token-level labels are given per character, so fine-tuning needs to know
        which characters each id covers. An id that holds part of a character
        (a byte of a multi-byte UTF-8 character) gets that whole character's span.
        """

    def decode(self, ids: Sequence[int]) -> str:
        """Ids (a list, array or tensor) back to text; unknown ids are an error, not skipped."""
        ids = [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise TokenizerError(f"token id(s) {bad[:5]} outside the {self.kind} vocabulary of {self.vocab_size}")
        return self._decode(ids)

    @abstractmethod
    def _decode(self, ids: list[int]) -> str: ...

    @abstractmethod
    def id_to_token(self, i: int) -> str:
        """The text token `i` stands for, to label tokens in probes; `<0x..>` for partial UTF-8."""

    @abstractmethod
    def definition(self) -> dict:
        """Everything needed to rebuild this tokenizer; JSON-serialisable, includes "kind"."""

    def save(self, directory: str | os.PathLike) -> Path:
        """Write directory/tokenizer.json atomically (temp file, then rename)."""
        path = Path(directory) / FILENAME
        with atomic_write(path) as temporary:
            temporary.write_text(json.dumps(self.definition()), encoding="utf-8")
        return path

    def identity(self) -> dict:
        """What makes two tokenizers the same: the definition, less anything that only says where it came from."""
        return self.definition()

    @functools.cached_property
    def _fingerprint(self) -> str:
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def fingerprint(self) -> str:
        """16 hex chars of sha256 over the identity: equal tokenizers, equal fingerprints."""
        return self._fingerprint

    def __eq__(self, other) -> bool:
        return isinstance(other, Tokenizer) and self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size}, fingerprint={self.fingerprint()!r})"


class ByteTokenizer(Tokenizer):
    """Token ids are the UTF-8 bytes of the text."""

    kind = "byte"

    @property
    def vocab_size(self) -> int:
        return 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_arrays(self, texts: list[str]) -> list[np.ndarray]:
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8).astype(np.int32) for t in texts]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        ids = list(text.encode("utf-8"))
        if len(ids) == len(text):  # ASCII: byte i is character i
            return ids, list(zip(range(len(text)), range(1, len(text) + 1), strict=True))
        # Each character repeats its position once per UTF-8 byte (1 to 4, by code point).
        codepoints = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype="<u4")
        widths = 1 + (codepoints >= 0x80) + (codepoints >= 0x800) + (codepoints >= 0x10000)
        starts = np.repeat(np.arange(len(text)), widths).tolist()
        return ids, [(i, i + 1) for i in starts]

    def _decode(self, ids: list[int]) -> str:
        return bytes(ids).decode("utf-8", errors="replace")

    def id_to_token(self, i: int) -> str:
        return _readable(bytes([i]))

    def definition(self) -> dict:
        return {"kind": self.kind}


class CharTokenizer(Tokenizer):
    """One id per character seen in training (in sorted order), then one `<unk>` id."""

    kind = "char"

    def __init__(self, chars: Iterable[str]):
        chars = sorted(set(chars))
        if not chars or any(len(c) != 1 for c in chars):
            raise TokenizerError("a char tokenizer needs a non-empty set of single characters")
        self.chars = chars
        self.unk_id = len(chars)
        self._codepoints = np.array([ord(c) for c in chars], dtype=np.uint32)
        self._pieces = chars + ["\ufffd"]

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        seen: set[str] = set()
        for text in texts:
            seen.update(text)
        if not seen:
            raise TokenizerError("cannot build a char tokenizer: the training texts are empty")
        return cls(seen)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> list[int]:
        return self._ids(text).tolist()

    def encode_arrays(self, texts: list[str]) -> list[np.ndarray]:
        return [self._ids(t) for t in texts]

    def _ids(self, text: str) -> np.ndarray:
        # Vectorised lookup: code points -> position in the sorted vocabulary, or <unk>.
        codepoints = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype="<u4")
        positions = np.minimum(np.searchsorted(self._codepoints, codepoints), len(self.chars) - 1)
        return np.where(self._codepoints[positions] == codepoints, positions, self.unk_id).astype(np.int32)

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        return self.encode(text), [(i, i + 1) for i in range(len(text))]

    def _decode(self, ids: list[int]) -> str:
        return "".join(self._pieces[i] for i in ids)

    def id_to_token(self, i: int) -> str:
        return UNK if i == self.unk_id else self.chars[i]

    def definition(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}


class BPETokenizer(Tokenizer):
    """Byte-level BPE (GPT-2 style) from Hugging Face `tokenizers`; deterministic training."""

    kind = "bpe"

    def __init__(self, tokenizer: hf.Tokenizer):
        self.tokenizer = tokenizer
        self._byte_of_char = {c: b for b, c in _bytes_to_unicode().items()}

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> BPETokenizer:
        tokenizer = hf.Tokenizer(hf.models.BPE())
        tokenizer.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = hf.decoders.ByteLevel()
        trainer = hf.trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=hf.pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(iter(texts), trainer)
        return cls(tokenizer)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch_fast(list(texts))]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        encoding = self.tokenizer.encode(text)  # offsets are character spans already
        return encoding.ids, [tuple(span) for span in encoding.offsets]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids)

    def id_to_token(self, i: int) -> str:
        piece = self.tokenizer.id_to_token(i)
        return _readable(bytes(self._byte_of_char[c] for c in piece))

    def definition(self) -> dict:
        return {"kind": self.kind, "tokenizer": json.loads(self.tokenizer.to_str())}


def check_tokenizer_options(kind: str, vocab_size: int | None) -> None:
    """Fail fast on a bad kind or vocabulary size, before any texts are read."""
    if kind not in TOKENIZERS:
        raise TokenizerError(f"unknown tokenizer {kind!r}; valid tokenizers are: {', '.join(TOKENIZERS)}")
    if vocab_size is not None and (isinstance(vocab_size, bool) or not isinstance(vocab_size, int)):
        raise TokenizerError(f"vocab_size must be an int or None, got {vocab_size!r}")
    if kind == "byte" and vocab_size not in (None, 256):
        raise TokenizerError(f"the byte tokenizer's vocabulary is always 256, got vocab_size={vocab_size}")
    if kind == "char" and vocab_size is not None:
        raise TokenizerError("the char tokenizer's vocabulary comes from the training texts; leave vocab_size unset")
    if kind == "bpe" and (vocab_size is None or vocab_size < MIN_BPE_VOCAB):
        raise TokenizerError(
            f"the bpe tokenizer needs vocab_size >= {MIN_BPE_VOCAB} (256 bytes plus merges), got {vocab_size}"
        )


def build_tokenizer(kind: str, texts: Iterable[str] | None = None, vocab_size: int | None = None) -> Tokenizer:
    """A byte tokenizer, or a char/bpe tokenizer trained on `texts`."""
    check_tokenizer_options(kind, vocab_size)
    if kind == "byte":
        return ByteTokenizer()
    if texts is None:
        raise TokenizerError(f"the {kind} tokenizer is trained from texts; pass texts=")
    if isinstance(texts, str):
        raise TokenizerError("texts must be an iterable of strings, not one string")
    if kind == "char":
        return CharTokenizer.train(texts)
    return BPETokenizer.train(texts, vocab_size)


def load_tokenizer(directory: str | os.PathLike) -> Tokenizer:
    """Rebuild the tokenizer saved in directory/tokenizer.json (byte, char, bpe, or hf: `HFTokenizer`)."""
    path = Path(directory)
    if path.is_dir() or path.name != FILENAME:
        path = path / FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"no {FILENAME} in {path.parent}")
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
        kind = definition["kind"]
        if kind == "byte":
            return ByteTokenizer()
        if kind == "char":
            return CharTokenizer(definition["chars"])
        if kind == "bpe":
            return BPETokenizer(hf.Tokenizer.from_str(json.dumps(definition["tokenizer"])))
        if kind == "hf":  # not a setting choice: it comes with a Hugging Face model
            from workbench.data.hf_tokenizer import HFTokenizer  # it subclasses Tokenizer, defined here

            return HFTokenizer.from_definition(definition)
        raise TokenizerError(f"unknown kind {kind!r}, expected one of {', '.join((*TOKENIZERS, 'hf'))}")
    except Exception as error:  # json, missing keys, or the Rust parser's plain Exception
        raise TokenizerError(f"malformed tokenizer file {path}: {error}") from error


def _readable(piece: bytes) -> str:
    """The piece as text if it is whole UTF-8, else its bytes as <0xNN> (half a character)."""
    try:
        return piece.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"<0x{b:02X}>" for b in piece)


@functools.cache
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map, which byte-level BPE vocabularies are written in."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping
