"""Run one benchmark function in this fresh process and print its result as JSON.

`python -m benchmarks.worker '{"run": "run_interleaved", "kwargs": {...}}'`: a process per run
keeps each run's peak resident memory its own and its caches cold in the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MARKER = "BENCHMARK-RESULT "
PROJECT = Path(__file__).resolve().parents[1]  # the folder `benchmarks/` is found in


def call_in_subprocess(module: str, function: str, timeout: float | None = None, **kwargs) -> dict:
    """`module.function(**kwargs)` in a fresh interpreter, its JSON result returned.

    The child finds `benchmarks` through PYTHONPATH, not the working directory: `python -m` looks in
    the caller's, which is the project root from the command line but need not be in a notebook or a test.
    """
    request = json.dumps({"module": module, "function": function, "kwargs": kwargs})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "benchmarks.worker", request], capture_output=True, text=True,
                          timeout=timeout, env=env)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    raise RuntimeError(f"{module}.{function} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")


def main(argv: list[str]) -> None:
    import importlib

    request = json.loads(argv[0])
    function = getattr(importlib.import_module(request["module"]), request["function"])
    print(MARKER + json.dumps(function(**request["kwargs"])), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
