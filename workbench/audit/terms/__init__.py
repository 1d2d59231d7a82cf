"""Paired attribute terms (he/she, Emily/Lakisha, ...) and the swap that turns a text into its counterfactual.

The shipped lists and where they come from are described in this folder's README.md. A term listed in
lower case (a word) matches in any case; a term listed capitalised (a given name) matches only as
"Emily" or "EMILY", so that the word "jay" or "ebony" is never mistaken for a name.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from workbench.errors import RequestError, ResourceError

SHIPPED = ("gendered_words.csv", "given_names.csv")


class TermPair(NamedTuple):
    """Two terms that differ only in the attribute audited; `list_name` says which list it came from."""

    a: str
    b: str
    list_name: str


def load_terms(extra_csv: str | Path | None = None, *, lists: Sequence[str] | None = None) -> list[TermPair]:
    """The shipped pairs (gendered words, given names across genders and name origins), then any CSV's.

    A CSV needs columns a and b; an optional column `list` names each row's list (else the file's stem).
    `lists` keeps only the named lists (e.g. ["gendered_words"]); an unknown name fails, naming the known ones.
    """
    folder = resources.files("workbench.audit") / "terms"
    pairs: list[TermPair] = []
    for name in SHIPPED:
        with resources.as_file(folder / name) as path:
            pairs += _read(Path(path))
    if extra_csv is not None:
        path = Path(extra_csv).expanduser()
        if not path.is_file():
            raise RequestError(f"extra_csv={str(extra_csv)!r} is not a file; give a CSV with columns a,b")
        pairs += _read(path)
    if lists is not None:
        if isinstance(lists, str):
            lists = [lists]
        known = list(dict.fromkeys(p.list_name for p in pairs))
        unknown = [name for name in lists if name not in known]
        if unknown:
            raise RequestError(f"lists={unknown!r}: no such term list; the lists are: {', '.join(known)}")
        pairs = [p for p in pairs if p.list_name in set(lists)]
    return pairs


def _read(path: Path) -> list[TermPair]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            if not {"a", "b"} <= set(columns):
                raise RequestError(f"{path}: a term list needs columns a and b; it has: {', '.join(columns) or 'none'}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError) as error:
        raise ResourceError(f"cannot read the term list {path}: {error}", path=path) from None
    pairs = []
    for line, row in enumerate(rows, start=2):
        a, b = (row.get("a") or "").strip(), (row.get("b") or "").strip()
        if not a or not b or a.lower() == b.lower():
            raise RequestError(f"{path} line {line}: a term pair needs two different terms, got a={a!r}, b={b!r}")
        pairs.append(TermPair(a, b, (row.get("list") or "").strip() or path.stem))
    return pairs


class _Swapper:
    """One compiled pattern over every term; each term maps to its partner, the first listed pair winning
    (so "her" becomes "his", from his/her listed before him/her: see README.md)."""

    def __init__(self, pairs: Sequence[TermPair]):
        if not pairs:
            raise RequestError("no term pairs to swap; give pairs=load_terms() or a non-empty list of TermPair")
        self.partner: dict[str, str] = {}
        for pair in pairs:
            a, b = pair[0], pair[1]  # a plain (a, b) tuple works too
            self.partner.setdefault(a.lower(), b)
            self.partner.setdefault(b.lower(), a)
        words, names = [], []
        for pair in pairs:
            for term in pair[:2]:
                (names if term[0].isupper() else words).append(term)
        alternatives = [f"(?i:{'|'.join(map(re.escape, _longest_first(words)))})"] if words else []
        alternatives += [re.escape(form) for name in _longest_first(names) for form in (name, name.upper())]
        self.pattern = re.compile(r"\b(?:" + "|".join(alternatives) + r")\b")

    def __call__(self, text: str) -> tuple[str, int]:
        return self.pattern.subn(lambda match: _cased(self.partner[match.group(0).lower()], match.group(0)), text)


def _longest_first(terms: list[str]) -> list[str]:
    return sorted(set(terms), key=lambda t: (-len(t), t))


def _cased(replacement: str, original: str) -> str:
    """The replacement in the original's case: HE -> SHE, He -> She, he -> she."""
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


def swap_terms(text: str, pairs: Sequence[TermPair]) -> tuple[str, int]:
    """(text with every listed term, as a whole word, replaced by its partner in both directions, number of swaps)."""
    if not isinstance(text, str):
        raise RequestError(f"swap_terms takes a string, got {type(text).__name__}")
    return swapper(pairs)(text)


def swapper(pairs: Sequence[TermPair]):
    """`swap_terms` with the pattern compiled once, for many texts."""
    return _Swapper(pairs)
