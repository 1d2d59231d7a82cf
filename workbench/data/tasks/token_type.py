"""token-type: label every character of a line of Python with its token's category.

Whole files go through `tokenize` (a line inside a triple-quoted string cannot be
tokenized alone), then each sampled line takes the categories of the tokens that
cover it. Characters no token covers and whitespace are -100 (unlabelled), so a
model is scored only on the characters that carry a category.
"""

from __future__ import annotations

import io
import keyword
import random
import tokenize
from collections.abc import Iterator
from pathlib import Path

import datasets

from workbench.data.tasks.base import FEATURES, IGNORE, short_hash
from workbench.data.tasks.python_source import read_source, source_tree, tree_hash

LABEL_NAMES = ["name", "keyword", "operator", "string", "number", "comment"]
MAX_LINE_CHARS = 120
DEFAULT_MAX_EXAMPLES = 20_000
SAMPLE_SEED = 0  # a constant: the lines (and so the test split) do not move with the training seed

# Bump when the labels or the line sample change for the same files.
TOKEN_TYPE_FORMAT = "workbench-token-type-v1"

_NAME, _KEYWORD, _OPERATOR, _STRING, _NUMBER, _COMMENT = range(len(LABEL_NAMES))
_CATEGORY = {tokenize.OP: _OPERATOR, tokenize.STRING: _STRING, tokenize.NUMBER: _NUMBER, tokenize.COMMENT: _COMMENT}
# Python 3.12 splits f-strings into parts (and tokenizes the expressions inside);
# 3.11 gives one STRING token. Everything from FSTRING_START to FSTRING_END is "string" on both.
_FSTRING_START = getattr(tokenize, "FSTRING_START", None)
_FSTRING_END = getattr(tokenize, "FSTRING_END", None)


def build(
    root=None, *, max_examples: int | None = DEFAULT_MAX_EXAMPLES, cache_dir: str | None = None
) -> datasets.Dataset:
    """Up to `max_examples` lines (a seeded sample over all files; None: every line) with char_labels."""
    root, files = source_tree(root)
    return datasets.Dataset.from_generator(
        _generate,
        features=FEATURES["token_classification"],
        gen_kwargs={"files": files, "max_examples": max_examples},
        cache_dir=cache_dir,
        fingerprint=short_hash(TOKEN_TYPE_FORMAT, tree_hash(files), str(max_examples)),
    )


def _generate(files: dict[str, Path], max_examples: int | None) -> Iterator[dict]:
    sources = {relative: read_source(path) for relative, path in files.items()}
    candidates = [(relative, row) for relative, source in sources.items() for row in candidate_rows(source)]
    if max_examples is not None and len(candidates) > max_examples:
        chosen = random.Random(SAMPLE_SEED).sample(range(len(candidates)), max_examples)
        candidates = [candidates[i] for i in sorted(chosen)]
    by_file: dict[str, list[int]] = {}
    for relative, row in candidates:
        by_file.setdefault(relative, []).append(row)
    for relative, rows in by_file.items():
        labelled = line_labels(sources[relative], rows)
        for row in rows:
            if row in labelled:
                text, labels = labelled[row]
                yield {"text": text, "char_labels": labels, "group": relative}


def candidate_rows(source: str) -> list[int]:
    """1-based numbers of the lines worth labelling: not blank, at most MAX_LINE_CHARS characters."""
    return [
        number
        for number, line in enumerate(io.StringIO(source).readlines(), start=1)
        if line.strip() and len(line.rstrip("\r\n")) <= MAX_LINE_CHARS
    ]


def line_labels(source: str, rows: list[int] | None = None) -> dict[int, tuple[str, list[int]]]:
    """{line number: (line without its newline, one label per character)} for `rows` (default all).

    Returns {} for a file `tokenize` rejects. Lines whose characters are all
    unlabelled (a lone backslash continuation) are left out.
    """
    lines = io.StringIO(source).readlines()  # the same line breaks tokenize uses
    wanted = set(range(1, len(lines) + 1) if rows is None else rows)
    texts = {row: lines[row - 1].rstrip("\r\n") for row in wanted}
    labels = {row: [IGNORE] * len(text) for row, text in texts.items()}
    try:
        for start, end, category in _token_spans(source):
            for row in range(start[0], end[0] + 1):
                if row in labels:
                    first = start[1] if row == start[0] else 0
                    last = end[1] if row == end[0] else len(texts[row])
                    labels[row][first:last] = [category] * (last - first)
    except (tokenize.TokenError, SyntaxError):  # IndentationError is a SyntaxError
        return {}
    result = {}
    for row in sorted(wanted):
        text, row_labels = texts[row], labels[row]
        row_labels = [IGNORE if char.isspace() else label for char, label in zip(text, row_labels, strict=True)]
        if any(label != IGNORE for label in row_labels):
            result[row] = (text, row_labels)
    return result


def _token_spans(source: str) -> Iterator[tuple[tuple[int, int], tuple[int, int], int]]:
    """(start, end, category) of each labelled token; positions are (1-based row, character column)."""
    fstring_depth, fstring_start = 0, None
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if _FSTRING_START is not None and token.type == _FSTRING_START:
            if fstring_depth == 0:
                fstring_start = token.start
            fstring_depth += 1
        elif _FSTRING_END is not None and token.type == _FSTRING_END:
            fstring_depth -= 1
            if fstring_depth == 0:
                yield fstring_start, token.end, _STRING
        elif fstring_depth:
            continue
        elif token.type == tokenize.NAME:
            yield token.start, token.end, _KEYWORD if keyword.iskeyword(token.string) else _NAME
        elif token.type in _CATEGORY:
            yield token.start, token.end, _CATEGORY[token.type]
