"""workbench: pretrain, fine-tune and probe base models from JupyterLab.

    import workbench
    model, tokenizer = workbench.load("experiments/runs/<run-id>")            # a pretraining run
    finetuned = workbench.load_finetuned("experiments/runs/<run-id>")          # a fine-tuning run

Submodules are imported on use, so `workbench` on the command line starts
without loading torch.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("workbench")
except PackageNotFoundError:  # running from a source tree that isn't installed
    __version__ = "0+unknown"


def load(path, *, device: str = "cpu"):
    """(model, tokenizer) from a run folder or a checkpoint folder, ready for `generate`."""
    from workbench.modules.checkpoint import load_pretrained

    return load_pretrained(path, device=device)


def load_finetuned(path, *, device: str = "cpu"):
    """A fine-tuned model from a fine-tuning run folder: `.module(input_ids, attention_mask)`,
    `.text_encoder`, `.label_names`, `.settings`."""
    from workbench.modules.finetuned import load_finetuned as _load

    return _load(path, device=device)


__all__ = ["__version__", "load", "load_finetuned"]
