"""Corpora, tokenizers and packed blocks on Hugging Face `datasets`, the pretraining DataModule,
and fine-tuning tasks, text encoders and the fine-tuning DataModule."""

from workbench.lazy import exports_of, lazy_exports

_EXPORTS = exports_of({
    "workbench.data.blocks": ["TokenBlocks", "token_blocks", "tokenize"],
    "workbench.data.canaries": ["CANARY_TEMPLATE", "CanaryError", "canary_candidates", "canary_text", "plant_canaries"],
    "workbench.data.corpora": [
        "CORPORA", "CorpusError", "CorpusUnavailableError", "corpus_fingerprint", "describe_corpus", "load_corpus",
    ],
    "workbench.data.datamodule": ["PretrainDataModule"],
    "workbench.data.finetune_datamodule": ["FinetuneDataModule"],
    "workbench.data.hf_tokenizer": ["HFTokenizer"],
    "workbench.data.pii": ["PiiHit", "find_pii", "mask_corpus", "mask_pii", "scan_corpus"],
    "workbench.data.prepared": ["PreparedCorpus", "prepare_corpus"],
    "workbench.data.tasks": [
        "TASK_KINDS", "TASKS", "TaskData", "TaskError", "TaskUnavailableError", "check_task_options", "load_task",
    ],
    "workbench.data.text_encoders": [
        "Encoded", "HFTextEncoder", "TextEncoder", "TextEncoderError", "WorkbenchTextEncoder",
    ],
    "workbench.data.tokenizers": [
        "TOKENIZERS", "BPETokenizer", "ByteTokenizer", "CharTokenizer", "Tokenizer", "TokenizerError",
        "build_tokenizer", "load_tokenizer",
    ],
})
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
