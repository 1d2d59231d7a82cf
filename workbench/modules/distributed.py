"""Training on several processes and machines through Lightning's DDP and FSDP strategies.

Who starts the processes decides what happens here:
- torchrun, SLURM's srun, or anything that sets LOCAL_RANK: Lightning's cluster environments
  read the ranks from the environment, and every process already runs this code;
- nobody (a notebook cell, `workbench run --devices N`): the process calling the recipe
  becomes rank 0 and starts ranks 1..N-1 as `python -m workbench.modules.rank_worker`, with
  the variables Lightning's default environment reads (MASTER_ADDR, MASTER_PORT, WORLD_SIZE,
  NODE_RANK, LOCAL_RANK). Rank 0 stays in the notebook's kernel, so live curves, the returned
  model and the run folder are where a one-process run puts them. Lightning's own launchers
  cannot do that in a kernel: its subprocess launcher re-runs `sys.argv` (the kernel), and
  `ddp_notebook` forks every rank, rank 0 included, away from the kernel's widgets.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import torch
from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from lightning.fabric.plugins.environments.lightning import find_free_network_port
from lightning.pytorch.strategies import DDPStrategy, FSDPStrategy

from workbench.errors import RequestError
from workbench.modules.scale_settings import launched_rank  # noqa: F401 - re-exported for the recipes

# A peer that died closes its sockets and the others fail at their next collective; this bounds the
# wait for one that hangs instead (torch's default is 30 minutes).
COLLECTIVE_TIMEOUT = timedelta(minutes=10)
WORKER_LOG = "rank-{rank}.log"


@dataclass(frozen=True)
class Scale:
    """How many processes train, on how many machines, under which of Lightning's strategies."""

    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"

    @classmethod
    def of(cls, settings: Any) -> "Scale":
        return cls(settings.devices, settings.num_nodes, settings.distributed_strategy)

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes

    @property
    def resolved_strategy(self) -> str:
        """What `auto` means for this many processes; `ddp` or `fsdp` asked for by name hold even for one."""
        if self.strategy != "auto":
            return self.strategy
        return "none" if self.world_size == 1 else "ddp"

    @property
    def distributed(self) -> bool:
        """Whether the Trainer runs a process group (one process under DDP or FSDP has one too)."""
        return self.resolved_strategy != "none"

    def check(self) -> None:
        """What this machine cannot do, before any data is read."""
        if self.strategy == "fsdp" and not torch.cuda.is_available():
            raise RequestError("distributed_strategy='fsdp' needs CUDA devices (Lightning's FSDP refuses the CPU), "
                               "and this machine has none; use 'ddp' (or 'auto'), which trains the same model on CPU")
        if torch.cuda.is_available() and self.devices > torch.cuda.device_count():
            raise RequestError(f"devices={self.devices}, but this machine has {torch.cuda.device_count()} CUDA "
                               "device(s); set devices to at most that")
        if launched_externally():
            world = external_world_size()
            if world is not None and world != self.world_size:
                raise RequestError(
                    f"the launcher started {world} processes, but devices={self.devices} x num_nodes="
                    f"{self.num_nodes} = {self.world_size}; make them agree (torchrun: --nproc-per-node = devices, "
                    "--nnodes = num_nodes)")
        elif self.num_nodes > 1:
            raise RequestError(f"num_nodes={self.num_nodes} needs a launcher on every machine (torchrun or SLURM's "
                               "srun: see the README's 'Across machines'); without one, use num_nodes=1")

    def lightning_strategy(self) -> Any:
        """The Trainer's `strategy`: "auto" for one process, else DDP or FSDP over processes that already exist.

        One process under `ddp` or `fsdp` by name runs the strategy's own code path (a GPU check of
        the wrapper's cost, or FSDP's sharded state on a single device).
        """
        if not self.distributed:
            return "auto"
        if self.resolved_strategy == "fsdp":
            return _ExistingProcessesFSDP(timeout=COLLECTIVE_TIMEOUT)
        # Buffers (rotary tables, masks) are constants: broadcasting them each forward would cost a
        # collective per step and make ranks with unequal validation batches wait on each other.
        return _ExistingProcessesDDP(forward_sync_buffers=False, timeout=COLLECTIVE_TIMEOUT)

    def record(self, batch_size: int, accumulate_grad_batches: int) -> dict[str, Any]:
        """For compute.json and data.json: the processes and the batch one optimizer step sees."""
        return {"devices": self.devices, "num_nodes": self.num_nodes, "world_size": self.world_size,
                "strategy": self.resolved_strategy,
                "launched_by": launcher_name() if self.world_size > 1 else "none",
                "batch_size_per_device": batch_size, "accumulate_grad_batches": accumulate_grad_batches,
                "global_batch_size": batch_size * accumulate_grad_batches * self.world_size}

    def describe_batch(self, batch_size: int, accumulate_grad_batches: int, block_size: int | None = None) -> str:
        """The global batch in words, e.g. "2 processes x 8 x 1 accumulation = 16 sequences (2,048 tokens)"."""
        total = batch_size * accumulate_grad_batches * self.world_size
        tokens = f" ({total * block_size:,} tokens)" if block_size else ""
        return (f"global batch: {self.world_size} process(es) x {batch_size} x {accumulate_grad_batches} "
                f"accumulation = {total} sequences{tokens} per optimizer step")


class _ExistingProcessesDDP(DDPStrategy):
    """DDP over processes that are already running (started here, by torchrun or by SLURM): no launcher.

    Lightning's launcher would start the other ranks itself, and in a Jupyter kernel it refuses to.
    """

    def _configure_launcher(self) -> None:
        self._launcher = None


class _ExistingProcessesFSDP(FSDPStrategy):
    """FSDP over processes that are already running: no launcher (as `_ExistingProcessesDDP`)."""

    def _configure_launcher(self) -> None:
        self._launcher = None


def launched_externally() -> bool:
    """Whether a launcher (torchrun, SLURM's srun, rank 0 of a local run) started this process as one rank."""
    return "LOCAL_RANK" in os.environ or TorchElasticEnvironment.detect() or SLURMEnvironment.detect()


def external_world_size() -> int | None:
    for variable in ("WORLD_SIZE", "SLURM_NTASKS"):
        if variable in os.environ:
            return int(os.environ[variable])
    return None


def launcher_name() -> str:
    if TorchElasticEnvironment.detect():
        return "torchrun"
    if SLURMEnvironment.detect():
        return "slurm"
    return "workbench (rank 0 started the others)"


@contextmanager
def local_ranks(scale: Scale, job: dict[str, Any]) -> Iterator[None]:
    """Make this process rank 0 of `scale` on this machine, and run ranks 1.. as workers doing `job`.

    Nothing happens when the run has one process or a launcher started its processes. The
    machine's threads are split between the processes (2 cores, 2 processes: 1 thread each), and
    this process gets its threads and environment back at the end. A worker that fails makes
    rank 0 fail at its next collective; the error then carries the worker's log.
    """
    if launched_externally():
        yield
        return
    if scale.world_size == 1:
        # One process under DDP or FSDP: Lightning sets MASTER_ADDR/MASTER_PORT (and OMP_NUM_THREADS) for its
        # process group; the group and the variables go with the run, or the next run would read them.
        saved_env = {k: os.environ.get(k) for k in ("MASTER_ADDR", "MASTER_PORT", "OMP_NUM_THREADS")}
        saved_threads = torch.get_num_threads()
        try:
            yield
        finally:
            if scale.distributed and torch.distributed.is_available() and torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
            _restore(saved_env)
            torch.set_num_threads(saved_threads)
        return
    threads = max(1, torch.get_num_threads() // scale.devices)
    shared = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(find_free_network_port()),
              "WORLD_SIZE": str(scale.world_size), "NODE_RANK": "0"}
    folder = Path(tempfile.mkdtemp(prefix="workbench-ranks-"))
    job_file = folder / "job.json"
    job_file.write_text(json.dumps({**job, "threads": threads}, default=str))
    workers = []
    for rank in range(1, scale.devices):
        log = open(folder / WORKER_LOG.format(rank=rank), "w")
        env = {**os.environ, **shared, "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": str(threads)}
        workers.append((rank, subprocess.Popen([sys.executable, "-m", "workbench.modules.rank_worker", str(job_file)],
                                               env=env, stdout=log, stderr=subprocess.STDOUT,
                                               preexec_fn=_die_with_parent), log))
    saved_env = {k: os.environ.get(k) for k in (*shared, "LOCAL_RANK", "OMP_NUM_THREADS")}
    saved_threads = torch.get_num_threads()
    os.environ.update(shared, LOCAL_RANK="0")
    torch.set_num_threads(threads)
    failed = True
    try:
        yield
        failed = False
    except BaseException as error:
        for rank, process, _ in workers:
            if process.poll() not in (None, 0):
                error.add_note(f"rank {rank} exited with {process.returncode}; its log ends:\n"
                               + _tail(folder / WORKER_LOG.format(rank=rank)))
        raise
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for rank, process, log in workers:
            if failed:
                process.terminate()
            try:
                code = process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            log.close()
            if code != 0 and not failed:
                raise RuntimeError(f"rank {rank} exited with {code} after rank 0 finished; its log ends:\n"
                                   + _tail(folder / WORKER_LOG.format(rank=rank)))
        _restore(saved_env)
        torch.set_num_threads(saved_threads)


def _restore(saved_env: dict[str, str | None]) -> None:
    """Put environment variables back as they were (None: it was not set)."""
    for key, value in saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _die_with_parent() -> None:
    """In the worker, before exec: a SIGTERM when rank 0's process dies (a killed kernel), so no rank is orphaned."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"
