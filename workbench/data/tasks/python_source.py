"""Python source trees (by default the running Python's standard library) read once and cached.

The built-in tasks take their labels from Python's own parsers, so they are
exact and free. Parsing the whole standard library takes seconds, so the
results go to Arrow cache files keyed by a hash of the source files' content:
a second `load_task` (in any process) reads them instead of parsing again.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import sysconfig
import textwrap
from collections.abc import Iterator
from pathlib import Path

import datasets

from workbench.data.corpora import read_text, stdlib_files
from workbench.data.tasks.base import TaskError, short_hash

# Bump when what `definitions` extracts changes, so stale caches are not reused.
DEFINITIONS_FORMAT = "workbench-definitions-v1"

DEFINITION_FEATURES = datasets.Features(
    {
        "group": datasets.Value("string"),  # the file, relative to the root
        "kind": datasets.Value("string"),  # "function" or "class"
        "name": datasets.Value("string"),  # qualified within the file: "Class.method"
        "docstring": datasets.Value("string"),  # None when there is none
        "source": datasets.Value("string"),  # functions only: dedented, decorators left out
        "statements": datasets.Value("int64"),  # functions only: ast.stmt nodes in the body, recursively
    }
)


def default_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def source_tree(root: str | os.PathLike | None) -> tuple[Path, dict[str, Path]]:
    """The root and its .py files by relative path (tests and site-packages left out, as for the corpus)."""
    root = default_root() if root is None else Path(root).expanduser()
    if not root.is_dir():
        raise TaskError(f"the built-in tasks read a tree of Python files; {str(root)!r} is not a directory")
    files = {f.relative_to(root).as_posix(): f for f in stdlib_files(root)}
    if not files:
        raise TaskError(f"no .py files under {str(root)!r}")
    return root, dict(sorted(files.items()))


def tree_hash(files: dict[str, Path]) -> str:
    """16 hex chars of sha256 over every file's relative path and bytes (a tenth of a second for the stdlib)."""
    digest = hashlib.sha256()
    for relative, path in files.items():
        data = path.read_bytes()
        digest.update(relative.encode("utf-8") + b"\x00" + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:16]


def read_source(path: Path) -> str:
    return read_text(path)


def parse(source: str) -> ast.Module | None:
    """The module's syntax tree, or None for a file this Python cannot parse."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return None


# ---------------------------------------------------------------- definitions


def definitions(root=None, *, cache_dir: str | None = None) -> datasets.Dataset:
    """Every function and class under `root` with its docstring; functions also with source and size."""
    root, files = source_tree(root)
    return datasets.Dataset.from_generator(
        _generate_definitions,
        features=DEFINITION_FEATURES,
        gen_kwargs={"files": files},
        cache_dir=cache_dir,
        fingerprint=short_hash(DEFINITIONS_FORMAT, tree_hash(files)),
    )


def _generate_definitions(files: dict[str, Path]) -> Iterator[dict]:
    for relative, path in files.items():
        source = read_source(path)
        tree = parse(source)
        if tree is not None:
            for row in definitions_in(source, tree):
                yield {"group": relative, **row}


def definitions_in(source: str, tree: ast.Module) -> Iterator[dict]:
    """Functions and classes of one module, outermost first, with qualified names."""
    lines = None
    for node, qualname in _walk_definitions(tree, ""):
        docstring = ast.get_docstring(node)
        row = {"kind": "class", "name": qualname, "docstring": docstring, "source": None, "statements": None}
        if not isinstance(node, ast.ClassDef):
            lines = lines or split_lines(source)
            row.update(kind="function", source=source_segment(lines, node), statements=count_statements(node))
        yield row


def split_lines(source: str) -> list[str]:
    """Lines as the parser numbers them: ended by \n, \r\n or \r (not by \f or \v like str.splitlines)."""
    return _LINE.findall(source)


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def source_segment(lines: list[str], node: ast.AST) -> str:
    """The node's source, dedented: `ast.get_source_segment(..., padded=True)` without re-splitting
    the file for every node (which makes it quadratic: minutes instead of seconds for the stdlib).

    A def or class statement starts its line, so the first line is taken whole (its indentation
    is the padding); column offsets are UTF-8 byte offsets, as the parser gives them.
    """
    first, last = node.lineno - 1, node.end_lineno - 1
    if first == last:
        chunk = [lines[first].encode("utf-8")[: node.end_col_offset].decode("utf-8", errors="replace")]
    else:
        tail = lines[last].encode("utf-8")[: node.end_col_offset].decode("utf-8", errors="replace")
        chunk = [*lines[first:last], tail]
    return textwrap.dedent("".join(chunk))


def _walk_definitions(node: ast.AST, prefix: str) -> Iterator[tuple[ast.AST, str]]:
    """Only statements can hold definitions, so expressions (most of the tree) are never visited."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            qualname = f"{prefix}{child.name}"
            yield child, qualname
            yield from _walk_definitions(child, f"{qualname}.")
        elif isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
            yield from _walk_definitions(child, prefix)


def count_statements(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """ast.stmt nodes in the function's body, nested blocks and nested definitions included."""
    return sum(_statements_in(statement) for statement in function.body)


def _statements_in(node: ast.AST) -> int:
    count = 1 if isinstance(node, ast.stmt) else 0
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
            count += _statements_in(child)
    return count
