"""Settings dataclasses: the one description of a run that notebooks, specs and docs derive from.

A setting's name, type, default, help text and valid values are written once, as a field of a
frozen dataclass built with `setting(...)`. From that one place:
- a notebook's `parameters` cell is rendered (`parameters_cell`), so the notebook declares every
  field with the same default, and rebuilds its settings from its own namespace (`from_namespace`);
- `workbench run` checks every run of a spec before any kernel starts (`problems_with`), listing
  every problem at once rather than the first one a kernel happens to hit;
- the README's parameter tables are rendered (`markdown_table`).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import textwrap
import typing
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from workbench.config import ConfigError, coerce
from workbench.errors import RequestError


def setting(
    default: Any,
    help: str = "",
    *,
    choices: Iterable[Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    path: str | None = None,
    section: str | None = None,
) -> Any:
    """A dataclass field with its help text and valid values, checked by `Settings`.

    `minimum`/`maximum` are inclusive bounds, `above`/`below` exclusive ones; None values are always
    allowed where the type allows None. `path` ("file", "folder" or "glob") marks a value that must
    name something existing when the run starts. `section` starts a group of parameters in the notebook cell.
    """
    metadata = dict(help=help, choices=tuple(choices) if choices is not None else None, minimum=minimum,
                    maximum=maximum, above=above, below=below, path=path, section=section)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class SettingsError(ConfigError):
    """Settings values that do not fit; `problems` lists every one, each naming the setting and value."""

    def __init__(self, what: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{what}: {len(problems)} problem(s):\n- " + "\n- ".join(problems))


class Settings:
    """Mixin for frozen dataclasses of `setting` fields: every value is checked on construction."""

    what: ClassVar[str] = "settings"

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise SettingsError(self.what, problems)

    def problems(self) -> list[str]:
        """Every field outside its choices or bounds, then the cross-field rules of `more_problems`."""
        found = [p for f in dataclasses.fields(self) if (p := _field_problem(f, getattr(self, f.name)))]
        return found + list(self.more_problems())

    def more_problems(self) -> Iterable[str]:
        """Rules that involve several fields; subclasses yield one message per broken rule."""
        return ()

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Any:
        """Build from plain values (a spec, a notebook), raising one `SettingsError` with every problem."""
        problems, checked = cls._checked(values)
        if problems:
            raise SettingsError(cls.what, problems)
        return cls(**checked)

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]) -> Any:
        """Build from a notebook's globals: each field is read under its own name, so a notebook never
        retypes its parameters (and one that lacks a field fails here, naming it)."""
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in namespace]
        if missing:
            raise SettingsError(cls.what, [f"the namespace lacks {', '.join(missing)}: declare them in the "
                                           "notebook's parameters cell (rendered from these settings)"])
        return cls.from_dict({f.name: namespace[f.name] for f in dataclasses.fields(cls)})

    @classmethod
    def problems_with(cls, values: Mapping[str, Any]) -> list[str]:
        """Every problem `from_dict(values)` would raise, without raising: unknown names, types, values."""
        problems, checked = cls._checked(values)
        try:
            cls(**checked)
        except SettingsError as error:
            problems += error.problems
        except RequestError as error:  # a rule that raised instead of yielding
            problems.append(str(error))
        return problems

    @classmethod
    def _checked(cls, values: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
        """Problems with names and types, and the values that passed (ill-typed ones left at their default)."""
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
        hints = typing.get_type_hints(cls)
        problems, checked = [], {}
        for name, value in values.items():
            if name not in fields:
                problems.append(_unknown(name, fields))
                continue
            try:
                checked[name] = coerce(value, hints[name], name)
            except ConfigError as error:
                problems.append(str(error))
        return problems, checked

    def required_paths(self) -> dict[str, list[str]]:
        """The files or globs this run reads, by setting: `workbench run` checks they exist before it starts."""
        found = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("path") and value:
                found[f.name] = [value] if isinstance(value, str) else list(value)
        return found

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _field_problem(field: dataclasses.Field, value: Any) -> str | None:
    meta = field.metadata
    if value is None or not meta:
        return None
    shown = f"{field.name}={value!r}"
    if meta.get("choices") is not None and value not in meta["choices"]:
        close = difflib.get_close_matches(str(value), [str(c) for c in meta["choices"]], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"{shown} is not one of: {', '.join(map(str, meta['choices']))}{hint}"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    bounds = [
        ("minimum", lambda b: value >= b, "at least"), ("above", lambda b: value > b, "greater than"),
        ("maximum", lambda b: value <= b, "at most"), ("below", lambda b: value < b, "less than"),
    ]
    broken = [f"{words} {meta[key]}" for key, holds, words in bounds if meta.get(key) is not None
              and not holds(meta[key])]
    if broken:
        wanted = " and ".join(f"{words} {meta[key]}" for key, _, words in bounds if meta.get(key) is not None)
        return f"{shown} must be {wanted}"
    return None


def _unknown(name: str, fields: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(fields), n=2)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    return f"unknown setting {name!r}{hint}"


# -- rendering: the notebook cell and the docs are printed from the fields, never typed by hand --

CELL_WIDTH = 120  # the project's line length
OUTPUT_DIR_LINE = 'output_dir = ""  # where artifacts go; "" = a new folder in experiments/runs (workbench run sets it)'


def parameters_cell(interface: type) -> str:
    """The source of a notebook's `parameters` cell: `output_dir`, then one line per field of `interface`."""
    lines = [OUTPUT_DIR_LINE]
    for field in dataclasses.fields(interface):
        if field.metadata.get("section"):
            lines += ["", f"# -- {field.metadata['section']} --"]
        line = f"{field.name}: {_annotation(field)} = {_literal(_default(field))}"
        help = field.metadata.get("help")
        if help and len(line) + len(help) + 4 <= CELL_WIDTH:
            line += f"  # {help}"
        elif help:  # too long to trail the assignment: the comment lines just above it
            lines += [f"# {part}" for part in textwrap.wrap(help, CELL_WIDTH - 2)]
        lines.append(line)
    return "\n".join(lines)


def markdown_table(interface: type) -> str:
    """The parameters of `interface` as a markdown table: name, type, default, what it does."""
    rows = ["| parameter | type | default | |", "| --- | --- | --- | --- |"]
    for field in dataclasses.fields(interface):
        help = field.metadata.get("help", "")
        choices = field.metadata.get("choices")
        if choices and "|" not in help:
            help = f"{help} ({', '.join(map(str, choices))})" if help else ", ".join(map(str, choices))
        cells = [f"`{field.name}`", f"`{_annotation(field)}`", f"`{_literal(_default(field))}`", help]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows)


def defaults(interface: type) -> dict[str, Any]:
    return {f.name: _default(f) for f in dataclasses.fields(interface)}


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _annotation(field: dataclasses.Field) -> str:
    """The field's type as a notebook can evaluate it: builtins only (`dict[str, Any]` becomes `dict`)."""
    text = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    parts = []
    for part in text.split(" | "):
        parts.append(part.split("[")[0] if "Any" in part else part)
    return " | ".join(parts)


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)
