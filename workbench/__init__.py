"""workbench: pretrain, fine-tune and probe base models from JupyterLab.

    import workbench
    model, tokenizer = workbench.load("experiments/runs/<run-id>")            # a pretraining run
    model, tokenizer = workbench.load("path/to/hf-folder")                     # any Hugging Face causal LM
    workbench.export("experiments/runs/<run-id>", "out")                       # ... and back out as one
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
    """(model, tokenizer) from a run folder, a checkpoint folder, a Hugging Face causal-LM folder or
    `hf:<repo-id>`, ready for `generate` and every probe view."""
    from workbench.interop.load import is_hugging_face_source, load_causal_lm
    from workbench.modules.checkpoint import load_pretrained

    if is_hugging_face_source(path):
        imported = load_causal_lm(path)
        return imported.model.to(device), imported.tokenizer
    return load_pretrained(path, device=device)


def export(run, out, *, adapter: bool = False, overwrite: bool = False):
    """Write the model of a run folder as a Hugging Face folder (or, adapter=True, a peft adapter); returns `out`."""
    from workbench.interop.export import export as _export

    return _export(run, out, adapter=adapter, overwrite=overwrite)


def load_finetuned(path, *, device: str = "cpu"):
    """A fine-tuned model from a fine-tuning run folder: `.module(input_ids, attention_mask)`,
    `.text_encoder`, `.label_names`, `.settings`."""
    from workbench.modules.finetuned import load_finetuned as _load

    return _load(path, device=device)


__all__ = ["__version__", "export", "load", "load_finetuned"]
