"""The fine-tuning card with an image set in place of a text task: the base is a ViT from a vision pretraining
run, its inputs are images normalized as the base was, and a batch counts images and their patch tokens."""

from __future__ import annotations

from pathlib import Path

from workbench.data.image_sources import image_set_limitation, image_set_phrase
from workbench.runs.card.finetuning import (
    FinetuningSections,
    base_architecture,
    is_scratch,
    metric_phrase,
    parameter_counts,
    strategy_phrase_of,
)
from workbench.runs.card.format import NOT_RECORDED, number, table
from workbench.runs.card.vision_pretraining import image_set_rows
from workbench.runs.outputs import CHECKPOINT_DIR
from workbench.runs.run_folder import RunFolder, is_number, lookup

POOLING_NAMES = {"first": "cls (the class token's state)", "mean": "mean (over the image's tokens)",
                 "cls": "cls (the class token's state)"}


class VisionFinetuningSections(FinetuningSections):
    def base_name(self) -> str | None:
        """The base as given; a notebook given none pretrained one and recorded where (data.json's settings)."""
        return self.run.param("base") or lookup(self.run.data, "settings", "base")

    def what(self) -> str:
        fraction = self.run.param("label_fraction")
        share = f" ({fraction:g} of its training labels)" if is_number(fraction) else ""
        scratch = is_scratch(self.base)
        kind = f"A {base_architecture(self.base)} with random weights (scratch control)" if scratch else \
            f"The {base_architecture(self.base)} from `{self.base_name()}`" if self.base else "A vision base"
        return (f"{kind} fine-tuned to classify the image set `{self.task.get('name') or self.run.param('image_set')}`"
                f"{share} with the strategy `{self.run.param('strategy') or '?'}`.")

    def model(self) -> list[str]:
        run, base = self.run, self.base
        pooling = run.param("pooling") or base.get("default_pooling")
        rows = [
            ("base", f"`{self.base_name()}`" if self.base_name() else NOT_RECORDED),
            ("base architecture", base_architecture(base) if base else NOT_RECORDED),
            ("base weights", base.get("weights") or NOT_RECORDED),
            ("base parameters", number(base["parameters"]) if is_number(base.get("parameters")) else NOT_RECORDED),
            ("head", "a linear classifier on the pooled state, pooling "
                     + POOLING_NAMES.get(pooling, str(pooling) if pooling else NOT_RECORDED)),
            ("strategy", strategy_phrase_of(run)),
            ("parameters", parameter_counts(run.metrics or {})),
            ("weights", "not kept: a vision fine-tune records its metrics, curves and confusion matrix, not its "
                        "weights"),
        ]
        return [*table(rows), "", "### Base provenance", "", *self.base_provenance()]

    def base_provenance(self) -> list[str]:
        source = self.base.get("source") if isinstance(self.base.get("source"), str) else None
        if source is None:
            return [f"The base's origin is {NOT_RECORDED}."]
        folder = Path(source).parent if Path(source).name == CHECKPOINT_DIR else Path(source)
        base_run = RunFolder(folder)
        if base_run.data is None:
            return [f"Loaded from `{source}`; no workbench run folder there, so what it pretrained on is "
                    f"{NOT_RECORDED} here."]
        git = base_run.git
        commit = f"`{git['commit']}`" + (" (dirty)" if git.get("dirty") else "") if git.get("commit") else None
        objective = base_run.param("objective")
        described = lookup(base_run.data, "image_set")
        options = lookup(described, "options") or {}
        rows = [
            ("objective", f"{objective}" + (f", {base_run.param('mask_ratio'):.0%} of patches hidden"
                                            if objective == "mae" and is_number(base_run.param("mask_ratio")) else "")
             if objective else NOT_RECORDED),
            ("image set", image_set_phrase(lookup(described, "image_set"), data_dir=options.get("data_dir"),
                                           hf_name=options.get("hf_name")) if described else NOT_RECORDED),
            ("image set fingerprint", lookup(base_run.data, "fingerprint") or NOT_RECORDED),
            ("images seen", number(lookup(base_run.compute, "train_images"))
             if is_number(lookup(base_run.compute, "train_images")) else NOT_RECORDED),
            ("validation", metric_phrase(base_run.metrics, ("val_loss", "baseline_val_loss", "val_accuracy"))),
        ]
        if commit or base_run.environment is not None:
            rows.append(("git commit", commit or NOT_RECORDED))
        lines = [f"Architecture and image inputs from the workbench vision pretraining run `{folder}`"
                 + (" (its weights were NOT used: this is the from-scratch control)." if is_scratch(self.base)
                    else "."), "", *table(rows)]
        if base_run.has_model_card:
            lines += ["", f"Its own card: `{base_run.model_card_path}`."]
        return lines

    def data(self) -> list[str]:
        fraction = self.run.param("label_fraction")
        return image_set_rows(self.run, labels_read=True,
                              label_fraction=float(fraction) if is_number(fraction) else None)

    def data_seen(self) -> list[tuple[str, str]]:
        compute = self.run.compute or {}
        images, tokens = compute.get("train_examples_seen"), compute.get("train_tokens")
        return [("images seen", number(images) if images is not None else NOT_RECORDED),
                ("image tokens seen (patches and class token)", number(tokens) if tokens is not None else NOT_RECORDED)]

    def throughput(self) -> str:
        rate, compute = self.run.throughput, self.run.compute or {}
        return (f"{number(rate.per_second)} images/s, {compute.get('ms_per_step', '?')} ms/step" if rate
                else NOT_RECORDED)

    def intended_use(self) -> list[str]:
        name = self.task.get("name") or self.run.param("image_set") or "its image set"
        count = lookup(self.run.metrics, "train_examples")
        images = number(count) if is_number(count) else "its"
        return [f"A research measurement: how well this base, adapted with this strategy from {images} labelled "
                f"images, classifies `{name}`, to be compared with the other runs of its sweep (its scratch control, "
                "other strategies, label fractions, seeds). It is not a classifier to deploy."]

    def limitations(self) -> list[str]:
        from workbench.data.tasks.base import baseline_phrase  # here: the card must not make `runs` load torch

        task, items = self.task, []
        accuracy = lookup(self.run.metrics, "test_accuracy")
        items.append(baseline_phrase(task, accuracy if is_number(accuracy) else None))
        test = lookup(task, "sizes", "test")
        if is_number(test):
            items.append(f"The test split has {number(test)} images: differences of a few points between runs are "
                         "within noise; compare over seeds.")
        train = lookup(self.run.metrics, "train_examples")
        if is_number(train):
            items.append(f"Adapted from {number(train)} labelled training images only.")
        items.append(image_set_limitation(task.get("name")))
        if is_scratch(self.base):
            items.append("The base's weights were random (the scratch control): it measures what the labels alone "
                         "teach, not a pretrained model.")
        return items
