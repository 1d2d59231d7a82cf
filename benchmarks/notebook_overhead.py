"""Part f: the same quick pretraining as a plain Python call and through `workbench run`.

Both are timed as whole fresh processes (interpreter, imports, data, training,
saving), so the difference is what papermill and the run folder add: a kernel
start, the notebook's cells, and the records written around them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
NOTEBOOK = PROJECT / "notebooks" / "pretrain.ipynb"
WORKBENCH = Path(sys.executable).with_name("workbench")

PLAIN = """
import json, sys
from workbench.modules.pretrain_recipe import pretrain
outcome = pretrain(json.loads(sys.argv[1]), state_dir=sys.argv[2], printer=None)
print(json.dumps(outcome.metrics))
"""


def notebook_overhead(parameters: dict, threads: int | None = None) -> dict:
    """`threads` sets OMP_NUM_THREADS for both processes (the smoke mode uses 1)."""
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    with tempfile.TemporaryDirectory(prefix="wb-bench-nb-") as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        plain = subprocess.run([sys.executable, "-c", PLAIN, json.dumps(parameters), str(scratch / "state")],
                               capture_output=True, text=True, env=env)
        plain_s = time.perf_counter() - started
        if plain.returncode:
            raise RuntimeError(f"plain pretrain() call failed:\n{plain.stderr[-3000:]}")
        spec = scratch / "bench-notebook.yaml"
        spec.write_text(yaml.safe_dump({"name": "bench-notebook", "notebook": str(NOTEBOOK),
                                        "parameters": {**parameters, "samples": 0}}))
        started = time.perf_counter()
        run = subprocess.run([str(WORKBENCH), "run", str(spec), "--runs-dir", str(scratch / "runs"), "--quiet"],
                             capture_output=True, text=True, cwd=PROJECT, env=env)
        run_s = time.perf_counter() - started
        if run.returncode:
            raise RuntimeError(f"workbench run failed:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}")
        metrics_files = list((scratch / "runs").rglob("metrics.json"))
        notebook_metrics = json.loads(metrics_files[0].read_text()) if metrics_files else {}
    plain_metrics = json.loads(plain.stdout.strip().splitlines()[-1])
    overhead = run_s - plain_s
    return {
        "plain_s": round(plain_s, 2),
        "workbench_run_s": round(run_s, 2),
        "overhead_s": round(overhead, 2),
        "allowed_s": round(15 + 0.05 * plain_s, 2),  # the target: under 15 s plus 5%
        "same_val_loss": plain_metrics.get("val_loss") == notebook_metrics.get("val_loss"),
        "val_loss": plain_metrics.get("val_loss"),
    }
