"""Regurgitation of private data: does greedy decoding from the text before an e-mail address reproduce it?

Run on the raw (unmasked) corpus whatever the model trained on: with `pii: mask` the model never saw the
addresses, so its rate is the floor to compare a `pii: keep` model against, as the validation split's rate
is for addresses it could only guess. Addresses leave this module redacted ("g***@python.org"): the result
is written to run folders and model cards, which must not become a copy of what they warn about.
"""

from __future__ import annotations

import numpy as np

from workbench.audit.scoring import greedy_continuations
from workbench.data.pii import find_pii
from workbench.errors import RequestError

SPLITS = ("train", "validation")
EMAIL_KIND = "email"
# Tokens decoded beyond the address's own length: a tokenizer may split it differently after a given context.
EXTRA_TOKENS = 4


def email_regurgitation(model, tokenizer, raw_corpus, *, context_tokens: int = 64, max_addresses: int | None = None,
                        seed: int = 0, batch_size: int = 32) -> dict:
    """Per split: how many e-mail occurrences greedy decoding reproduces exactly from the tokens before them.

    `max_addresses` caps the occurrences tried per split (a seeded sample); None tries all. Each prompt is
    the last `context_tokens` tokens of the text before the address, fewer when prompt plus decoded tokens
    would outgrow the model's block_size, and occurrences with no text before them are skipped.
    """
    _check(model, raw_corpus, context_tokens, max_addresses, batch_size)
    rng = np.random.default_rng(seed)
    block = model.config.block_size
    result: dict = {"context_tokens": context_tokens}
    examples: set[tuple[str, str, str]] = set()
    for split in SPLITS:
        found = _occurrences(raw_corpus[split])
        if max_addresses is not None and len(found) > max_addresses:
            found = [found[i] for i in sorted(rng.choice(len(found), size=max_addresses, replace=False))]
        trials = []  # (source, address, prompt, new tokens)
        for source, text, start, address in found:
            new_tokens = len(tokenizer.encode(address)) + EXTRA_TOKENS
            room = min(context_tokens, block - new_tokens)
            prompt = context_before(tokenizer, text, start, room) if room > 0 else []
            if prompt:
                trials.append((source, address, prompt, new_tokens))
        reproduced = _reproduced(model, tokenizer, trials, batch_size)
        hits = [t for t, hit in zip(trials, reproduced, strict=True) if hit]
        result[split] = {
            "occurrences": len(trials), "distinct": len({t[1] for t in trials}), "reproduced": len(hits),
            "rate": len(hits) / len(trials) if trials else None,
            "distinct_reproduced": len({t[1] for t in hits}), "found": len(found),
            "skipped_no_context": len(found) - len(trials),
        }
        examples |= {(split, source, redact(address)) for source, address, _, _ in hits}
    result["reproduced_examples"] = [{"split": s, "source": src, "address": a} for s, src, a in sorted(examples)]
    return result


def redact(address: str) -> str:
    """Keep the first character of the local part and the domain: "guido@python.org" -> "g***@python.org"."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def context_before(tokenizer, text: str, start: int, tokens: int) -> list[int]:
    """The last `tokens` ids of `encode(text[:start])`, encoding only as much text before `start` as they need.

    A window that does not reach the start of the text may be cut inside a token, so its first id is
    dropped and the window grows until what remains is long enough.
    """
    width = 8 * tokens
    while True:
        begin = max(0, start - width)
        ids = tokenizer.encode(text[begin:start])
        if begin == 0:
            return ids[-tokens:] if ids else []
        if len(ids) > tokens:
            return ids[1:][-tokens:]
        width *= 2


def _occurrences(split) -> list[tuple[str, str, int, str]]:
    found = []
    for source, text in zip(split["source"], split["text"], strict=True):
        found += [(source, text, hit.start, text[hit.start:hit.end]) for hit in find_pii(text)
                  if hit.kind == EMAIL_KIND]
    return found


def _reproduced(model, tokenizer, trials, batch_size: int) -> list[bool]:
    """Greedy-decode every trial (one call per decoded length) and test the text for the address."""
    out = [False] * len(trials)
    by_length: dict[int, list[int]] = {}
    for i, (_, _, _, new_tokens) in enumerate(trials):
        by_length.setdefault(new_tokens, []).append(i)
    for new_tokens, members in by_length.items():
        generated = greedy_continuations(model, [trials[i][2] for i in members], new_tokens, batch_size=batch_size)
        for i, ids in zip(members, generated, strict=True):
            out[i] = tokenizer.decode(ids).startswith(trials[i][1])
    return out


def _check(model, corpus, context_tokens, max_addresses, batch_size) -> None:
    for name, value in (("context_tokens", context_tokens), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RequestError(f"{name} must be a positive int, got {value!r}")
    block = model.config.block_size
    if context_tokens >= block:
        raise RequestError(f"context_tokens {context_tokens} leaves no room to decode within the model's "
                           f"block_size {block}; use fewer than {block}")
    if max_addresses is not None and (isinstance(max_addresses, bool) or not isinstance(max_addresses, int)
                                      or max_addresses < 1):
        raise RequestError(f"max_addresses must be None (all) or a positive int, got {max_addresses!r}")
    missing = [s for s in SPLITS if s not in corpus]
    if missing:
        raise RequestError(f"the corpus lacks split(s) {missing}; it needs {list(SPLITS)}, it has {list(corpus)}")
    for split in SPLITS:
        absent = [c for c in ("text", "source") if c not in corpus[split].column_names]
        if absent:
            raise RequestError(f"the corpus's {split!r} split lacks column(s) {absent} "
                               f"(columns: {corpus[split].column_names})")
