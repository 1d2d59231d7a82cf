"""Tiny random Hugging Face causal LMs for the tests, built here (no hub): `from hf_models import build_causal_lm`.

Each is a real `transformers` model of its family (random weights, a few thousand parameters)
with a real fast tokenizer beside it: byte-level BPE trained here on docstrings, with the special
tokens of its family (Llama's BOS is added by the tokenizer, GPT-2 and Qwen2 add none). Like the
real checkpoints, none of them has a padding token.
"""

from __future__ import annotations

import json
import string
import textwrap

CAUSAL_FAMILIES = ("llama", "gpt2", "qwen2")


def _tokenizer(bos: str, eos: str, adds_bos: bool):
    import tokenizers as hf
    import transformers

    texts = [m.__doc__ for m in (json, textwrap, string) if m.__doc__] + [string.printable]
    tokenizer = hf.Tokenizer(hf.models.BPE())
    tokenizer.pre_tokenizer = hf.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = hf.decoders.ByteLevel()
    specials = list(dict.fromkeys([bos, eos]))
    trainer = hf.trainers.BpeTrainer(vocab_size=320, initial_alphabet=hf.pre_tokenizers.ByteLevel.alphabet(),
                                     special_tokens=specials, show_progress=False)
    tokenizer.train_from_iterator(texts, trainer)
    if adds_bos:
        tokenizer.post_processor = hf.processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.token_to_id(bos))])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=bos, eos_token=eos)


def build_causal_lm(family: str, *, vocab_size: int = 320, seed: int = 0, **overrides):
    """A tiny random model of `family` and its tokenizer, not saved."""
    import torch
    import transformers

    if family == "llama":
        config = transformers.LlamaConfig(
            vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=False, bos_token_id=0,
            eos_token_id=1, **overrides)
        model_cls, tokenizer = transformers.LlamaForCausalLM, _tokenizer("<s>", "</s>", adds_bos=True)
    elif family == "gpt2":
        config = transformers.GPT2Config(vocab_size=vocab_size, n_embd=64, n_layer=2, n_head=4, n_positions=128,
                                         bos_token_id=0, eos_token_id=0, **overrides)
        model_cls, tokenizer = transformers.GPT2LMHeadModel, _tokenizer("<|endoftext|>", "<|endoftext|>", False)
    elif family == "qwen2":
        config = transformers.Qwen2Config(
            vocab_size=vocab_size, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True, bos_token_id=0,
            eos_token_id=0, **overrides)
        model_cls, tokenizer = transformers.Qwen2ForCausalLM, _tokenizer("<|endoftext|>", "<|endoftext|>", False)
    else:
        raise ValueError(f"no tiny {family!r}; families: {', '.join(CAUSAL_FAMILIES)}")
    torch.manual_seed(seed)
    return model_cls(config).eval(), tokenizer
