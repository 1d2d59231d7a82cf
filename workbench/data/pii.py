"""Private data in a corpus: find, count and mask e-mail addresses, credentials, IPs, phones and secrets.

Why hand-written patterns and not a library: presidio needs spaCy models from a hub; detect-secrets is
line- and entropy-based (it flags every long hex digest in source code) and scans files, not strings;
commonregex-style packages match any "a@b.c" and any dotted quad. A code corpus is full of hard negatives
(`x@self.weight`, `@property`, version strings 3.11.7.1, OIDs 2.5.4.3, slices `a[1::2]`, `token: str`),
so each kind below is a precise pattern plus a check, and the choices are tested on a labelled fixture
(tests/data/pii_fixture.jsonl):

- email: local@domain whose top-level domain is a known generic one or two letters (a country code);
  the reserved documentation domains (example.com/.org/.net, .example, .invalid, .test, .localhost)
  are not anyone's address and are skipped.
- url_credentials: scheme://user:password@host; the hit is scheme, credentials and host.
- ip_address: IPv4 with octets 0-255 and no leading zeros, not inside a longer dotted run; a quad that
  starts with one digit and has no octet over 99 (3.11.7.1, 2.5.4.3) reads as a version or an OID and
  is skipped (so is 8.8.8.8, the price of precision). IPv6 only in full (eight groups) or compressed
  form with a digit and a group of three or more hex digits, checked by `ipaddress` (so not `::1`).
- phone: +country-code numbers with 10-15 digits (in separated groups or not), and North American numbers
  written with separators, (NXX) NXX-XXXX or NXX-NXX-XXXX; bare runs of digits are code, not phones.
- secret_key: known key formats (AWS AKIA..., GitHub ghp_/github_pat_, OpenAI sk-, Slack xox?-,
  Stripe sk_live_, Hugging Face hf_, Google AIza..., JSON web tokens) and PEM private-key blocks.
- secret: the value assigned to a name like password/passwd/secret/api_key/token/private_key, in
  `name = "value"`, `name: value` or `"name": "value"` form; empty values, placeholders (changeme,
  xxx, <...>, ${...}, %s, your_password, ENV_NAME, ...) and code (`token = self._token`, `password: str`,
  `token: 3291`) are not, nor a tokenizer's vocabulary (`cls_token="[CLS]"`): a `*_token` name counts
  only after a word such as auth, access, api, bearer, session, github, hf (TOKEN_QUALIFIERS).

Hits never overlap: where two kinds match the same text, the earlier, then the longer, then the kind
listed first in KINDS wins. The records made here count and hash values; they never hold them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import Counter
from typing import NamedTuple

import datasets

from workbench.data.corpora import WRITER_BATCH_ROWS, auto_num_proc
from workbench.errors import RequestError

KINDS = ("email", "url_credentials", "ip_address", "phone", "secret_key", "secret")
PLACEHOLDERS = {kind: f"<{kind.upper()}>" for kind in KINDS}
# Bump when what find_pii returns or mask_pii writes changes, so cached scans and masks are redone.
SCAN_VERSION = "pii-scan-v1"
MASK_VERSION = "pii-mask-v1"
MAX_SOURCES = 1000  # per-source counts kept in a scan record


class PiiHit(NamedTuple):
    kind: str
    start: int
    end: int
    value: str


# ---------------------------------------------------------------- e-mail

GENERIC_TLDS = frozenset(
    "com org net edu gov mil int info biz name pro aero coop museum mobi asia tel travel jobs xyz online site "
    "tech store cloud email page blog club digital space website systems solutions network academy center".split()
)
RESERVED_DOMAINS = ("example.com", "example.org", "example.net")
RESERVED_TLDS = frozenset({"example", "invalid", "test", "localhost", "local"})

EMAIL = re.compile(
    r"(?<![\w.%+\-/])"
    r"(?P<local>[A-Za-z0-9](?:[A-Za-z0-9._%+\-]{0,62}[A-Za-z0-9_%+\-])?)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+(?P<tld>[A-Za-z]{2,24}))"
    r"(?![\w\-(]|\.[A-Za-z0-9])"
)
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")


def _start_before(text: str, anchor: int, chars: frozenset, limit: int, first) -> int:
    """Where a match anchored at `anchor` may start: back over up to `limit` of `chars`, then on to a `first` char."""
    start = anchor
    while start > 0 and anchor - start < limit and text[start - 1] in chars:
        start -= 1
    while start < anchor and not first(text[start]):
        start += 1
    return start


def _emails(text: str):
    for at in _finds(text, "@"):
        start = _start_before(text, at, _LOCAL_CHARS, 64, str.isalnum)
        match = EMAIL.match(text, start) if start < at else None
        if match and _email_ok(match):
            yield PiiHit("email", match.start(), match.end(), match[0])


def _email_ok(match: re.Match) -> bool:
    local, domain, tld = match["local"], match["domain"].lower(), match["tld"].lower()
    if ".." in local or tld in RESERVED_TLDS or not (len(tld) == 2 or tld in GENERIC_TLDS):
        return False
    return not any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS)


# ---------------------------------------------------------------- URLs with credentials

URL_CREDENTIALS = re.compile(
    r"(?<![A-Za-z0-9+.\-])(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]{1,15})://"
    r"(?P<user>[^\s:/@'\"<>]{1,64}):(?P<password>[^\s/@'\"<>]{1,128})@"
    r"(?P<host>[^\W_](?:[\w.\-]{0,253})(?::\d{1,5})?)"
)
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")


def _credential_urls(text: str):
    for colon in _finds(text, "://"):
        start = _start_before(text, colon, _SCHEME_CHARS, 16, str.isalpha)
        match = URL_CREDENTIALS.match(text, start)
        if match and not _is_placeholder(match["password"]) and not _is_placeholder(match["user"], strict=True):
            yield PiiHit("url_credentials", match.start(), match.end(), match[0])


# ---------------------------------------------------------------- IP addresses

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?![\w]|\.\d)")
_IPV4_CANDIDATE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")  # no lookbehind: re finds it fast
_IPV6_FULL = re.compile(r"[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){7}")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
VERSION_CONTEXT = re.compile(r"(?i)(?:\bv|version\s*|release\s*|python\s*|[=<>~!]=\s*)$")


def _ip_addresses(text: str):
    for candidate in _IPV4_CANDIDATE.finditer(text):
        match = IPV4.match(text, candidate.start())
        if match and _ipv4_ok(match, text):
            yield PiiHit("ip_address", match.start(), match.end(), match[0])
    seen = set()
    starts = [m.start() for m in _IPV6_FULL.finditer(text)] if text.count(":") >= 7 else []
    for position in starts + list(_finds(text, "::")):
        start = end = position
        while start > 0 and text[start - 1] in _IPV6_CHARS:
            start -= 1
        while end < len(text) and text[end] in _IPV6_CHARS:
            end += 1
        while end > start and text[end - 1] in ".:" and not text[start:end].endswith("::"):
            end -= 1  # a sentence's full stop or a mapping's colon
        if start in seen:
            continue
        seen.add(start)
        value = text[start:end]
        if _ipv6_ok(value) and not _word_char(text, start - 1) and not _word_char(text, end):
            yield PiiHit("ip_address", start, end, value)


def _ipv4_ok(match: re.Match, text: str) -> bool:
    octets = match[0].split(".")
    if len(octets[0]) == 1 and max(int(o) for o in octets) < 100:
        return False  # 3.11.7.1, 2.5.4.3: a version or an OID
    return not VERSION_CONTEXT.search(text[max(0, match.start() - 12):match.start()])


def _ipv6_ok(value: str) -> bool:
    if value.startswith(".") or value.count(":") < 2 or not any(c.isdigit() for c in value):
        return False  # dead::beef, Foo::Bar
    groups = [g for g in value.replace(".", ":").split(":") if g]
    if "::" in value and (len(groups) < 2 or not any(len(g) >= 3 for g in groups)):
        return False  # a[1::2], ::1
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def _word_char(text: str, index: int) -> bool:
    return 0 <= index < len(text) and (text[index].isalnum() or text[index] == "_")


# ---------------------------------------------------------------- phone numbers

PHONE_INTERNATIONAL = re.compile(
    r"(?<![\w+.\-/])\+\d{1,3}(?:(?:[ .\-]?\(\d{1,4}\))?(?:[ .\-]\d{1,8}){2,5}|\d{6,13})(?![\w\-]|\.\d)"
)  # +44 20 7946 0958, +1 (555) 234-5678, +442079460958
PHONE_NORTH_AMERICAN = re.compile(
    r"(?<![\w+.\-/])(?:\([2-9]\d{2}\)[ .\-]?|[2-9]\d{2}([.\-]))[2-9]\d{2}(?(1)\1|[ .\-])\d{4}(?![\w\-]|\.\d)"
)  # (555) 234-5678, 555-234-5678, 555.234.5678
_NORTH_AMERICAN_CANDIDATE = re.compile(r"[2-9]\d\d\)?[ .\-]?[2-9]\d\d[ .\-]\d{4}")


def _phones(text: str):
    for plus in _finds(text, "+"):
        match = PHONE_INTERNATIONAL.match(text, plus)
        if match and 10 <= sum(c.isdigit() for c in match[0]) <= 15:
            yield PiiHit("phone", match.start(), match.end(), match[0])
    for candidate in _NORTH_AMERICAN_CANDIDATE.finditer(text):
        start = candidate.start() - (candidate.start() > 0 and text[candidate.start() - 1] == "(")
        match = PHONE_NORTH_AMERICAN.match(text, start)
        if match:
            yield PiiHit("phone", match.start(), match.end(), match[0])


# ---------------------------------------------------------------- secrets

PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]{16,8192}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"
)
# (literal each key begins with, how far before it the key starts, the key's pattern)
KEY_FORMATS = (
    ("-----BEGIN ", 0, PEM_PRIVATE_KEY),
    *((prefix, 0, re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"))
      for prefix in ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA")),  # AWS
    *((f"gh{c}_", 0, re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b")) for c in "pousr"),  # GitHub
    ("github_pat_", 0, re.compile(r"\bgithub_pat_[A-Za-z0-9_]{60,255}\b")),
    ("sk-", 0, re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,200}")),  # OpenAI
    ("xox", 0, re.compile(r"\bxox[abposr]-[0-9A-Za-z\-]{10,200}")),  # Slack
    ("k_live_", 1, re.compile(r"\b[spr]k_(?:live|test)_[0-9A-Za-z]{16,200}\b")),  # Stripe
    ("k_test_", 1, re.compile(r"\b[spr]k_(?:live|test)_[0-9A-Za-z]{16,200}\b")),
    ("hf_", 0, re.compile(r"\bhf_[A-Za-z0-9]{30,40}\b")),  # Hugging Face
    ("AIza", 0, re.compile(r"\bAIza[0-9A-Za-z_\-]{35}(?![\w\-])")),  # Google
    ("eyJ", 0, re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}")),  # JWT
)


def _secret_keys(text: str):
    for literal, back, pattern in KEY_FORMATS:
        for position in _finds(text, literal):
            match = pattern.match(text, max(0, position - back))
            if match and _key_ok(match[0]):
                yield PiiHit("secret_key", match.start(), match.end(), match[0])


def _key_ok(value: str) -> bool:
    if value.startswith("-----"):
        return True
    body = value.split("_", 1)[-1] if "_" in value[:12] else value[3:]
    return any(c.isdigit() for c in body) and any(c.isalpha() for c in body)


SECRET_NAME = re.compile(
    r"(?i)(?:[A-Za-z0-9]+[_\-.])*"
    r"(?:password|passwd|passphrase|pwd|secret|secret[_\-]?key|api[_\-]?key|apikey|access[_\-]?key|"
    r"auth[_\-]?token|access[_\-]?token|refresh[_\-]?token|token|private[_\-]?key|client[_\-]?secret)"
)
# A bare "token" is a credential only alone (token, self.token) or after one of these words: a tokenizer's
# cls_token, pad_token and image_break_token are vocabulary, not secrets.
TOKEN_QUALIFIERS = frozenset(
    "auth access refresh api bearer session secret oauth bot github gh hf slack csrf private personal id "
    "client app service deploy npm pypi jwt user admin".split()
)


def _secret_name(name: str) -> bool:
    if not SECRET_NAME.fullmatch(name):
        return False
    attribute = name.lower().rsplit(".", 1)[-1]
    words = re.split(r"[_\-]", attribute)
    if words[-1] != "token" or len(words) == 1:
        return True
    return words[-2] in TOKEN_QUALIFIERS
SECRET_STEMS = ("pass", "pwd", "secret", "token", "key")
SECRET_VALUE = re.compile(
    r"[\"']?"  # the closing quote of a quoted key: "password": ...
    r"(?:[ \t]*:[ \t]*[A-Za-z_][\w.\[\], |]*?)?"  # an annotation: password: str = "..."
    r"[ \t]*(?:(?<![=!<>])=(?!=)|:)[ \t]*"
    r"(?:(?P<quote>[\"'])(?P<quoted>[^\"'\n\\]{0,200})(?P=quote)|(?P<bare>[^\s\"',;#()\[\]{}*<>]{1,200}))"
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def _assigned_secrets(text: str):
    lowered = text.lower()
    if len(lowered) != len(text):  # a few characters lower to two; offsets must stay the same
        lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    seen = set()
    for stem in SECRET_STEMS:
        for position in _finds(lowered, stem):
            start, end = position, position + len(stem)
            while start > 0 and text[start - 1] in _NAME_CHARS:
                start -= 1
            while end < len(text) and text[end] in _NAME_CHARS:
                end += 1
            if start in seen:
                continue
            seen.add(start)
            if not _secret_name(text[start:end]):
                continue
            match = SECRET_VALUE.match(text, end)
            if match and _inside_string(text[start - 1:start], match):
                continue
            span = _assignment_value(match) if match else None
            if span:
                yield PiiHit("secret", span[0], span[1], text[span[0]:span[1]])


def _inside_string(before: str, match: re.Match) -> bool:
    """Whether the name is the end of a string, not a key: ("token:", tok) or ("Password: ").

    A key's quotes pair up ("password": "..."); a quote after the name with none before it, or a quoted
    value after a name that opened a string without closing it, means the quotes belong to other strings."""
    closing = match[0][:1] if match[0][:1] in "\"'" else ""
    if closing:
        return before != closing
    return before in ("\"", "'") and match["quote"] is not None


PLACEHOLDER_WORDS = frozenset(
    "password passwd pass pwd secret token key apikey api_key changeme change_me none null nil true false "
    "example sample test dummy placeholder redacted hidden masked default foo bar baz qux abc abcd 1234 12345 "
    "123456 12345678 password1 admin root user guest anonymous xxx todo fixme required optional empty".split()
)
_PLACEHOLDER = re.compile(
    r"(?i)^(?:(.)\1{2,}|[*.x\u2022]+|<.*>|\[.*\]|\$\{?.*\}?|\{.*\}|%.*[sd]|\$\w+|#[0-9a-f]{3,8}|"
    r"your[_\-\s].*|my[_\-\s].*|.*`.*|[^A-Za-z0-9]*|(?-i:[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)|(?:/|\./|~/).*|"
    r".*(?:\*\*\*|\u2026).*|"
    r".*(?:example|placeholder|dummy|redacted|changeme|xxxx|\.\.\.).*)$"
)
_CODE_VALUE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")


def _is_placeholder(value: str, strict: bool = False) -> bool:
    value = value.strip()
    if not value:
        return True
    if strict:  # a URL's user name: only template markers
        return bool(re.match(r"^(?:<.*>|\$\{?.*\}?|\{.*\}|%.*s)$", value))
    return len(value) < 4 or value.lower() in PLACEHOLDER_WORDS or bool(_PLACEHOLDER.match(value))


def _assignment_value(match: re.Match) -> tuple[int, int] | None:
    """The span of the assigned value when it looks like a real secret, else None."""
    if match["quoted"] is not None:
        value, group = match["quoted"], "quoted"
        if len(value.split()) > 2:
            return None  # prose: "token: the next word"
    else:
        value, group = match["bare"], "bare"
        if _CODE_VALUE.match(value) and not (
            any(c.isdigit() for c in value) and any(c.isalpha() for c in value) and "_" not in value
            and "." not in value and len(value) >= 6
        ):
            return None  # token = self._token, password: str, password=password
        if value.endswith((":", "=")) or value.startswith(("!", "|", "&", ">")):  # YAML tags, blocks, anchors
            return None
        if value.isdigit() or match.string[match.end(group):match.end(group) + 1] == "(":
            return None  # 'token': 3291 is a token id; Attention(config) is a call
        if not any(c.isdigit() or not (c.isalnum() or c == "-") for c in value):
            return None  # prose after a colon: "token: re-exchanging"
    if _is_placeholder(value):
        return None
    return match.start(group), match.end(group)


# ---------------------------------------------------------------- finding and masking


def _finds(text: str, literal: str):
    """Every index of `literal` in `text`: str.find runs in C, far faster than a regex that has to try
    its lookbehind at every character, so each kind anchors on a literal or a fast candidate pattern."""
    index = text.find(literal)
    while index >= 0:
        yield index
        index = text.find(literal, index + 1)


def find_pii(text: str) -> list[PiiHit]:
    """Every hit in `text`, sorted by position, none overlapping another."""
    found = [
        *_secret_keys(text), *_credential_urls(text), *_emails(text), *_assigned_secrets(text),
        *_ip_addresses(text), *_phones(text),
    ]
    return _without_overlaps(found)


def _without_overlaps(hits: list[PiiHit]) -> list[PiiHit]:
    rank = {kind: i for i, kind in enumerate(KINDS)}
    kept: list[PiiHit] = []
    for hit in sorted(hits, key=lambda h: (h.start, -(h.end - h.start), rank[h.kind])):
        if not kept or hit.start >= kept[-1].end:
            kept.append(hit)
    return kept


def mask_pii(text: str) -> str:
    """`text` with each hit replaced by its kind's placeholder ("<EMAIL>", ...)."""
    pieces, position = [], 0
    for hit in find_pii(text):
        pieces += [text[position:hit.start], PLACEHOLDERS[hit.kind]]
        position = hit.end
    pieces.append(text[position:])
    return "".join(pieces)


# ---------------------------------------------------------------- corpora

_SCAN_FEATURES = datasets.Features({
    "source": datasets.Value("string"),
    **{f"n_{kind}": datasets.Value("int32") for kind in KINDS},
    **{f"hashes_{kind}": datasets.List(datasets.Value("string")) for kind in KINDS},
})


def value_hash(kind: str, value: str) -> str:
    """A stand-in for a value in scan output: equal values, equal hashes; the value is not kept."""
    return hashlib.sha256(f"{kind}\x00{value}".encode("utf-8", errors="surrogatepass")).hexdigest()[:16]


def _scan_batch(batch: dict) -> dict:
    out: dict = {"source": batch["source"], **{f"n_{k}": [] for k in KINDS}, **{f"hashes_{k}": [] for k in KINDS}}
    for text in batch["text"]:
        hits = find_pii(text)
        for kind in KINDS:
            mine = [h for h in hits if h.kind == kind]
            out[f"n_{kind}"].append(len(mine))
            out[f"hashes_{kind}"].append(sorted({value_hash(kind, h.value) for h in mine}))
    return out


def _mask_batch(batch: dict) -> dict:
    return {"text": [mask_pii(t) for t in batch["text"]], "source": batch["source"]}


def scan_corpus(corpus: datasets.DatasetDict, *, num_proc: int | None = None) -> dict:
    """Counts of each kind per split and per source file, and distinct values, for the data record.

    Per-document counts come from one `Dataset.map`, cached by the split's fingerprint, so a second
    scan of the same corpus reads them back. Values appear only as counts: the record is safe to publish.
    """
    _check_corpus(corpus)
    splits, sources, distinct_by_split = {}, {}, {}
    for split in corpus:
        dataset = corpus[split]
        scanned = dataset.map(
            _scan_batch,
            batched=True,
            remove_columns=dataset.column_names,
            features=_SCAN_FEATURES,
            num_proc=num_proc or auto_num_proc(dataset),
            batch_size=WRITER_BATCH_ROWS,
            writer_batch_size=WRITER_BATCH_ROWS,
            new_fingerprint=_hash(dataset._fingerprint, SCAN_VERSION),
            desc=f"scanning {split} for private data",
        )
        columns = scanned.to_dict()
        counts = {kind: int(sum(columns[f"n_{kind}"])) for kind in KINDS}
        values = {kind: {h for row in columns[f"hashes_{kind}"] for h in row} for kind in KINDS}
        distinct_by_split[split] = values
        with_hits = 0
        for i, source in enumerate(columns["source"]):
            row = {kind: columns[f"n_{kind}"][i] for kind in KINDS if columns[f"n_{kind}"][i]}
            if row:
                with_hits += 1
                merged = sources.setdefault(source, {})
                for kind, n in row.items():
                    merged[kind] = merged.get(kind, 0) + int(n)
        splits[split] = {
            "documents": len(dataset),
            "documents_with_hits": with_hits,
            "counts": counts,
            "distinct": {kind: len(values[kind]) for kind in KINDS},
        }
    every = {kind: set().union(*(v[kind] for v in distinct_by_split.values())) for kind in KINDS}
    in_several = {kind: sum(n > 1 for n in Counter(h for v in distinct_by_split.values() for h in v[kind]).values())
                  for kind in KINDS}
    return {
        "version": SCAN_VERSION,
        "kinds": list(KINDS),
        "splits": splits,
        "counts": {kind: sum(s["counts"][kind] for s in splits.values()) for kind in KINDS},
        "distinct": {kind: len(every[kind]) for kind in KINDS},
        "distinct_in_several_splits": in_several,
        "sources_with_hits": len(sources),
        "sources": _top_sources(sources),
    }


def _top_sources(sources: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The MAX_SOURCES sources with the most hits, by name: an hf corpus names every row a source."""
    top = sorted(sources, key=lambda s: (-sum(sources[s].values()), s))[:MAX_SOURCES]
    return {source: dict(sorted(sources[source].items())) for source in sorted(top)}


def mask_corpus(corpus: datasets.DatasetDict, *, num_proc: int | None = None) -> datasets.DatasetDict:
    """Every split with `mask_pii` applied to its text (one cached `Dataset.map` per split)."""
    _check_corpus(corpus)
    masked = {}
    for split in corpus:
        dataset = corpus[split]
        masked[split] = dataset.map(
            _mask_batch,
            batched=True,
            features=dataset.features,
            num_proc=num_proc or auto_num_proc(dataset),
            batch_size=WRITER_BATCH_ROWS,
            writer_batch_size=WRITER_BATCH_ROWS,
            new_fingerprint=_hash(dataset._fingerprint, MASK_VERSION),
            desc=f"masking private data in {split}",
        )
    return datasets.DatasetDict(masked)


def _check_corpus(corpus) -> None:
    if not isinstance(corpus, datasets.DatasetDict):
        raise RequestError(f"expected a datasets.DatasetDict corpus, got {type(corpus).__name__}")
    for split in corpus:
        missing = {"text", "source"} - set(corpus[split].column_names)
        if missing:
            raise RequestError(f"the {split} split lacks column(s) {', '.join(sorted(missing))}; a corpus has "
                               f"'text' and 'source' (it has: {', '.join(corpus[split].column_names)})")


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:16]
