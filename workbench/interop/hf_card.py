"""An export's README.md: a Hugging Face model card (YAML metadata the hub reads, then prose) from the run's records.

The metadata carries what the hub indexes: library, tags, datasets, the base model, and a
`model-index` with the run's final metrics. The prose says how to load the folder with plain
`transformers` (or `peft`), where the model came from (run, commit, seed, the command that
repeats it) and what the export leaves behind. The run's own MODEL_CARD.md is not changed.
"""

from __future__ import annotations

from typing import Any

# metric key in metrics.json -> (model-index metric type, name shown)
METRICS = {
    "val_loss": ("loss", "validation loss (nats per token)"),
    "val_bpb": ("bits_per_byte", "validation bits per byte"),
    "val_ppl": ("perplexity", "validation perplexity"),
    "test_loss": ("loss", "test loss"),
    "test_accuracy": ("accuracy", "test accuracy"),
    "val_accuracy": ("accuracy", "validation masked-token accuracy"),  # a masked LM's
}


def hub_model_card(plan) -> str:
    """The whole README.md for `plan` (an export.ExportPlan)."""
    from huggingface_hub import ModelCard, ModelCardData

    facts = _facts(plan)
    data = ModelCardData(
        library_name="peft" if plan.kind == "adapter" else "transformers",
        pipeline_tag=facts["task_type"],
        tags=["workbench", facts["family"], "masked-lm" if plan.kind == "masked_lm" else "causal-lm",
              f"tokenizer-{facts['tokenizer']}"]
        + (["lora", "adapter"] if plan.kind == "adapter" else []),
        datasets=[facts["dataset"]] if facts["dataset"] else None,
        base_model=facts["base_model"],
        model_name=facts["name"],
        eval_results=_eval_results(facts) or None,
    )
    body = "\n".join(_body(plan, facts))
    return str(ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + body + "\n"))


def _facts(plan) -> dict[str, Any]:
    run = plan.run
    data = (run.data if run is not None else None) or {}
    settings = data.get("settings") if isinstance(data.get("settings"), dict) else {}
    corpus = data.get("corpus")
    task = data.get("task") if isinstance(data.get("task"), dict) else {}
    if corpus == "hf":
        dataset = settings.get("hf_name") or (data.get("corpus_options") or {}).get("hf_name")
    elif corpus:
        dataset = f"workbench-{corpus}"
    else:
        dataset = task.get("hf_name") or (f"workbench-{task['name']}" if task.get("name") else None)
    init = data.get("init_from") if isinstance(data.get("init_from"), dict) else None
    base_model = settings.get("base") if run is not None and run.kind == "finetuning" else None
    if init:
        base_model = init.get("source")
    hf_config = getattr(plan.model.config, "hf_config", None)
    masked = plan.kind == "masked_lm"
    return {
        "name": run.id if run is not None else plan.source.name,
        "family": hf_config.model_type if hf_config is not None else "eurobert" if masked else "llama",
        "architecture": type(plan.model.model).__name__ if hf_config is not None
        else "EuroBertForMaskedLM" if masked else "LlamaForCausalLM",
        "task_type": "fill-mask" if masked else "text-generation",
        "dataset": dataset,
        "dataset_name": corpus or task.get("name") or "unknown",
        "base_model": _hub_id(base_model),
        "base_source": base_model,
        "tokenizer": getattr(plan.tokenizer, "kind", "hf"),
        "metrics": (run.metrics if run is not None else None) or {},
        "init_from": init,
        "settings": settings,
    }


def _hub_id(source: str | None) -> str | None:
    """The hub's base_model field takes a hub id; a local folder is named in the prose instead."""
    if isinstance(source, str) and source.startswith("hf:"):
        return source[3:].partition("@")[0]
    return None


def _eval_results(facts: dict[str, Any]) -> list:
    from huggingface_hub import EvalResult

    results = []
    for key, (metric_type, name) in METRICS.items():
        value = facts["metrics"].get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            split = "test" if key.startswith("test_") else "validation"
            results.append(EvalResult(task_type=facts["task_type"], dataset_type=facts["dataset"] or "unknown",
                                      dataset_name=facts["dataset_name"], dataset_split=split,
                                      metric_type=metric_type, metric_value=float(value), metric_name=name))
    return results


def _body(plan, facts: dict[str, Any]) -> list[str]:
    config = plan.model.config
    parameters = plan.model.num_parameters()
    lines = [f"# {facts['name']}", ""]
    if plan.kind == "adapter":
        lines += [f"A LoRA adapter (rank {plan.adapter['rank']}, alpha {plan.adapter['alpha']}) fine-tuned by the "
                  f"workbench over the base `{facts['base_source']}`, for `peft` over that base exported as "
                  "`LlamaForCausalLM` (`workbench export <base run> BASE`).", "",
                  "```python", "from peft import PeftModel", "from transformers import AutoModelForCausalLM", "",
                  'base = AutoModelForCausalLM.from_pretrained("BASE")',
                  'model = PeftModel.from_pretrained(base, "THIS_FOLDER")', "```"]
    else:
        if plan.kind == "native":
            shape = (f"A {parameters / 1e6:.2f}M-parameter `{facts['architecture']}` fine-tuned by the workbench "
                     f"from `{facts['base_source']}`, in its own architecture: {config.n_layer} layers, "
                     f"width {config.d_model}, {config.block_size} positions.")
        elif plan.kind == "masked_lm":
            shape = (f"A {parameters / 1e6:.2f}M-parameter masked-language-model encoder trained by the workbench "
                     f"(BERT's masking) and exported as `EuroBertForMaskedLM`: {config.n_layer} bidirectional "
                     f"layers, {config.n_head} heads, width {config.d_model}, {config.block_size} positions; the "
                     f"mask token is `<mask>` (id {config.mask_token_id}).")
        else:
            shape = (f"A {parameters / 1e6:.2f}M-parameter causal language model trained by the workbench and "
                     f"exported as `LlamaForCausalLM`: {config.n_layer} layers, {config.n_head} heads "
                     f"({config.kv_heads} key/value), width {config.d_model}, {config.block_size} positions, "
                     f"{'tied' if config.tie_embeddings else 'untied'} embeddings.")
        usage = (["```python", "from transformers import pipeline", "",
                  'fill = pipeline("fill-mask", model="THIS_FOLDER")', 'print(fill("def add(a, b):<mask>"))', "```"]
                 if plan.kind == "masked_lm" else
                 ["```python", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
                  'model = AutoModelForCausalLM.from_pretrained("THIS_FOLDER")',
                  'tokenizer = AutoTokenizer.from_pretrained("THIS_FOLDER")',
                  'ids = tokenizer("def ", return_tensors="pt").input_ids',
                  "print(tokenizer.decode(model.generate(ids, max_new_tokens=50, do_sample=False)[0]))", "```"])
        lines += [shape + " Plain `transformers` loads it; its logits equal the workbench's to float32 rounding.", "",
                  *usage]
    lines += ["", "## Metrics", ""]
    rows = [(name, facts["metrics"][key]) for key, (_, name) in METRICS.items()
            if isinstance(facts["metrics"].get(key), (int, float))]
    if rows:
        lines += ["| metric | value |", "| --- | --- |"] + [f"| {name} | {value:.4f} |" for name, value in rows]
    else:
        lines.append("No metrics recorded (a checkpoint folder exported on its own).")
    lines += ["", "## Where it came from", ""] + _provenance(plan, facts)
    lines += ["", "## Tokenizer", "", _tokenizer_line(plan, facts)]
    lines += ["", "## What the export leaves behind", "",
              "- Dropout (a training setting) is not carried: Llama has no residual dropout. Inference is "
              "unchanged." if getattr(config, "dropout", 0) else "- Nothing the model computes.",
              "- The run's full model card, with its data, limitations and compute, is MODEL_CARD.md in the run "
              "folder."]
    return lines


def _provenance(plan, facts: dict[str, Any]) -> list[str]:
    run = plan.run
    if run is None:
        return [f"- exported from the checkpoint folder `{plan.source}` (no run records beside it)"]
    git = run.git
    commit = git.get("commit")
    lines = [f"- workbench run `{run.id}` ({run.kind}), seed {run.param('seed')}",
             f"- code: commit `{commit}`" + (" with uncommitted changes" if git.get("dirty") else "")
             if commit else "- code: git state not recorded",
             f"- data: {facts['dataset_name']}" + (f" (`{facts['dataset']}`)" if facts["dataset"] else "")]
    if run.has_spec_file:
        lines.append(f"- repeat it: `workbench run {run.spec_file}`")
    init = facts["init_from"]
    if init:
        config_hash, weights_hash = str(init.get("config_sha256"))[:16], str(init.get("weights_sha256"))[:16]
        lines.append(f"- continued pretraining from `{init.get('source')}` (config sha256 `{config_hash}`, "
                     f"weights sha256 `{weights_hash}`)")
    elif facts["base_source"]:
        lines.append(f"- fine-tuned from the base `{facts['base_source']}`")
    return lines


def _tokenizer_line(plan, facts: dict[str, Any]) -> str:
    kind = facts["tokenizer"]
    described = {"byte": "the 256 UTF-8 byte values", "char": "the training texts' characters plus <unk>",
                 "bpe": "byte-level BPE trained on the corpus", "hf": "the base model's own tokenizer"}
    return (f"`{kind}`: {described.get(kind, kind)}, {plan.tokenizer.vocab_size} ids. `AutoTokenizer` gives the same "
            "ids as the workbench for every text and adds no special tokens the workbench did not train with.")
