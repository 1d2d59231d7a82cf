"""What the live-curve callback costs training, at the demo config (experiments/pretrain.yaml) over fewer steps.

Two figures from the same process:
  hook share   time spent inside LiveCurves' hooks / time spent in training steps, in the run that has it
               (robust to other load on the machine: both are measured in the same steps);
  wall ratio   training time with the callback / without it, two otherwise identical runs back to back
               (noisy on a shared machine; read it with the hook share).
The callback is built with a FigureWidget (widget=True), as in JupyterLab; without a kernel no browser
receives the updates, so the figure-update work is counted but the websocket traffic is not.

    .venv/bin/python benchmarks/live_curves.py --steps 120
"""

from __future__ import annotations

import argparse
import time

import yaml

from workbench.modules import pretrain
from workbench.modules.recorder import TrainingRecorder
from workbench.probe.live import LiveCurves


def demo_settings(steps: int) -> dict:
    with open("experiments/pretrain.yaml") as f:
        parameters = yaml.safe_load(f)["parameters"]
    keep = ("seed", "corpus", "max_files", "tokenizer", "vocab_size", "preset", "block_size", "batch_size",
            "learning_rate", "warmup_steps", "eval_batches")
    settings = {k: parameters[k] for k in keep}
    # Same model and batches; fewer steps, an evaluation every 40 so validation redraws are counted too.
    settings.update(max_steps=steps, eval_every=min(40, steps), final_eval_batches=1)
    return settings


class StepTimer(TrainingRecorder):
    """Only the time inside training steps (the recorder's own measure), no rows kept."""

    def __init__(self) -> None:
        super().__init__(tokens_per_step=1, every_n_steps=10**9)


def run(settings: dict, live: LiveCurves | None) -> float:
    timer = StepTimer()
    callbacks = ([live] if live else []) + [timer]  # timer last: its step time includes the live hook
    started = time.perf_counter()
    pretrain(settings, callbacks=callbacks, printer=None)
    fit_wall = time.perf_counter() - started
    return timer.train_seconds, fit_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=120)
    args = parser.parse_args()
    settings = demo_settings(args.steps)
    print(f"demo config over {args.steps} steps: {settings}", flush=True)
    run({**settings, "max_steps": 5}, None)  # warm the tokenizer and dataset caches
    without, wall_without = run(settings, None)
    print(f"without the callback: {without:.2f} s in training steps", flush=True)
    live = LiveCurves(widget=True, display=False)
    with_live, wall_with = run(settings, live)
    share = live.hook_seconds / with_live
    print(f"training steps without the callback: {without:.2f} s; with it: {with_live:.2f} s "
          f"(wall incl. data and evaluation {wall_without:.1f} s / {wall_with:.1f} s)")
    print(f"callback: {live.reads} metric reads, {live.redraws} redraws, "
          f"{live.hook_seconds * 1000:.1f} ms in its hooks")
    print(f"hook share (time in the callback's hooks / training-step time, same run): {100 * share:.3f}%")
    print(f"wall ratio (training time with / without, back to back): {with_live / without:.4f}")


if __name__ == "__main__":
    main()
