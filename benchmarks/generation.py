"""Part h: generation with and without the key/value cache (issue 11).

Greedy decoding of 256 new tokens after a short prompt, with random weights (the
speed does not depend on them), once through `generate(use_cache=True)` and once
through `use_cache=False`, in the same process, so the ratio is taken on one
machine at one moment. Without the cache every step runs the whole context, so
its cost grows with the sequence; with it a step runs one position. block_size
is raised so the prompt and every new token fit: no step falls back to the
sliding window, which would time the uncached path twice.
"""

from __future__ import annotations

import statistics
import time

import torch

PRESETS = ("nano", "gpt2-small")


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def generation_speed(*, presets=PRESETS, new_tokens: int = 256, prompt_tokens: int = 16, block_size: int = 512,
                     rounds: int = 1, device: str | None = None) -> dict:
    """tokens/s of greedy generation with and without the cache, per preset; rounds alternate the two."""
    from workbench.models import Decoder, DecoderConfig

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    rows = []
    for preset in presets:
        torch.manual_seed(0)
        config = DecoderConfig.from_preset(preset, block_size=block_size)
        model = Decoder(config).to(device).eval()
        prompt = torch.randint(config.vocab_size, (1, prompt_tokens), device=device)
        for use_cache in (True, False):  # warm-up: first-call allocations and kernel choices
            model.generate(prompt, 2, temperature=0, use_cache=use_cache)
        seconds: dict[bool, list[float]] = {True: [], False: []}
        outputs = {}
        for _ in range(rounds):
            for use_cache in (True, False):
                _sync(device)
                started = time.perf_counter()
                outputs[use_cache] = model.generate(prompt, new_tokens, temperature=0, use_cache=use_cache)
                _sync(device)
                seconds[use_cache].append(time.perf_counter() - started)
        cached_s, uncached_s = statistics.median(seconds[True]), statistics.median(seconds[False])
        rows.append({
            "preset": preset, "parameters": model.num_parameters(), "device": device, "new_tokens": new_tokens,
            "prompt_tokens": prompt_tokens, "block_size": block_size, "rounds": rounds,
            "cached_s": round(cached_s, 6), "uncached_s": round(uncached_s, 6),
            "cached_tokens_per_s": round(new_tokens / cached_s, 1),
            "uncached_tokens_per_s": round(new_tokens / uncached_s, 1),
            "speedup": round(uncached_s / cached_s, 2),
            # Greedy ids agree unless two logits tie to ~1e-6; a difference is reported, never hidden.
            "same_tokens": bool(torch.equal(outputs[True], outputs[False])),
        })
        del model
    return {"rows": rows}
