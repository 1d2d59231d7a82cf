"""Which of two minimally different sentences does a language model find more likely: the stereotyping one?

Pairs come in CrowS-Pairs' CSV format (Nangia et al., 2020: columns sent_more, sent_less, stereo_antistereo,
bias_type). The stereotyping sentence is sent_more for a "stereo" row and sent_less for an "antistereo"
one. A causal LM scores a sentence by the sum of its tokens' log-probabilities, the first token given
(the causal stand-in for CrowS-Pairs' masked-LM pseudo-log-likelihood); a model without bias would
prefer the stereotyping sentence about half the time. The built-in templates only exercise this code:
they are a few dozen sentences written for the tests, not a benchmark.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from workbench.audit.scoring import token_log_probs
from workbench.errors import RequestError, ResourceError

COLUMNS = ("sent_more", "sent_less", "stereo_antistereo", "bias_type")
DIRECTIONS = ("stereo", "antistereo")
BUILT_IN = "built-in templates: exercises the code, not a benchmark"
METRIC = "sum of token log-probabilities, first token given (natural log)"
Z95 = 1.959963984540054


def read_pairs(path: str | Path | None = None) -> list[dict]:
    """The rows of a CrowS-Pairs-format CSV (the built-in templates for None), every row checked before any scoring."""
    if path is None:
        with resources.as_file(resources.files("workbench.audit") / "terms" / "pair_templates.csv") as shipped:
            return read_pairs(Path(shipped))
    path = Path(path).expanduser()
    if not path.is_file():
        raise RequestError(f"path={str(path)!r} is not a file; give the CrowS-Pairs CSV (crows_pairs_anonymized.csv) "
                           "or None for the built-in templates")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = [c for c in reader.fieldnames or [] if c is not None]
            missing = [c for c in COLUMNS if c not in columns]
            if missing:
                raise RequestError(f"{path} is not in CrowS-Pairs format: no column {', '.join(missing)}; "
                                   f"it has: {', '.join(repr(c) for c in columns) or 'none'}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ResourceError(f"cannot read {path}: {error}", path=path) from None
    pairs = []
    for line, row in enumerate(rows, start=2):
        direction = (row["stereo_antistereo"] or "").strip()
        if direction not in DIRECTIONS:
            raise RequestError(f"{path} line {line}: stereo_antistereo={direction!r} is not one of: "
                               f"{', '.join(DIRECTIONS)}")
        more, less = (row["sent_more"] or "").strip(), (row["sent_less"] or "").strip()
        if not more or not less:
            raise RequestError(f"{path} line {line}: sent_more and sent_less must both be sentences")
        stereotyping, other = (more, less) if direction == "stereo" else (less, more)
        pairs.append({"stereotyping": stereotyping, "other": other, "direction": direction,
                      "bias_type": (row["bias_type"] or "").strip() or "unknown"})
    if not pairs:
        raise RequestError(f"{path} holds no sentence pairs")
    return pairs


def sentence_log_probs(model, sequences: Sequence[Sequence[int]]) -> list[float]:
    """Sum of log p(ids[t] | ids[:t]) for t >= 1; a sequence longer than the model's block is scored in windows
    that overlap by half a block, each token once, with at least half a block of context."""
    block = model.config.block_size
    if block < 2:
        raise RequestError(f"a model with block_size {block} cannot score a sentence; it needs at least 2")
    stride = block // 2
    windows, owners, keep = [], [], []
    for k, ids in enumerate(sequences):
        windows.append(list(ids[:block]))
        owners.append(k)
        keep.append(min(len(ids), block) - 1)
        covered = min(len(ids), block)
        while covered < len(ids):
            end = min(covered + stride, len(ids))
            windows.append(list(ids[end - block:end]))
            owners.append(k)
            keep.append(end - covered)
            covered = end
    totals = [0.0] * len(sequences)
    for owner, n, values in zip(owners, keep, token_log_probs(model, windows), strict=True):
        totals[owner] += float(values[len(values) - n:].sum()) if n else 0.0
    return totals


def wilson(k: int, n: int) -> list[float]:
    """Wilson score 95% interval for k successes in n trials."""
    p, z2 = k / n, Z95 * Z95
    centre, half = (p + z2 / (2 * n)) / (1 + z2 / n), Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def paired_sentences(model, tokenizer, *, path: str | Path | None = None, seed: int = 0,
                     bootstrap: int = 1000) -> dict:
    """Share of pairs whose stereotyping sentence the model scores higher, with a 95% interval (bootstrap over
    pairs, seeded; Wilson when bootstrap=0), overall and by bias_type."""
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise RequestError(f"bootstrap must be an int >= 0 (0 = a Wilson interval), got {bootstrap!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise RequestError(f"seed must be an int, got {seed!r}")
    pairs = read_pairs(path)
    encoded = []
    for pair in pairs:
        for key in ("stereotyping", "other"):
            ids = list(tokenizer.encode(pair[key]))
            if len(ids) < 2:
                raise RequestError(f"{pair[key]!r} encodes to {len(ids)} token(s); a score needs at least 2")
            encoded.append(ids)
    scores = sentence_log_probs(model, encoded)
    stereo, other = np.array(scores[0::2]), np.array(scores[1::2])
    preferred = stereo > other
    n, k = len(pairs), int(preferred.sum())
    if bootstrap:
        shares = preferred[np.random.default_rng(seed).integers(0, n, size=(bootstrap, n))].mean(1)
        ci = [float(v) for v in np.percentile(shares, [2.5, 97.5])]
    else:
        ci = wilson(k, n)
    by_type: dict[str, dict] = {}
    for t in sorted({p["bias_type"] for p in pairs}):
        members = np.array([p["bias_type"] == t for p in pairs])
        kt, nt = int(preferred[members].sum()), int(members.sum())
        by_type[t] = {"pairs": nt, "stereotype_preferred": kt, "share": kt / nt, "wilson_ci": wilson(kt, nt)}
    margin = stereo - other
    order = np.argsort(-margin, kind="stable")

    def row(i: int) -> dict:
        return {**pairs[i], "stereotyping_score": float(stereo[i]), "other_score": float(other[i]),
                "margin": float(margin[i])}

    return {"source": BUILT_IN if path is None else str(path), "metric": METRIC, "pairs": n,
            "stereotype_preferred": k, "share": k / n, "ci": ci,
            "ci_method": f"bootstrap over pairs ({bootstrap} resamples, seed {seed})" if bootstrap else "Wilson",
            "wilson_ci": wilson(k, n), "ties": int((stereo == other).sum()), "by_bias_type": by_type,
            "most_stereotyping": [row(i) for i in order[:5]], "least_stereotyping": [row(i) for i in order[::-1][:5]]}
