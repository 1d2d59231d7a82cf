"""The round trip a researcher checks before trusting an export: plain `transformers` against the workbench.

`compare_with_transformers` loads a Hugging Face folder the way any user of it would
(`AutoModelForCausalLM`, `AutoTokenizer`, `pipeline("text-generation")`), generates greedily
from a prompt, and sets the result beside the workbench model's own greedy generation and
logits on the same ids. `compare_masked_lm_with_transformers` does the same for an encoder's export
(`AutoModelForMaskedLM`): its guesses at hidden tokens against the workbench's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from workbench.interop.load import quiet_loading


def compare_with_transformers(model, tokenizer, folder: str | os.PathLike, prompt: str, *,
                              max_new_tokens: int = 50) -> dict[str, Any]:
    """Greedy text from both sides, whether their new token ids agree, and the largest logit difference."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    folder = str(Path(folder))
    with quiet_loading():
        hf_model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    hf_tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ValueError(f"the prompt {prompt!r} encodes to no tokens")
    block = getattr(model.config, "block_size", len(ids) + max_new_tokens)
    max_new_tokens = max(0, min(max_new_tokens, block - len(ids)))
    context = torch.tensor([ids])
    ours = model.generate(context, max_new_tokens, temperature=0)[0].tolist()
    generator = pipeline("text-generation", model=hf_model, tokenizer=hf_tokenizer, device="cpu")
    hf_text = generator(prompt, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False,
                        return_full_text=True)[0]["generated_text"]
    with torch.no_grad():
        # An explicit mask: transformers would otherwise mask a BOS that doubles as the padding id.
        theirs = hf_model.generate(context, attention_mask=torch.ones_like(context), max_new_tokens=max_new_tokens,
                                   min_new_tokens=max_new_tokens, do_sample=False)[0].tolist()
        full = torch.tensor([ours])
        difference = (model(full).logits.float() - hf_model(full).logits.float()).abs().max().item()
    return {
        "prompt": prompt,
        "workbench_text": tokenizer.decode(ours),
        "transformers_text": hf_text,
        "same_tokens": ours == theirs,
        "new_tokens": len(ours) - len(ids),
        "max_logit_difference": difference,
        "architecture": type(hf_model).__name__,
    }


def compare_masked_lm_with_transformers(model, tokenizer, folder: str | os.PathLike, text: str, *,
                                        rate: float = 0.15, seed: int = 0) -> dict[str, Any]:
    """An encoder's export read back: `text` with `rate` of its tokens hidden (the fill-in view's choice), the
    workbench's and `pipeline("fill-mask")`'s model's guesses there, and the largest logit difference."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from workbench.models.encoder import hidden_positions

    folder = str(Path(folder))
    with quiet_loading():
        hf_model = AutoModelForMaskedLM.from_pretrained(folder, dtype=torch.float32).eval()
    hf_tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer.encode(text)[: model.config.block_size]
    positions = hidden_positions(len(ids), rate, seed)
    masked = torch.tensor([ids])
    masked[0, positions] = hf_tokenizer.mask_token_id
    with torch.no_grad():
        ours, theirs = model(masked).logits.float(), hf_model(input_ids=masked).logits.float()
    guesses = [ours[0, p].argmax().item() for p in positions], [theirs[0, p].argmax().item() for p in positions]
    return {
        "text": text,
        "hidden": len(positions),
        "same_guesses": guesses[0] == guesses[1],
        "right": sum(guess == ids[p] for guess, p in zip(guesses[1], positions, strict=True)),
        "mask_token": hf_tokenizer.mask_token,
        "max_logit_difference": (ours - theirs).abs().max().item(),
        "architecture": type(hf_model).__name__,
    }
