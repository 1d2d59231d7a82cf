"""Runs on several processes through `workbench run`: killed and resumed, and across two torchrun "nodes"."""

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from crash_resume import read, resume_then_run_whole

from workbench.modules import pretrain
from workbench.runs.resume import run_status

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "experiments" / "pretrain-quick.yaml"
BIN = Path(sys.executable).parent
# Long enough for the kill to land between two saved states; dropout checks that each rank's random stream resumes.
LONGER = ["-p", "max_steps=300", "-p", "checkpoint_every=25", "-p", "block_size=128", "-p", "batch_size=8",
          "-p", "eval_every=100", "-p", "dropout=0.1", "--devices", "2"]

pytestmark = pytest.mark.slow


def rank_workers() -> list[int]:
    """Processes running a rank of a local multi-process run (none should outlive their run)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and b"workbench.modules.rank_worker" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_a_two_process_run_killed_with_sigkill_resumes_to_the_uninterrupted_metrics(tmp_path):
    killed_runs = tmp_path / "killed"
    child = subprocess.Popen([str(BIN / "workbench"), "run", str(QUICK), "--runs-dir", str(killed_runs), "--quiet",
                              *LONGER], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not list(killed_runs.glob("*/training-state/last.ckpt")):
            assert child.poll() is None, "workbench run ended before saving any training state"
            assert time.monotonic() < deadline, "no training state after 240 s"
            time.sleep(0.05)
        assert rank_workers(), "rank 1 should be training beside rank 0"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    deadline = time.monotonic() + 30
    while rank_workers():  # the orphaned kernel exits within a second, and its rank 1 follows it
        assert time.monotonic() < deadline, f"rank workers outlived their run: {rank_workers()}"
        time.sleep(0.2)
    (folder,) = killed_runs.iterdir()
    assert run_status(folder) == "killed"
    state = torch.load(folder / "training-state" / "last.ckpt", weights_only=True, map_location="cpu")
    assert 0 < state["global_step"] < 300, "the kill should land mid-training"

    whole = resume_then_run_whole(QUICK, folder, tmp_path / "whole", LONGER)  # same metrics, to the last digit
    compute = read(folder, "compute.json")
    assert compute["resumed_at_steps"] == [state["global_step"]]
    assert compute["distributed"]["world_size"] == 2 and compute["distributed"]["global_batch_size"] == 16
    assert sorted(p.name for p in folder.iterdir() if p.name != "notebook.attempt-1.ipynb") == sorted(
        p.name for p in whole.iterdir())
    assert not rank_workers()


def port_outside_the_ephemeral_range() -> int:
    """A free port below the range the kernel hands out to outgoing connections.

    A port from bind(0) (Lightning's `find_free_network_port`) is in that range: closed again, it can
    become the source port of any connection opened before the agents bind it, and then neither
    agent can host the rendezvous store and both wait on a port where nobody listens (a CI run at
    1a9e7ca: 'The client socket has timed out after 600000ms while trying to connect').
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.Random().sample(range(max(1024, low - 8000), low), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port below the ephemeral range (from {low})")


def test_two_torchrun_nodes_on_one_machine_train_as_one_process_at_the_global_batch(tmp_path):
    """Two torchrun agents, --nnodes 2 and a c10d rendezvous on localhost: rank 0 writes the one run folder."""
    port = port_outside_the_ephemeral_range()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    logs = [tmp_path / f"agent-{i}.log" for i in range(2)]  # files, not pipes: one unread pipe can block its agent
    stack = contextlib.ExitStack()
    agents = [subprocess.Popen(
        [str(BIN / "torchrun"), "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
         "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "two-nodes", "-m", "workbench", "run", str(QUICK),
         "--num-nodes", "2", "--runs-dir", str(tmp_path / "runs"), "--quiet", "-p", "precision=32-true"],
        env=env, stdout=out, stderr=subprocess.STDOUT) for out in (stack.enter_context(log.open("w")) for log in logs)]
    deadline = time.monotonic() + 300  # about 40 s here
    while any(agent.poll() is None for agent in agents) and time.monotonic() < deadline:
        time.sleep(0.5)
    for agent in agents:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    stack.close()
    outputs = [f"agent {i} (exit {agent.returncode}):\n{log.read_text()[-3000:]}"
               for i, (agent, log) in enumerate(zip(agents, logs, strict=True))]
    assert [agent.returncode for agent in agents] == [0, 0], "\n".join(outputs)
    (folder,) = (tmp_path / "runs").iterdir()  # rank 1's copy went to a scratch folder, now deleted
    assert run_status(folder) == "completed"
    distributed = read(folder, "compute.json")["distributed"]
    assert distributed["launched_by"] == "torchrun" and distributed["num_nodes"] == 2
    assert distributed["world_size"] == 2 and distributed["global_batch_size"] == 16

    params = yaml.safe_load(QUICK.read_text())["parameters"]
    settings = {k: v for k, v in params.items() if k not in ("samples", "sample_tokens")}
    # fp32 on both sides: bf16 (auto's choice on a native-bf16 CPU) rounds batches of 8 and 16 apart by ~1e-4
    one = pretrain({**settings, "batch_size": 2 * params["batch_size"], "precision": "32-true"}, printer=None)
    for key in ("val_loss", "val_bpb"):
        assert read(folder, "metrics.json")[key] == pytest.approx(one.metrics[key], abs=1e-5)
