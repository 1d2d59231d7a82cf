"""A Hugging Face fast tokenizer behind the workbench `Tokenizer` interface.

A Hugging Face causal LM (Llama, GPT-2, Qwen2, ...) brought in as a base keeps its own
tokenizer: pretraining, fine-tuning and the probes must give it exactly the ids
`hf_tokenizer(text)["input_ids"]` gives, special tokens it adds (Llama's BOS) included.
The work is done by the tokenizer's Rust backend (`tokenizers.Tokenizer`), which is all
this module needs: `data/` never imports `transformers`. `from_transformers` takes an
already-loaded transformers tokenizer by duck typing, so the post-processor transformers
set up comes along, and `definition()` keeps the backend's JSON so a run folder's
tokenizer.json rebuilds it with no hub and no transformers.
"""

from __future__ import annotations

import json
import re

import tokenizers as hf

from workbench.data.tokenizers import Tokenizer, TokenizerError, _bytes_to_unicode, _readable

SENTENCEPIECE_SPACE = "\u2581"  # "▁", how sentencepiece-style vocabularies write a space
_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # a byte-fallback piece


class HFTokenizer(Tokenizer):
    """Ids, offsets and decoding from a Hugging Face backend tokenizer, plus its special-token ids."""

    kind = "hf"

    def __init__(
        self,
        backend: hf.Tokenizer,
        *,
        bos_id: int | None = None,
        eos_id: int | None = None,
        pad_id: int | None = None,
        vocab_size: int | None = None,
        name: str | None = None,
    ):
        if not isinstance(backend, hf.Tokenizer):
            raise TokenizerError(f"HFTokenizer needs a tokenizers.Tokenizer backend, got {type(backend).__name__}")
        # A private copy without truncation or padding: transformers switches those on the
        # backend it owns per call, and the ids here must not depend on its last call.
        self.backend = hf.Tokenizer.from_str(backend.to_str())
        self.backend.no_truncation()
        self.backend.no_padding()
        self._vocab_size = _checked_size(vocab_size, self.backend.get_vocab_size(with_added_tokens=True))
        self.bos_id = self._checked_id("bos_id", bos_id)
        self.eos_id = self._checked_id("eos_id", eos_id)
        self.pad_token_id = self._checked_id("pad_id", pad_id)  # its own, None if it has none (see pad_id)
        self.name = None if name is None else str(name)
        self._added = {i: token.content for i, token in self.backend.get_added_tokens_decoder().items()}
        self._byte_level = _is_byte_level(json.loads(self.backend.to_str()))
        self._byte_of_char = {c: b for b, c in _bytes_to_unicode().items()}

    @classmethod
    def from_transformers(cls, hf_tokenizer) -> HFTokenizer:
        """Wrap a loaded transformers fast tokenizer (anything with `.backend_tokenizer`)."""
        backend = getattr(hf_tokenizer, "backend_tokenizer", None)
        if not isinstance(backend, hf.Tokenizer):
            raise TokenizerError(
                f"HFTokenizer needs a fast (Rust-backed) Hugging Face tokenizer, got {type(hf_tokenizer).__name__}"
            )
        return cls(
            backend,
            bos_id=hf_tokenizer.bos_token_id,
            eos_id=hf_tokenizer.eos_token_id,
            pad_id=hf_tokenizer.pad_token_id,
            vocab_size=len(hf_tokenizer),
            name=getattr(hf_tokenizer, "name_or_path", None) or None,
        )

    @classmethod
    def from_definition(cls, definition: dict) -> HFTokenizer:
        """Rebuild from `definition()` (what a run folder's tokenizer.json holds)."""
        backend = hf.Tokenizer.from_str(json.dumps(definition["tokenizer"]))
        return cls(
            backend,
            bos_id=definition.get("bos_id"),
            eos_id=definition.get("eos_id"),
            pad_id=definition.get("pad_id"),
            vocab_size=definition.get("vocab_size"),
            name=definition.get("name"),
        )

    @property
    def vocab_size(self) -> int:
        """The model-facing size, added tokens counted (the embedding may be larger)."""
        return self._vocab_size

    @property
    def pad_id(self) -> int:
        """The padding id: the tokenizer's own, else EOS, else 0 (padding is masked out downstream)."""
        for candidate in (self.pad_token_id, self.eos_id):
            if candidate is not None:
                return candidate
        return 0

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.backend.encode_batch_fast(list(texts))]

    def encode_with_offsets(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        encoding = self.backend.encode(text)  # character spans; (0, 0) for specials the post-processor adds
        return encoding.ids, [tuple(span) for span in encoding.offsets]

    def _decode(self, ids: list[int]) -> str:
        # The backend drops ids it does not know; the workbench contract makes them an error.
        known = self.backend.get_vocab_size(with_added_tokens=True)
        bad = [i for i in ids if i >= known]
        if bad:
            raise TokenizerError(f"token id(s) {bad[:5]} have no token in the backend vocabulary of {known}")
        return self.backend.decode(ids, skip_special_tokens=False)

    def id_to_token(self, i: int) -> str:
        """Readable text: specials as written, byte-level pieces as text or `<0xNN>`, "▁" as a space."""
        if i in self._added:
            return self._added[i]
        piece = self.backend.id_to_token(i)
        if piece is None:
            return f"<unused {i}>"
        if self._byte_level and all(c in self._byte_of_char for c in piece):
            return _readable(bytes(self._byte_of_char[c] for c in piece))
        byte = _BYTE_PIECE.fullmatch(piece)
        if byte:
            return _readable(bytes([int(byte.group(1), 16)]))
        return piece.replace(SENTENCEPIECE_SPACE, " ")

    def definition(self) -> dict:
        return {
            "kind": self.kind,
            "tokenizer": json.loads(self.backend.to_str()),
            "bos_id": self.bos_id,
            "eos_id": self.eos_id,
            "pad_id": self.pad_token_id,
            "vocab_size": self._vocab_size,
            "name": self.name,
        }

    def identity(self) -> dict:
        """The folder it was loaded from is not part of what it is: copies share a fingerprint (and a data cache)."""
        return {key: value for key, value in self.definition().items() if key != "name"}

    def _checked_id(self, what: str, value) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self._vocab_size:
            raise TokenizerError(f"{what} must be an id in [0, {self._vocab_size}) or None, got {value!r}")
        return value


def _checked_size(vocab_size, backend_size: int) -> int:
    if vocab_size is None:
        return backend_size
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise TokenizerError(f"vocab_size must be a positive int or None, got {vocab_size!r}")
    return vocab_size


def _is_byte_level(definition: dict) -> bool:
    """Whether the vocabulary is written in GPT-2's byte alphabet (a ByteLevel decoder says so)."""
    decoder = definition.get("decoder") or {}
    parts = decoder.get("decoders", [decoder]) if decoder.get("type") == "Sequence" else [decoder]
    return any(part.get("type") == "ByteLevel" for part in parts)
