"""Export and import times (issue 11): a run out to Hugging Face format and back, beside plain loads.

    python -m benchmarks.interop_times [RUN ...]

For each run folder given (the demo's, say) and for the `gpt2-small` preset with random weights
(saved as a workbench checkpoint first), it times in one process:

    workbench load     workbench.load(checkpoint): the workbench's own format, the yardstick
    export             workbench export RUN OUT (weights, config, tokenizer, model card)
    transformers load  AutoModelForCausalLM.from_pretrained(OUT), what any user of the export pays
    import             workbench.load(OUT): the Hugging Face folder back as a workbench Decoder

and prints each as seconds and as a multiple of the workbench load, with the folder's size. Each load is
timed to its first logits (16 tokens), since a loader may map weights from disk lazily; a tiny model is
exported and loaded first, untimed, so no row pays for importing transformers.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch


def _timed(function):
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


def measure(run: Path, scratch: Path) -> dict:
    import transformers

    import workbench

    out = scratch / f"{run.name}-hf"
    ids = torch.zeros((1, 16), dtype=torch.long)

    def first_logits(model):
        with torch.no_grad():
            model(ids)
        return model

    (model, _), load_s = _timed(lambda: (first_logits(workbench.load(run)[0]), None))
    _, export_s = _timed(lambda: workbench.export(run, out))
    _, hf_s = _timed(lambda: first_logits(transformers.AutoModelForCausalLM.from_pretrained(out)))
    (back, _), import_s = _timed(lambda: (first_logits(workbench.load(out)[0]), None))
    same = all(torch.equal(t, back.state_dict()[name]) for name, t in model.state_dict().items())
    size = sum(p.stat().st_size for p in out.iterdir())
    return {"model": run.name, "parameters": model.num_parameters(), "mb": size / 1e6, "workbench_load_s": load_s,
            "export_s": export_s, "transformers_load_s": hf_s, "import_s": import_s, "bitwise_round_trip": same}


def random_checkpoint(preset: str, scratch: Path) -> Path:
    from workbench.data import build_tokenizer
    from workbench.models import Decoder, DecoderConfig
    from workbench.modules import save_pretrained

    torch.manual_seed(0)
    tokenizer = build_tokenizer("byte")  # the preset's 50,304 embedding rows need no tokenizer that large
    run = scratch / preset
    save_pretrained(run / "checkpoint", Decoder(DecoderConfig.from_preset(preset)), tokenizer)
    return run


def main(argv: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        measure(random_checkpoint("tiny", scratch), scratch)  # warm-up: imports, first-call allocations
        runs = [Path(a) for a in argv] + [random_checkpoint("gpt2-small", scratch)]
        rows = [measure(run, scratch) for run in runs]
    print(f"{'model':<28} {'params':>12} {'MB':>7} {'wb load':>8} {'export':>14} {'hf load':>14} {'import':>14}"
          "  bitwise")
    for r in rows:
        base = r["workbench_load_s"]
        cells = [f"{r[k]:6.2f}s {r[k] / base:4.1f}x" for k in ("export_s", "transformers_load_s", "import_s")]
        print(f"{r['model'][:28]:<28} {r['parameters']:>12,} {r['mb']:>7.1f} {base:7.2f}s "
              + " ".join(f"{c:>14}" for c in cells) + f"  {r['bitwise_round_trip']}")
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
