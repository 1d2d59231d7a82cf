"""The card's sections for a pretraining run (and, with the objective unknown, for any other run)."""

from __future__ import annotations

from workbench.runs.card.common import KindSections
from workbench.runs.card.format import NOT_RECORDED, number, shown_path, table
from workbench.runs.outputs import CHECKPOINT_DIR, MODEL_CONFIG_FILE, WEIGHTS_FILE
from workbench.runs.run_folder import RunFolder, is_number, lookup

CONFIG_SHOWN = ("n_layer", "n_head", "n_kv_head", "d_model", "mlp_hidden", "vocab_size", "block_size", "tie_embeddings")


OBJECTIVES = {
    "causal_lm": "causal language modelling (next-token cross-entropy)",
    "masked_lm": "masked language modelling (BERT's recipe: cross-entropy on 15% of positions, of which 80% masked, "
                 "10% a random token, 10% kept)",
}


class PretrainingSections(KindSections):
    @property
    def masked(self) -> bool:
        return self.run.param("objective") == "masked_lm"

    @property
    def objective(self) -> str:
        return OBJECTIVES["masked_lm" if self.masked else "causal_lm"]

    def what(self) -> str:
        model = "masked language model" if self.masked else "causal language model"
        return f"A {_architecture_phrase(self.run)} pretrained as a {model} on {corpus_phrase(self.run)}."

    def model(self) -> list[str]:
        run = self.run
        config = lookup(run.checkpoint_config, "config") or lookup(run.data, "base", "config")
        parameters = lookup(run.metrics, "parameters")
        init = lookup(run.data, "init_from")
        rows = [
            ("objective", self.objective),
            ("architecture", lookup(run.checkpoint_config, "architecture") or NOT_RECORDED),
            ("started from", _init_phrase(init) if isinstance(init, dict) else "fresh weights (seeded)"),
            ("preset", "(the starting model's)" if isinstance(init, dict) else run.param("preset") or NOT_RECORDED),
            ("parameters", number(parameters) if parameters is not None else NOT_RECORDED),
        ]
        if isinstance(config, dict):
            rows.append(("configuration", ", ".join(f"{k}={config[k]}" for k in CONFIG_SHOWN if k in config)))
        else:
            rows.append(("configuration", f"{NOT_RECORDED} ({CHECKPOINT_DIR}/{MODEL_CONFIG_FILE} missing)"))
        load = f"load with `workbench.load(\"{shown_path(run.path)}\")`"
        rows.append(("weights", f"`{CHECKPOINT_DIR}/{WEIGHTS_FILE}`; {load}" if run.has_checkpoint else NOT_RECORDED))
        return table(rows)

    def data(self) -> list[str]:
        data = self.run.data
        if data is None:
            return [f"The data record (data.json) is {NOT_RECORDED}."]
        summary = data.get("corpus_summary") if isinstance(data.get("corpus_summary"), dict) else {}
        rows = [("corpus", corpus_phrase(self.run)), ("fingerprint", data.get("fingerprint") or NOT_RECORDED)]
        for split in ("train", "validation"):
            part = summary.get(split) if isinstance(summary.get(split), dict) else {}
            tokens, blocks = lookup(data, "tokens", split), lookup(data, "blocks", split)
            sizes = [
                f"{number(part['documents'])} files" if "documents" in part else None,
                f"{number(part['bytes'])} bytes" if "bytes" in part else None,
                f"{number(tokens)} tokens" if tokens is not None else None,
                f"{number(blocks)} blocks of {data.get('block_size')} tokens" if blocks is not None else None,
            ]
            rows.append((f"{split} split", ", ".join(s for s in sizes if s) or NOT_RECORDED))
        rows.append(("tokenizer", tokenizer_phrase(data.get("tokenizer"))))
        if is_number(data.get("bytes_per_token")):
            rows.append(("bytes per token", f"{data['bytes_per_token']:.3f}"))
        return table(rows)

    def missing_yardstick(self) -> list[str]:
        if self.masked:
            accuracy = lookup(self.run.metrics, "val_accuracy")
            shown = f"{accuracy:.1%}" if is_number(accuracy) else NOT_RECORDED
            return ["", "No bits per byte: a masked LM's loss reads 15% of the positions with both sides given, so "
                        f"it is no code length of the text and zlib is no yardstick for it. It predicts {shown} of "
                        "the masked-out validation tokens (val_accuracy)."]
        return ["", f"The zlib yardstick (zlib_bpb) is {NOT_RECORDED}."]

    def data_seen(self) -> list[tuple[str, str]]:
        tokens = (self.run.compute or {}).get("train_tokens")
        return [("tokens seen", number(tokens) if tokens is not None else NOT_RECORDED)]

    def throughput(self) -> str:
        rate = self.run.throughput
        return f"{number(rate.per_second)} tokens/s, {_ms_per_step(self.run)} ms/step" if rate else NOT_RECORDED

    def intended_use(self) -> list[str]:
        probes = ("masked-token prediction, attention, embeddings" if self.masked
                  else "generation, attention, logit lens")
        return [f"A small research model for studying pretraining and for use as a base in the workbench's "
                f"fine-tuning and probing notebooks (loss curves, {probes}), on "
                f"{corpus_phrase(self.run)}. It is not a code assistant or a general language model."]

    def limitations(self) -> list[str]:
        run = self.run
        items = []
        tokens, params = lookup(run.compute, "train_tokens"), lookup(run.metrics, "parameters")
        if is_number(tokens) and is_number(params):
            ratio = tokens / params
            items.append(f"Trained on {number(tokens)} tokens with {number(params)} parameters "
                         f"({ratio:.2g} tokens per parameter, where compute-optimal training uses about 20)"
                         + (f": short of compute-optimal; expect {'predictions' if self.masked else 'samples'} "
                            "that are plausible only locally." if ratio < 20 else "."))
        bpb, zlib = lookup(run.metrics, "val_bpb"), lookup(run.metrics, "zlib_bpb")
        if is_number(bpb) and is_number(zlib) and bpb >= zlib:
            items.append(f"It does not beat zlib on held-out text ({bpb:.3f} vs {zlib:.3f} bits/byte): "
                         "it has learned little beyond byte statistics.")
        items.append(corpus_limitation(run))
        block = run.param("block_size") or lookup(run.checkpoint_config, "config", "block_size")
        if block:
            items.append(f"It sees at most {block} tokens of context.")
        docs = lookup(run.data, "corpus_summary", "validation", "documents")
        if is_number(docs):
            items.append(f"Validation uses {number(docs)} held-out files: the metrics describe those files, "
                         "and one run (one seed) cannot show how much they vary.")
        return items

    def untested(self) -> str:
        if isinstance(self.run.audit, dict):
            return ("No evaluation for toxicity or safety was done; memorisation and bias were measured only as far "
                    "as the Privacy and Bias sections say.")
        return ("No evaluation for bias, toxicity, memorisation or safety was done (the Privacy and Bias sections "
                "name the command that measures the first and the last); it may reproduce training text verbatim.")


class OtherSections(PretrainingSections):
    """A training run that recorded neither a corpus nor a task: the pretraining layout, claiming nothing."""

    objective = NOT_RECORDED

    def what(self) -> str:
        return "A training run of the workbench."

    def missing_yardstick(self) -> list[str]:
        return []

    def intended_use(self) -> list[str]:
        return ["A research run of the workbench; its purpose is recorded in its spec only."]

    def limitations(self) -> list[str]:
        return []

    def untested(self) -> str:
        return KindSections.untested(self)


def corpus_phrase(run: RunFolder) -> str:
    """The run's corpus, as data/corpora.py names it."""
    name = lookup(run.data, "corpus") or run.param("corpus")
    if name is None:
        return f"a corpus {NOT_RECORDED}"
    from workbench.data.corpora import corpus_phrase as phrase  # here: the card must not make `runs` load torch

    return phrase(name, max_files=lookup(run.data, "corpus_options", "max_files"), hf_name=run.param("hf_name"),
                  paths=run.param("corpus_paths"), python_version=lookup(run.environment, "python", "version"))


def corpus_limitation(run: RunFolder) -> str:
    name = lookup(run.data, "corpus") or run.param("corpus")
    if name is None:
        return f"Its training corpus is {NOT_RECORDED}."
    from workbench.data.corpora import corpus_limitation as limitation

    return limitation(name, corpus_phrase(run), tokenizer_kind=lookup(run.data, "tokenizer", "kind"))


def tokenizer_phrase(tokenizer: object) -> str:
    if not isinstance(tokenizer, dict):
        return NOT_RECORDED
    parts = [str(tokenizer.get("kind", "?"))]
    if "vocab_size" in tokenizer:
        parts.append(f"{number(tokenizer['vocab_size'])} ids")
    if "fingerprint" in tokenizer:
        parts.append(f"fingerprint {tokenizer['fingerprint']}")
    return ", ".join(parts)


def _architecture_phrase(run: RunFolder) -> str:
    preset = run.param("preset")
    parameters = lookup(run.metrics, "parameters")
    arch = lookup(run.checkpoint_config, "architecture") or "model"
    details = [d for d in (f"preset {preset}" if preset else None,
                           f"{number(parameters)} parameters" if is_number(parameters) else None) if d]
    return f"{arch} ({', '.join(details)})" if details else arch


def _ms_per_step(run: RunFolder) -> object:
    return (run.compute or {}).get("ms_per_step", "?")


def _init_phrase(init: dict) -> str:
    """Continued pretraining: where the starting weights came from, with the hashes that identify them."""
    hashes = ", ".join(f"{what} sha256 `{str(init.get(key))[:16]}`" for what, key in
                       (("config", "config_sha256"), ("weights", "weights_sha256")) if init.get(key))
    mapped = " (a Llama, computed by the workbench Decoder)" if init.get("mapped") == "workbench-decoder" else ""
    return f"`{init.get('source')}`{mapped}: {hashes}" if hashes else f"`{init.get('source')}`{mapped}"
