"""precision auto's measured choices, remembered per machine and shape, so a spec trains in one precision.

`auto` times a few steps both ways, and near its threshold (`precision.GAIN_NEEDED`) a busy moment
can tip the measurement either way: two runs of one spec on one machine would then train in
different precisions and end with different metrics, and the README promises the same metrics
to the last digit. So the first measurement for a (machine, torch, threads, model, batch shape)
is written to `precision-choices.json` in the workbench's cache folder (`$WORKBENCH_CACHE_DIR`,
else `$XDG_CACHE_HOME/workbench`, else `~/.cache/workbench`), and later runs of that shape reuse
it; the record says so and names the file. Delete the file (or its entry) to measure again, or
set `precision` explicitly to skip `auto` altogether. Choices that are not timings (a GPU's bf16
support, a CPU without native bf16) are the same every time and are not written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch

from workbench.files import atomic_write
from workbench.host import cpu_description
from workbench.modules.precision import MEASUREMENT, PrecisionChoice

CACHE_ENV = "WORKBENCH_CACHE_DIR"
FILE_NAME = "precision-choices.json"


def cache_folder() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "workbench"


def remembered_choice(shape: dict[str, Any], measure: Callable[[], PrecisionChoice]) -> PrecisionChoice:
    """The choice remembered for `shape` on this machine, else `measure()`'s, remembered when it was a timing."""
    path = cache_folder() / FILE_NAME
    key = json.dumps({**machine(), **shape, "measurement": MEASUREMENT}, sort_keys=True, default=str)
    entries = _read(path)
    if key in entries:
        try:
            return replace(PrecisionChoice.from_record(entries[key]), remembered_in=str(path))
        except TypeError:  # written by another version of the record: measure again and replace it
            pass
    choice = measure()
    if choice.fp32_ms is None:
        return choice
    choice = replace(choice, measured_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    entries[key] = {k: v for k, v in choice.record().items() if k != "remembered_in"}
    try:
        with atomic_write(path) as temporary:
            temporary.write_text(json.dumps(entries, indent=1, sort_keys=True))
    except OSError:  # a read-only home: the run goes on with its measurement, unremembered
        pass
    return choice


def machine() -> dict[str, Any]:
    """What a step's speed depends on besides the model: the CPU, torch and the threads it runs."""
    return {"cpu": cpu_description(), "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def _read(path: Path) -> dict[str, Any]:
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or damaged: measure, and the write replaces it
        return {}
    return entries if isinstance(entries, dict) else {}
