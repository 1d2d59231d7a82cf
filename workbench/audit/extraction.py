"""Extraction (Carlini et al. 2021): how often greedy decoding from a prefix of real text reproduces what came next.

Windows of `prefix_tokens + max(ks)` tokens are sampled from training documents and as many from held-out
ones; a window is extracted at k when the first k greedy tokens equal the true next k. Held-out windows give
the rate a model reaches by generalising alone, so the gap between the splits is what it memorized. Rates are
also split by how often the true continuation occurs in the training text (Carlini et al. 2023): text seen many
times is memorized first, and that curve is what the notebook draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from workbench.audit.scoring import greedy_continuations
from workbench.errors import RequestError

SPLITS = ("train", "validation")
# (label, low, high): how many times a continuation occurs in the training text; high None = no upper bound.
DUPLICATE_BUCKETS = (("0", 0, 0), ("1", 1, 1), ("2-3", 2, 3), ("4-15", 4, 15), ("16+", 16, None))
# Joins training documents for counting, so no match runs across two of them.
DOCUMENT_SEPARATOR = "\x00"


@dataclass(frozen=True)
class Window:
    """One sampled window: its token ids and the character span of each, in its document's text."""

    text: str
    ids: list[int]
    offsets: list[tuple[int, int]]

    def span_text(self, start: int, stop: int) -> str:
        """The document text that tokens [start, stop) of the window cover."""
        return self.text[self.offsets[start][0]:self.offsets[stop - 1][1]]


def extraction_rates(model, tokenizer, corpus, *, prefixes: int = 100, prefix_tokens: int = 32,
                     ks: Sequence[int] = (32, 64), seed: int = 0, batch_size: int = 32) -> dict:
    """Extraction rates per split and per k, and by the continuation's duplicate count in the training text."""
    ks = _check(model, corpus, prefixes, prefix_tokens, ks, batch_size)
    window = prefix_tokens + max(ks)
    rng = np.random.default_rng(seed)
    windows = {split: sample_windows(list(corpus[split]["text"]), tokenizer, window, prefixes, rng, split=split)
               for split in SPLITS}
    train_text = DOCUMENT_SEPARATOR.join(corpus["train"]["text"])
    by_k: dict[str, dict] = {str(k): {} for k in ks}
    rows: dict[int, list[tuple[str, int, bool]]] = {k: [] for k in ks}
    for split in SPLITS:
        prompts = [w.ids[:prefix_tokens] for w in windows[split]]
        generated = greedy_continuations(model, prompts, max(ks), batch_size=batch_size)
        for k in ks:
            hits = [g[:k] == w.ids[prefix_tokens:prefix_tokens + k] for g, w in zip(generated, windows[split],
                                                                                     strict=True)]
            by_k[str(k)][split] = _rate(len(hits), sum(hits))
            for w, hit in zip(windows[split], hits, strict=True):
                duplicates = train_text.count(w.span_text(prefix_tokens, prefix_tokens + k))
                rows[k].append((split, duplicates, hit))
    for k in ks:
        by_k[str(k)]["by_duplicates"] = _by_duplicates(rows[k])
    return {"prefix_tokens": prefix_tokens, "seed": seed, "ks": list(ks), "window_tokens": window, "by_k": by_k}


def sample_windows(texts, tokenizer, length: int, count: int, rng: np.random.Generator, *,
                   split: str = "split") -> list[Window]:
    """`count` windows of `length` tokens, non-overlapping within a document, spread over documents.

    Documents are visited in a seeded random order and give one window each; only when the split has
    fewer long-enough documents than `count` do they give a second, third, ... in turn. Each document is
    cut into a grid of `length`-token slots at a random offset, and its slots are taken in random order.
    Only the documents visited are tokenized, so a large corpus costs what the sample needs.
    """
    order = rng.permutation(len(texts))
    chosen: list[Window] = []
    remaining: list[list[Window]] = []  # per document with windows left, in visiting order
    longest = 0
    for index in order:
        text = texts[int(index)]
        ids, offsets = tokenizer.encode_with_offsets(text)
        longest = max(longest, len(ids))
        slots = len(ids) // length
        if not slots:
            continue
        offset = int(rng.integers(0, len(ids) - slots * length + 1))
        starts = [offset + j * length for j in rng.permutation(slots)]
        cut = [Window(text, ids[s:s + length], offsets[s:s + length]) for s in starts]
        chosen.append(cut[0])
        remaining.append(cut[1:])
        if len(chosen) == count:
            return chosen
    if not chosen:
        raise RequestError(f"no {split} document has the {length} tokens a window needs (prefix_tokens + the "
                           f"longest k); its longest has {longest}: lower prefix_tokens or ks")
    turn = 1
    while len(chosen) < count and any(len(r) >= turn for r in remaining):
        for cut in remaining:
            if len(cut) >= turn:
                chosen.append(cut[turn - 1])
                if len(chosen) == count:
                    break
        turn += 1
    return chosen


def _by_duplicates(rows: list[tuple[str, int, bool]]) -> list[dict]:
    out = []
    for split in SPLITS:
        for label, low, high in DUPLICATE_BUCKETS:
            hits = [hit for s, d, hit in rows if s == split and d >= low and (high is None or d <= high)]
            if hits:
                out.append({"split": split, "duplicates": label, "low": low, "high": high,
                            **_rate(len(hits), sum(hits))})
    return out


def _rate(prefixes: int, extracted: int) -> dict:
    return {"prefixes": prefixes, "extracted": extracted, "rate": extracted / prefixes if prefixes else None}


def _check(model, corpus, prefixes, prefix_tokens, ks, batch_size) -> tuple[int, ...]:
    for name, value in (("prefixes", prefixes), ("prefix_tokens", prefix_tokens), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RequestError(f"{name} must be a positive int, got {value!r}")
    if isinstance(ks, (int, str)) or not ks:
        raise RequestError(f"ks must be a non-empty sequence of positive ints (e.g. (32, 64)), got {ks!r}")
    bad = [k for k in ks if isinstance(k, bool) or not isinstance(k, int) or k < 1]
    if bad:
        raise RequestError(f"ks must be positive ints, got {list(ks)!r} (bad: {bad!r})")
    ks = tuple(sorted(set(ks)))
    block = model.config.block_size
    if prefix_tokens + max(ks) > block:
        raise RequestError(f"prefix_tokens {prefix_tokens} + the longest k {max(ks)} = {prefix_tokens + max(ks)} "
                           f"tokens do not fit the model's block_size {block}; lower prefix_tokens or ks")
    _check_corpus(corpus)
    return ks


def _check_corpus(corpus) -> None:
    missing = [s for s in SPLITS if s not in corpus]
    if missing:
        raise RequestError(f"the corpus lacks split(s) {missing}; it needs {list(SPLITS)}, "
                           f"it has {list(corpus)}")
    for split in SPLITS:
        if "text" not in corpus[split].column_names:
            raise RequestError(f"the corpus's {split!r} split has no 'text' column "
                               f"(columns: {corpus[split].column_names})")
