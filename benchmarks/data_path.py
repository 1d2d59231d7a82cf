"""Part e: how fast text becomes token ids with `datasets.map`, cache cold.

Each measurement loads the corpus into a fresh cache folder, so `datasets`
cannot answer from a cache file written by an earlier run or measurement.
"""

from __future__ import annotations

import tempfile
import time


def tokenization_throughput(*, tokenizers=("byte", "char"), num_procs=(1, 2), max_files: int | None = None) -> dict:
    from workbench.data.blocks import count_bytes, count_tokens, tokenize
    from workbench.data.corpora import load_corpus
    from workbench.data.tokenizers import build_tokenizer

    rows = []
    for kind in tokenizers:
        for num_proc in num_procs:
            with tempfile.TemporaryDirectory(prefix="wb-bench-data-") as cache:
                corpus = load_corpus("stdlib", max_files=max_files, cache_dir=cache)["train"]
                tokenizer = build_tokenizer(kind, corpus["text"])
                started = time.perf_counter()
                tokens = tokenize(corpus, tokenizer, num_proc=num_proc if num_proc > 1 else None)
                seconds = time.perf_counter() - started
                n_bytes, n_tokens = count_bytes(tokens), count_tokens(tokens)
            rows.append({
                "tokenizer": kind, "num_proc": num_proc, "documents": len(corpus), "mb": round(n_bytes / 1e6, 2),
                "seconds": round(seconds, 3), "mb_per_s": round(n_bytes / 1e6 / seconds, 2),
                "tokens_per_s": round(n_tokens / seconds, 1),
            })
    return {"rows": rows}
