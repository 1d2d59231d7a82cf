"""Corpora, tokenizers and packed blocks on Hugging Face `datasets`, the pretraining DataModule,
and fine-tuning tasks, text encoders and the fine-tuning DataModule."""

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
from workbench.data.finetune_datamodule import FinetuneDataModule
from workbench.data.tasks import (
    TASK_KINDS,
    TASKS,
    TaskData,
    TaskError,
    TaskUnavailableError,
    check_task_options,
    load_task,
)
from workbench.data.text_encoders import (
    Encoded,
    HFTextEncoder,
    TextEncoder,
    TextEncoderError,
    WorkbenchTextEncoder,
)
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
    "TASKS",
    "TASK_KINDS",
    "TOKENIZERS",
    "BPETokenizer",
    "ByteTokenizer",
    "CharTokenizer",
    "CorpusError",
    "CorpusUnavailableError",
    "Encoded",
    "FinetuneDataModule",
    "HFTextEncoder",
    "PretrainDataModule",
    "TaskData",
    "TaskError",
    "TaskUnavailableError",
    "TextEncoder",
    "TextEncoderError",
    "Tokenizer",
    "TokenizerError",
    "WorkbenchTextEncoder",
    "blocks_tensor",
    "build_tokenizer",
    "check_task_options",
    "corpus_fingerprint",
    "describe_corpus",
    "load_corpus",
    "load_task",
    "load_tokenizer",
    "pack",
    "tokenize",
]
