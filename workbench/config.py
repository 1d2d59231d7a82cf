"""Build config dataclasses from plain dicts, with errors that name the bad key.

Notebook parameters and YAML specs are plain values; every config in the
workbench is a dataclass. `from_dict` is the one bridge between them, so a typo
in a spec fails the same way everywhere: naming the key and the valid ones.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Any, Callable, TypeVar

from workbench.errors import RequestError

T = TypeVar("T")


class ConfigError(RequestError):
    """A configuration value is unknown or has the wrong type."""


def from_dict(cls: type[T], values: dict[str, Any], *, what: str | None = None) -> T:
    """Instantiate dataclass `cls` from `values`, checking names and types first."""
    what = what or cls.__name__
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(
            f"{what}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"valid keys are: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    checked = {}
    for name, value in values.items():
        checked[name] = coerce(value, hints[name], f"{what}.{name}")
    return cls(**checked)


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Return `value` if it fits `annotation` (ints widen to floats, lists to tuples)."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(annotation):
            try:
                return coerce(value, option, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {_name(annotation)}, got {value!r} ({type(value).__name__})")
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        items = [coerce(v, args[0], f"{where}[{i}]") if args else v for i, v in enumerate(value)]
        return origin(items)
    if annotation is type(None):
        if value is not None:
            raise ConfigError(f"{where}: expected None, got {value!r}")
        return None
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected int, got bool {value!r}")
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise ConfigError(f"{where}: expected {_name(annotation)}, got {value!r} ({type(value).__name__})")
    return value


def _name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def keyword_options(
    function: Callable, options: dict[str, Any], *, what: str, error: type[Exception] = ConfigError
) -> dict[str, Any]:
    """`function`'s keyword-only defaults overridden by `options`; an unknown name is an `error`
    listing the valid ones. Lets a caller check options before calling a slow loader."""
    defaults = {
        p.name: p.default
        for p in inspect.signature(function).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise error(
            f"unknown {what} option(s) {', '.join(map(repr, unknown))}; valid options are: {', '.join(defaults)}"
        )
    return {**defaults, **options}
