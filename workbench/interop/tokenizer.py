"""Workbench tokenizers out as Hugging Face fast tokenizers.

`save_hf_tokenizer` writes a folder `transformers.AutoTokenizer.from_pretrained` loads with no
workbench code, and that gives the workbench's ids for every text, adding no special tokens
(the workbench's models were pretrained without any). Each kind becomes a `tokenizers.Tokenizer`:

byte: byte-level BPE over GPT-2's 256-character byte alphabet in id order, no merges, no regex
      split: every UTF-8 byte is one id, its own value.
char: a BPE over the sorted characters plus `<unk>` (the last id), no merges and no pre-tokenizer,
      so each character is one id; unseen characters become `<unk>`, decoded as U+FFFD.
      `<unk>` is only the model's unknown token, never an added or special token: a special
      `<unk>` would turn a literal "<unk>" in a text into one id, where the workbench reads five
      characters.
bpe:  already a `tokenizers` byte-level BPE: its own JSON.
hf:   the backend it wraps, with its special tokens named for transformers.
"""

from __future__ import annotations

import os
from pathlib import Path

import tokenizers as hf

from workbench.data.hf_tokenizer import HFTokenizer
from workbench.data.tokenizers import (
    UNK,
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    Tokenizer,
    TokenizerError,
    _bytes_to_unicode,
)

UNK_TEXT = "\ufffd"  # what the workbench decodes <unk> to


def to_hf_backend(tokenizer: Tokenizer) -> hf.Tokenizer:
    """The `tokenizers.Tokenizer` that gives `tokenizer`'s ids and decodes them back the same way."""
    if isinstance(tokenizer, ByteTokenizer):
        return _byte_backend()
    if isinstance(tokenizer, CharTokenizer):
        return _char_backend(tokenizer)
    if isinstance(tokenizer, BPETokenizer | HFTokenizer):
        return hf.Tokenizer.from_str(_backend_of(tokenizer).to_str())  # a copy: the caller may change it
    raise TokenizerError(
        f"cannot export a {getattr(tokenizer, 'kind', type(tokenizer).__name__)!r} tokenizer to Hugging Face; "
        "exportable kinds are: byte, char, bpe, hf"
    )


def save_hf_tokenizer(
    tokenizer: Tokenizer, directory: str | os.PathLike, *, model_max_length: int | None = None,
    mask: tuple[str, int] | None = None,
) -> list[Path]:
    """Write a Hugging Face fast tokenizer (tokenizer.json, tokenizer_config.json) into `directory`.

    `model_max_length` is the model's block size, so transformers warns about longer inputs;
    unset, transformers writes its "no limit" sentinel. `mask` (text, id) adds a masked LM's mask
    token, which must land on the id the model was trained with (the one after the tokenizer's own).
    Returns the files written.
    """
    import transformers  # heavy; only export needs it

    if model_max_length is not None and (
        isinstance(model_max_length, bool) or not isinstance(model_max_length, int) or model_max_length < 1
    ):
        raise TokenizerError(f"model_max_length must be a positive int or None, got {model_max_length!r}")
    options = {} if model_max_length is None else {"model_max_length": model_max_length}
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=to_hf_backend(tokenizer), **_special_tokens(tokenizer), **options
    )
    if mask is not None:
        text, wanted = mask
        fast.add_special_tokens({"mask_token": text})
        if fast.mask_token_id != wanted:
            raise TokenizerError(f"the mask token {text!r} landed on id {fast.mask_token_id}, not the model's "
                                 f"mask id {wanted}: the tokenizer's {len(fast) - 1} ids do not end where the "
                                 "model's vocabulary does")
    Path(directory).mkdir(parents=True, exist_ok=True)
    return [Path(p) for p in fast.save_pretrained(str(directory))]


def _byte_backend() -> hf.Tokenizer:
    alphabet = _bytes_to_unicode()
    backend = hf.Tokenizer(hf.models.BPE(vocab={alphabet[b]: b for b in range(256)}, merges=[]))
    # No regex split: the split only groups bytes into words, and with no merges every byte
    # is its own id anyway; without it nothing (like a leading space) depends on the split.
    backend.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = hf.decoders.ByteLevel()
    return backend


def _char_backend(tokenizer: CharTokenizer) -> hf.Tokenizer:
    vocab = {c: i for i, c in enumerate(tokenizer.chars)}
    vocab[UNK] = tokenizer.unk_id
    backend = hf.Tokenizer(hf.models.BPE(vocab=vocab, merges=[], unk_token=UNK))  # fuse_unk off: one per char
    # Replace works on each token, so only the <unk> id decodes to U+FFFD; Fuse joins the
    # pieces with nothing between them (a decoder-less BPE would join them with spaces).
    backend.decoder = hf.decoders.Sequence([hf.decoders.Replace(UNK, UNK_TEXT), hf.decoders.Fuse()])
    return backend


def _backend_of(tokenizer: BPETokenizer | HFTokenizer) -> hf.Tokenizer:
    return tokenizer.tokenizer if isinstance(tokenizer, BPETokenizer) else tokenizer.backend


def _special_tokens(tokenizer: Tokenizer) -> dict[str, str]:
    """bos/eos/pad token texts for transformers: only an `hf` tokenizer has any."""
    if not isinstance(tokenizer, HFTokenizer):
        return {}
    ids = {"bos_token": tokenizer.bos_id, "eos_token": tokenizer.eos_id, "pad_token": tokenizer.pad_token_id}
    return {name: tokenizer.backend.id_to_token(i) for name, i in ids.items() if i is not None}
