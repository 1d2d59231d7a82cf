"""Corpora, tokenizers and packed blocks on Hugging Face `datasets`, and the pretraining DataModule."""

from workbench.data.blocks import blocks_tensor, pack, tokenize
from workbench.data.corpora import (
    CORPORA,
    CorpusError,
    CorpusUnavailableError,
    corpus_fingerprint,
    describe_corpus,
    load_corpus,
)
from workbench.data.datamodule import PretrainDataModule
from workbench.data.tokenizers import (
    TOKENIZERS,
    BPETokenizer,
    ByteTokenizer,
    CharTokenizer,
    Tokenizer,
    TokenizerError,
    build_tokenizer,
    load_tokenizer,
)

__all__ = [
    "CORPORA",
    "TOKENIZERS",
    "BPETokenizer",
    "ByteTokenizer",
    "CharTokenizer",
    "CorpusError",
    "CorpusUnavailableError",
    "PretrainDataModule",
    "Tokenizer",
    "TokenizerError",
    "blocks_tensor",
    "build_tokenizer",
    "corpus_fingerprint",
    "describe_corpus",
    "load_corpus",
    "load_tokenizer",
    "pack",
    "tokenize",
]
