"""Canary exposure (Carlini et al. 2019, "The Secret Sharer"): how far a planted secret stands out from its rivals.

Every candidate is the canary template with one possible secret. A canary's rank is its place among them by
log-perplexity (rank 1 = the most likely); exposure = log2(candidates) - log2(rank), from about 1 bit for a
secret the model never saw up to log2(candidates) for one it ranks first. Where enumerating every candidate
costs too much, the paper's estimate replaces the rank: fit a skew-normal to the log-perplexities of random
candidates and take exposure = -log2(CDF(the canary's)), the CDF standing for the share of candidates more
likely than it. The fit is by the method of moments: closed form, so deterministic and instant with no
optimiser to converge; on the tiny test models it lands as near the exact exposures as scipy's MLE does.

Log-perplexity is in bits: the sum of -log2 p over the text's tokens after the first (a whole sequence, as
the paper scores it). All candidates share the template, so ranking by it ranks by the secret's tokens.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import skew, skewnorm

from workbench.audit.scoring import token_log_probs
from workbench.data.canaries import canary_text
from workbench.errors import RequestError

# The skew-normal's skewness is below ~0.9953 in size; sample skewness beyond it is clipped to this.
MAX_SKEWNESS = 0.99
RECORD_KEYS = ("template", "digits", "alphabet", "candidates", "canaries")
MIN_SAMPLES = 100
# Candidates encoded and scored per step: bounds the memory a large enumeration holds at once.
CHUNK = 8192


def canary_exposure(model, tokenizer, canary_record: dict, *, exact_limit: int = 100_000, samples: int = 10_000,
                    seed: int = 0, batch_size: int = 128) -> dict:
    """Each canary's log-perplexity, rank (exact method only) and exposure among all candidate secrets."""
    _check(canary_record, exact_limit, samples, batch_size)
    record = canary_record
    candidates = int(record["candidates"])
    secrets = [c["secret"] for c in record["canaries"]]
    # Fail on a template too long for the model before scoring thousands of candidates.
    log_perplexities(model, tokenizer, record, [_secret(record, 0)], batch_size=batch_size)
    if candidates <= exact_limit:
        scores = log_perplexities(model, tokenizer, record, (_secret(record, i) for i in range(candidates)),
                                  batch_size=batch_size)
        rows = []
        for canary, secret in zip(record["canaries"], secrets, strict=True):
            own = scores[secret_index(record, secret)]
            rank = 1 + int((scores < own).sum())
            rows.append(_row(canary, own, rank, math.log2(candidates) - math.log2(rank)))
        return _result(record, "exact", None, rows)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, candidates, size=samples)
    sampled = log_perplexities(model, tokenizer, record, (_secret(record, int(i)) for i in drawn),
                               batch_size=batch_size)
    a, loc, scale = fit_skew_normal(sampled)
    own = log_perplexities(model, tokenizer, record, secrets, batch_size=batch_size)
    rows = []
    for canary, lp in zip(record["canaries"], own, strict=True):
        # logcdf keeps far tails finite; an estimate beyond log2(candidates) would claim a rank below 1.
        exposure = -float(skewnorm.logcdf(lp, a, loc, scale)) / math.log(2)
        rows.append(_row(canary, float(lp), None, min(max(exposure, 0.0), math.log2(candidates))))
    result = _result(record, "skew-normal estimate", samples, rows)
    result["fit"] = {"a": float(a), "loc": float(loc), "scale": float(scale)}
    return result


def log_perplexities(model, tokenizer, record: dict, secrets, *, batch_size: int = 128) -> np.ndarray:
    """Log-perplexity in bits of the canary text with each secret (an iterable, consumed in chunks)."""
    out: list[float] = []
    chunk: list[str] = []
    for secret in secrets:
        chunk.append(secret)
        if len(chunk) == CHUNK:
            out += _score(model, tokenizer, record, chunk, batch_size)
            chunk = []
    if chunk:
        out += _score(model, tokenizer, record, chunk, batch_size)
    return np.asarray(out, dtype=np.float64)


def fit_skew_normal(values: np.ndarray) -> tuple[float, float, float]:
    """Skew-normal (shape a, loc, scale) with the sample's mean, variance and skewness (method of moments)."""
    gamma = float(np.clip(skew(values), -MAX_SKEWNESS, MAX_SKEWNESS))
    g23 = abs(gamma) ** (2 / 3)
    delta = math.copysign(math.sqrt(math.pi / 2 * g23 / (g23 + ((4 - math.pi) / 2) ** (2 / 3))), gamma)
    scale = math.sqrt(float(values.var()) / (1 - 2 * delta ** 2 / math.pi))
    loc = float(values.mean()) - scale * delta * math.sqrt(2 / math.pi)
    return delta / math.sqrt(1 - delta ** 2), loc, max(scale, 1e-12)


def secret_index(record: dict, secret: str) -> int:
    """The position of `secret` in the enumeration of all candidates (secrets as numbers in the alphabet's base)."""
    alphabet = record["alphabet"]
    index = 0
    for ch in secret:
        index = index * len(alphabet) + alphabet.index(ch)
    return index


def _secret(record: dict, index: int) -> str:
    alphabet, digits = record["alphabet"], int(record["digits"])
    chars = []
    for _ in range(digits):
        index, d = divmod(index, len(alphabet))
        chars.append(alphabet[d])
    return "".join(reversed(chars))


def _score(model, tokenizer, record: dict, secrets: list[str], batch_size: int) -> list[float]:
    ids = tokenizer.encode_batch([canary_text(record, s) for s in secrets])
    rows = token_log_probs(model, ids, batch_size=batch_size)
    return [-float(r.sum()) / math.log(2) for r in rows]


def _row(canary: dict, log_perplexity: float, rank: int | None, exposure: float) -> dict:
    return {"secret": canary["secret"], "repetitions": canary.get("repetitions"),
            "log_perplexity": float(log_perplexity), "rank": rank, "exposure": float(exposure)}


def _result(record: dict, method: str, samples: int | None, rows: list[dict]) -> dict:
    return {"template": record["template"], "candidates": int(record["candidates"]), "method": method,
            "samples": samples, "log_perplexity_unit": "bits", "canaries": rows}


def _check(record, exact_limit, samples, batch_size) -> None:
    for name, value, low in (("exact_limit", exact_limit, 0), ("samples", samples, MIN_SAMPLES),
                             ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise RequestError(f"{name} must be an int >= {low}, got {value!r}")
    if not isinstance(record, dict):
        raise RequestError(f"canary_record must be a dict (a canary record), got {type(record).__name__}")
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise RequestError(f"the canary record lacks key(s) {missing}; it needs {list(RECORD_KEYS)}")
    alphabet, digits, candidates = record["alphabet"], record["digits"], record["candidates"]
    if not isinstance(alphabet, str) or len(set(alphabet)) != len(alphabet) or len(alphabet) < 2:
        raise RequestError(f"the canary record's alphabet must be a string of >= 2 distinct characters, "
                           f"got {alphabet!r}")
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise RequestError(f"the canary record's digits must be a positive int, got {digits!r}")
    if candidates != len(alphabet) ** digits:
        raise RequestError(f"the canary record says {candidates!r} candidates, but {digits} characters from an "
                           f"alphabet of {len(alphabet)} make {len(alphabet) ** digits}")
    if "{secret}" not in record["template"]:
        raise RequestError(f"the canary template {record['template']!r} has no {{secret}} field")
    if not record["canaries"]:
        raise RequestError("the canary record holds no canaries")
    for canary in record["canaries"]:
        secret = canary.get("secret") if isinstance(canary, dict) else None
        if not isinstance(secret, str) or len(secret) != digits or set(secret) - set(alphabet):
            raise RequestError(f"canary secret {secret!r} is not {digits} characters from the alphabet "
                               f"{alphabet!r}")
