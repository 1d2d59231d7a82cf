"""Raw texts -> model ids, each with the character span it came from.

A fine-tuning base brings its own tokenizer: a workbench run folder has a
byte/char/bpe `Tokenizer`, a Hugging Face encoder has a fast tokenizer that adds
[CLS] and [SEP]. A `TextEncoder` hides the difference and keeps, for every id,
the (start, end) characters it covers, which is what lets per-character labels
(token classification) and prompt masks (causal LM) land on the right ids.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from workbench.data.tokenizers import Tokenizer
from workbench.errors import RequestError

DEFAULT_MAX_LENGTH = 256


class TextEncoderError(RequestError):
    """A text encoder was built with a bad tokenizer or length."""


@dataclass
class Encoded:
    ids: list[int]
    offsets: list[tuple[int, int]]  # character span in the text for each id; (0, 0) for special tokens

    def __len__(self) -> int:
        return len(self.ids)


class TextEncoder(ABC):
    """Texts -> `Encoded`, truncated on the right to `max_length` ids (special tokens included)."""

    pad_id: int
    max_length: int

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @abstractmethod
    def encode(self, texts: list[str]) -> list[Encoded]: ...

    @abstractmethod
    def describe(self) -> dict:
        """A JSON-serialisable record: kind, vocab_size, max_length, pad_id and the tokenizer's identity."""


class WorkbenchTextEncoder(TextEncoder):
    """A workbench byte/char/bpe tokenizer, as the decoder was pretrained with it: no special tokens."""

    pad_id = 0  # padding is masked out, so any id will do; 0 exists in every workbench vocabulary

    def __init__(self, tokenizer: Tokenizer, max_length: int = DEFAULT_MAX_LENGTH):
        if not isinstance(tokenizer, Tokenizer):
            raise TextEncoderError(
                "WorkbenchTextEncoder needs a workbench Tokenizer (byte, char or bpe), "
                f"got {type(tokenizer).__name__}; for a Hugging Face tokenizer use HFTextEncoder"
            )
        self.tokenizer = tokenizer
        self.max_length = _checked_length(max_length)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def encode(self, texts: list[str]) -> list[Encoded]:
        _check_texts(texts)
        encoded = []
        for text in texts:
            ids, offsets = self.tokenizer.encode_with_offsets(text)
            encoded.append(Encoded(ids[: self.max_length], offsets[: self.max_length]))
        return encoded

    def describe(self) -> dict:
        return {
            "kind": f"workbench-{self.tokenizer.kind}",
            "vocab_size": self.vocab_size,
            "max_length": self.max_length,
            "pad_id": self.pad_id,
            "fingerprint": self.tokenizer.fingerprint(),
        }


class HFTextEncoder(TextEncoder):
    """A Hugging Face fast tokenizer with its special tokens ([CLS] ... [SEP] for BERT-family models)."""

    def __init__(self, hf_tokenizer, max_length: int = DEFAULT_MAX_LENGTH):
        if not getattr(hf_tokenizer, "is_fast", False):
            raise TextEncoderError(
                f"HFTextEncoder needs a fast (Rust-backed) Hugging Face tokenizer for character offsets, "
                f"got {type(hf_tokenizer).__name__}"
            )
        if hf_tokenizer.pad_token_id is None:
            raise TextEncoderError(f"the tokenizer {hf_tokenizer.name_or_path!r} has no padding token")
        self.hf_tokenizer = hf_tokenizer
        self.max_length = _checked_length(max_length)
        self.pad_id = int(hf_tokenizer.pad_token_id)

    @property
    def vocab_size(self) -> int:
        return len(self.hf_tokenizer)

    def encode(self, texts: list[str]) -> list[Encoded]:
        _check_texts(texts)
        if not texts:
            return []
        batch = self.hf_tokenizer(
            list(texts),
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return [
            Encoded(list(ids), [tuple(span) for span in offsets])
            for ids, offsets in zip(batch["input_ids"], batch["offset_mapping"], strict=True)
        ]

    def describe(self) -> dict:
        return {
            "kind": "hf",
            "name_or_path": str(self.hf_tokenizer.name_or_path),
            "tokenizer_class": type(self.hf_tokenizer).__name__,
            "vocab_size": self.vocab_size,
            "max_length": self.max_length,
            "pad_id": self.pad_id,
        }


def _checked_length(max_length) -> int:
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise TextEncoderError(f"max_length must be an int >= 1, got {max_length!r}")
    return max_length


def _check_texts(texts) -> None:
    if isinstance(texts, str):
        raise TextEncoderError("encode takes a list of texts, not one string")
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise TextEncoderError(f"encode takes strings; got {bad[0]}")
