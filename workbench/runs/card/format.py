"""How a model card writes values: Markdown tables, numbers, paths, and "not recorded"."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from workbench.runs.spec import find_project_root

NOT_RECORDED = "not recorded"


def table(rows: list[tuple[str, str]], header: tuple[str, str] = ("", "")) -> list[str]:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {name} | {str(value).replace('|', '/')} |" for name, value in rows]
    return lines


def number(value: Any) -> str:
    """Integers with thousands separators, floats to 4 significant digits, anything else as it is."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def shown_path(path: Path) -> str:
    """Relative to the project root when inside it (where `.venv/bin/workbench` is run), else absolute."""
    path = path.absolute()
    root = find_project_root(path.parent)
    if root is not None:
        try:
            return str(path.resolve().relative_to(root))
        except ValueError:
            pass
    return str(path)
