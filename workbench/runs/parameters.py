"""Check a spec's parameters against a notebook's `parameters` cell, before any kernel starts.

papermill injects whatever it is given and only warns about names the notebook
never reads, so a misspelt `max_step: 10` would silently run the default. Here
every name and type is checked from the notebook file alone (no Jupyter), and
all problems are reported at once together with the parameters the notebook
does accept.

Types come from the cell itself: an annotation (`rate: float = 0.5`) or type
comment if there is one, else the type of the literal default (`rate = 0.5`).
A default that is not a literal (`device = pick_device()`) accepts any value.
"""

from __future__ import annotations

import ast
import difflib
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from workbench.config import ConfigError

RESERVED = "output_dir"  # always set by the runner to the run folder
PARAMETERS_TAG = "parameters"

_NO_LITERAL = object()  # the default is an expression, not a literal
_NONE_NAMES = ("None", "NoneType")
_TYPES = {
    "bool": bool, "int": int, "float": float, "str": str,
    "list": list, "List": list, "dict": dict, "Dict": dict, "tuple": tuple, "Tuple": tuple,
}  # fmt: skip


class ParameterError(ConfigError):
    """Spec parameters do not fit the notebook's parameters cell."""


@dataclass(frozen=True)
class NotebookParameter:
    """One assignment in a notebook's `parameters` cell."""

    name: str
    inferred_type_name: str | None  # annotation, else type of the literal default, else None (unknown)
    default: str  # source text of the default, as written in the cell
    help: str

    @property
    def value(self) -> Any:
        """The default as a Python value, or `_NO_LITERAL` when it is an expression."""
        return _literal(self.default)

    def problem_with(self, value: Any) -> str | None:
        """Why `value` cannot be passed for this parameter, or None if it can."""
        if not _is_plain(value):
            return (
                f"{self.name!r}: {value!r} ({type(value).__name__}) cannot be passed to a notebook; "
                "use null, true/false, numbers, text, lists or mappings (quote dates)"
            )
        if value is None:
            if self._allows_none():
                return None
        else:
            accepted = _accepted_types(self.inferred_type_name)
            if accepted is None or _fits(value, accepted):
                return None
        expected = f"{self.inferred_type_name} (default {self.default})"
        return f"{self.name!r} expects {expected}, got {value!r} ({_yaml_type(value)})"

    def coerce(self, value: Any) -> Any:
        """Widen an int to float where the notebook expects a float (as config.coerce does)."""
        accepted = _accepted_types(self.inferred_type_name) or set()
        if type(value) is int and float in accepted and int not in accepted:
            return float(value)
        return value

    def describe(self) -> str:
        line = f"{self.name}: {self.inferred_type_name or 'any'} = {self.default}"
        if self.name == RESERVED:
            line += "  (reserved: the runner sets it to the run folder)"
        elif self.help:
            line += f"  # {self.help}"
        return line

    def _allows_none(self) -> bool:
        if self.value is None or self.inferred_type_name is None:
            return True
        return any(part in _NONE_NAMES for part in _union_members(self.inferred_type_name))


def notebook_parameters(notebook_path: str | Path) -> dict[str, NotebookParameter]:
    """The notebook's parameters, in cell order, read with Python's own parser.

    The notebook is read as plain JSON: papermill and nbformat cost seconds to import, and a spec
    check should answer in well under that. Only a cell Python cannot parse (IPython magics) falls
    back to `papermill.inspect_notebook`'s line reading.
    """
    path = Path(notebook_path)
    source = _parameters_cell_source(path)
    assignments = _assignments(source)
    if assignments is None:
        return _papermill_parameters(path)
    return {name: _parameter(name, annotation, default, help) for name, annotation, default, help in assignments}


def _papermill_parameters(path: Path) -> dict[str, NotebookParameter]:
    import papermill  # here, not at the top: only cells with magics need it

    try:
        with papermill_inference_quiet(), _without_papermill_info():
            inspected = papermill.inspect_notebook(str(path))
    except ValueError as e:  # no kernelspec / language in the notebook metadata
        raise ParameterError(f"{path}: cannot inspect the parameters cell: {e}") from None
    found = {}
    for name, p in inspected.items():
        annotation = None if p["inferred_type_name"] == "None" else p["inferred_type_name"]
        found[name] = _parameter(name, annotation, p["default"], p["help"])
    return found


def validate_parameters(notebook_path: str | Path, params: dict[str, Any]) -> dict[str, Any]:
    """Notebook defaults overridden by `params`; raises ParameterError listing every problem.

    Defaults that are expressions rather than literals are left out: the
    notebook computes them itself, and papermill can only inject plain values.
    `output_dir` is rejected here because the runner always sets it.
    """
    declared = notebook_parameters(notebook_path)
    problems = []
    for name, value in params.items():
        if name == RESERVED:
            problems.append(f"{RESERVED!r} is reserved: the runner sets it to the run folder; do not pass it")
        elif name not in declared:
            problems.append(_unknown(name, declared))
        elif problem := declared[name].problem_with(value):
            problems.append(problem)
    if problems:
        raise ParameterError(_report(Path(notebook_path), problems, declared))
    resolved = {n: p.value for n, p in declared.items() if p.value is not _NO_LITERAL and _is_plain(p.value)}
    resolved.update({n: declared[n].coerce(v) for n, v in params.items()})
    return resolved


@contextmanager
def papermill_inference_quiet() -> Iterator[None]:
    """Drop papermill's own parameter warnings while it inspects or injects.

    papermill re-reads the parameters cell with a line regex, then warns about
    lines it cannot parse (any `=` inside a comment) and about passed names it
    did not find. `validate_parameters` has already checked both with Python's
    parser, so those warnings are noise at best and wrong at worst.
    """
    loggers = [logging.getLogger("papermill"), logging.getLogger("papermill.translators")]
    for logger in loggers:
        logger.addFilter(_not_a_parameter_warning)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(_not_a_parameter_warning)


def _not_a_parameter_warning(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(("Unable to parse line", "Passed unknown parameter"))


@contextmanager
def _without_papermill_info() -> Iterator[None]:
    """inspect_notebook logs "Input Notebook: ..." at INFO, which reads as if a run had started."""
    logger = logging.getLogger("papermill")
    logger.addFilter(_warnings_only)
    try:
        yield
    finally:
        logger.removeFilter(_warnings_only)


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def _parameters_cell_source(path: Path) -> str:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = nb["cells"]
    except FileNotFoundError:
        raise ParameterError(f"notebook not found: {path}") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ParameterError(f"{path}: not a readable notebook ({type(e).__name__}: {e})") from None
    for cell in cells:
        if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            source = cell.get("source", "")
            return "".join(source) if isinstance(source, list) else source
    raise ParameterError(
        f"{path}: no cell is tagged {PARAMETERS_TAG!r}; tag the cell that assigns the notebook's "
        "defaults (JupyterLab: select it, then the property inspector > Common Tools > Cell Tags)"
    )


def _parameter(name: str, annotation: str | None, default: str, help: str) -> NotebookParameter:
    if annotation is None:
        value = _literal(default)
        annotation = type(value).__name__ if type(value) in set(_TYPES.values()) else None
    return NotebookParameter(name, annotation, default, help)


def _assignments(source: str) -> list[tuple[str, str | None, str, str]] | None:
    """(name, annotation, default source, trailing comment) of each top-level `name = value` in the cell;
    None when the cell is not plain Python (IPython magics)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lines = source.splitlines()
    found = []
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            name, annotation = node.target.id, ast.unparse(node.annotation)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation = node.targets[0].id, None
        else:
            continue
        rest = lines[node.end_lineno - 1][node.end_col_offset :].strip()
        help = rest[1:].strip() if rest.startswith("#") else _comment_above(lines, node.lineno - 1)
        found.append((name, annotation, ast.get_source_segment(source, node.value), help))
    return found


def _comment_above(lines: list[str], index: int) -> str:
    """The comment lines just above line `index` (0-based), joined: a help text too long to trail its line."""
    above = []
    while index > 0 and lines[index - 1].lstrip().startswith("#") and not lines[index - 1].lstrip().startswith("# -"):
        index -= 1
        above.insert(0, lines[index].lstrip()[1:].strip())
    return " ".join(above)


def _literal(source: str) -> Any:
    try:
        return ast.literal_eval(source)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO_LITERAL


def _accepted_types(type_name: str | None) -> set[type] | None:
    """The Python types a YAML value may have for `type_name`; None means anything goes."""
    if type_name is None:
        return None
    accepted = set()
    for member in _union_members(type_name):
        if member in _NONE_NAMES:
            continue
        base = member.split("[", 1)[0].strip().removeprefix("typing.")
        if base not in _TYPES:
            return None  # a type we cannot check from YAML (Path, torch.dtype, Any, ...)
        accepted.add(_TYPES[base])
    return accepted


def _union_members(type_name: str) -> list[str]:
    """'Optional[int]' -> ['int', 'None']; 'int | None' -> ['int', 'None']; 'list[int]' -> ['list[int]']."""
    text = type_name.strip().strip("'\"").strip()
    for prefix, extra in (("Optional[", ["None"]), ("Union[", [])):
        bare = text.removeprefix("typing.")
        if bare.startswith(prefix) and bare.endswith("]"):
            inner = _split_top_level(bare[len(prefix) : -1], ",")
            return [m for part in inner for m in _union_members(part)] + extra
    parts = _split_top_level(text, "|")
    if len(parts) == 1:
        return parts
    return [m for part in parts for m in _union_members(part)]


def _split_top_level(text: str, separator: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "[") - (char == "]")
        if char == separator and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [p for p in parts if p]


def _fits(value: Any, accepted: set[type]) -> bool:
    if isinstance(value, bool):  # before int: True is an int to Python, not to a spec
        return bool in accepted
    if isinstance(value, int):
        return int in accepted or float in accepted
    if isinstance(value, list):  # YAML has no tuples
        return list in accepted or tuple in accepted
    return type(value) in accepted


def _is_plain(value: Any) -> bool:
    """A value papermill can write into a Python cell and YAML can record."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def _yaml_type(value: Any) -> str:
    return {dict: "mapping", type(None): "null"}.get(type(value), type(value).__name__)


def _unknown(name: str, declared: dict[str, NotebookParameter]) -> str:
    close = difflib.get_close_matches(name, [n for n in declared if n != RESERVED], n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return f"unknown parameter {name!r}{hint}"


def _report(path: Path, problems: list[str], declared: dict[str, NotebookParameter]) -> str:
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    lines = [f"{path}: {count} with the parameters:"]
    lines += [f"  - {p}" for p in problems]
    if declared:
        lines.append("the notebook's parameters (name: type = default):")
        lines += [f"  {p.describe()}" for p in declared.values()]
    else:
        lines.append("the notebook's parameters cell assigns nothing, so it takes no parameters")
    return "\n".join(lines)
