"""The card's sections for a vision pretraining run: a ViT pretrained by masked autoencoding or by classification."""

from __future__ import annotations

from workbench.data.image_sources import image_set_limitation, image_set_phrase
from workbench.runs.card.common import KindSections
from workbench.runs.card.format import NOT_RECORDED, number, shown_path, table
from workbench.runs.outputs import CHECKPOINT_DIR, MODEL_CONFIG_FILE, WEIGHTS_FILE
from workbench.runs.run_folder import RunFolder, is_number, lookup

CONFIG_SHOWN = ("image_size", "patch_size", "channels", "n_layer", "n_head", "n_kv_head", "d_model", "mlp_hidden",
                "pooling")
SPLITS = ("train", "validation", "test")


class VisionPretrainingSections(KindSections):
    @property
    def mae(self) -> bool:
        return self.run.param("objective") != "supervised"

    def objective(self) -> str:
        if not self.mae:
            return "supervised classification of the image set's labels (cross-entropy on the pooled state)"
        ratio = self.run.param("mask_ratio")
        shown = f"{ratio:.0%}" if is_number(ratio) else "a share"
        return (f"masked autoencoding (He et al. 2021): {shown} of each image's patches hidden, their pixels "
                "(normalized per patch) reconstructed from the rest by a light decoder; mean squared error on the "
                "hidden patches; no label read")

    def what(self) -> str:
        how = "masked autoencoding" if self.mae else "supervised classification"
        return f"A {vit_phrase(self.run)} pretrained by {how} on the image set `{image_set_name(self.run)}`."

    def model(self) -> list[str]:
        run = self.run
        config = lookup(run.checkpoint_config, "config")
        rows = [
            ("objective", self.objective()),
            ("architecture", "vit: patch embeddings, learned positions, the decoder's blocks without the causal mask"
             if lookup(run.checkpoint_config, "architecture") == "vit" else NOT_RECORDED),
            ("started from", "fresh weights (seeded)"),
            ("preset", run.param("preset") or NOT_RECORDED),
            ("encoder parameters", number(lookup(run.metrics, "parameters"))
             if is_number(lookup(run.metrics, "parameters")) else NOT_RECORDED),
            ("configuration", ", ".join(f"{k}={config[k]}" for k in CONFIG_SHOWN if k in config)
             if isinstance(config, dict) else f"{NOT_RECORDED} ({CHECKPOINT_DIR}/{MODEL_CONFIG_FILE} missing)"),
        ]
        decoder = lookup(run.data, "mae_decoder")
        if self.mae:
            rows.append(("MAE decoder (dropped after pretraining)", ", ".join(f"{k}={v}" for k, v in decoder.items()
                                                                             if v is not None)
                         if isinstance(decoder, dict) else NOT_RECORDED))
        load = f"load with `workbench.load(\"{shown_path(run.path)}\")`: the ViT and its image inputs"
        rows.append(("weights", f"`{CHECKPOINT_DIR}/{WEIGHTS_FILE}` (the encoder alone); {load}" if run.has_checkpoint
                     else NOT_RECORDED))
        return table(rows)

    def data(self) -> list[str]:
        return image_set_rows(self.run, labels_read=not self.mae)

    def missing_yardstick(self) -> list[str]:
        metrics = self.run.metrics or {}
        loss, baseline = metrics.get("val_loss"), metrics.get("baseline_val_loss")
        if self.mae and is_number(loss) and is_number(baseline):
            verdict = "better than" if loss < baseline else "no better than"
            return ["", f"Yardstick: predicting every hidden patch as its mean (0 in normalized pixels) scores "
                        f"{baseline:.4f} on the same validation masks, the model {loss:.4f}: it reconstructs hidden "
                        f"patches {verdict} that (baseline_val_loss)."]
        if not self.mae:
            chance = _chance_phrase(self.run.data)
            accuracy = metrics.get("val_accuracy")
            shown = f"{accuracy:.3f}" if is_number(accuracy) else NOT_RECORDED
            return ["", f"It classifies {shown} of the validation images right (val_accuracy); {chance}."]
        return ["", f"The yardstick (baseline_val_loss) is {NOT_RECORDED}."]

    def data_seen(self) -> list[tuple[str, str]]:
        compute = self.run.compute or {}
        images, tokens = compute.get("train_images"), compute.get("train_tokens")
        return [("images seen", number(images) if images is not None else NOT_RECORDED),
                ("image tokens seen (patches and class token)", number(tokens) if tokens is not None else NOT_RECORDED)]

    def throughput(self) -> str:
        rate = self.run.throughput
        return (f"{number(rate.per_second)} images/s, {(self.run.compute or {}).get('ms_per_step', '?')} ms/step"
                if rate else NOT_RECORDED)

    def intended_use(self) -> list[str]:
        return [f"A small research base for the workbench's vision fine-tuning notebook (`finetune-vision.ipynb`, "
                f"against its `scratch:` control), pretrained on `{image_set_name(self.run)}`. It is not an image "
                "classifier or feature extractor to deploy."]

    def limitations(self) -> list[str]:
        run = self.run
        items = [image_set_limitation(image_set_name(run))]
        config = lookup(run.checkpoint_config, "config") or {}
        if config.get("image_size"):
            items.append(f"It reads {config['image_size']}x{config['image_size']} images with {config.get('channels')} "
                         "channel(s): larger or colour images are resized and converted first, and lose what does not "
                         "survive that.")
        images, train = lookup(run.compute, "train_images"), lookup(run.data, "image_set", "sizes", "train")
        if is_number(images) and is_number(train) and train:
            items.append(f"It saw {number(images)} training images: {images / train:.3g} passes over "
                         f"{number(train)}; one run (one seed) cannot show how much another would differ.")
        loss, baseline = lookup(run.metrics, "val_loss"), lookup(run.metrics, "baseline_val_loss")
        if self.mae and is_number(loss) and is_number(baseline) and loss >= baseline:
            items.append("Its reconstructions do no better than predicting each hidden patch as its mean: it has "
                         "learnt little of the images.")
        if self.mae:
            items.append("An MAE's loss is in per-patch normalized pixels: it compares across runs of one patch size "
                         "only, and it says little of how well the features transfer (fine-tuning measures that).")
        return items

    def untested(self) -> str:
        return ("No evaluation beyond the validation split (no robustness, bias or out-of-distribution tests); the "
                "test split was held out for fine-tuning runs to score on.")


def image_set_name(run: RunFolder) -> str | None:
    return lookup(run.data, "image_set", "image_set") or run.param("image_set")


def vit_phrase(run: RunFolder) -> str:
    preset, parameters = run.param("preset"), lookup(run.metrics, "parameters")
    details = [d for d in (f"preset {preset}" if preset else None,
                           f"{number(parameters)} encoder parameters" if is_number(parameters) else None) if d]
    return f"ViT ({', '.join(details)})" if details else "ViT"


def image_set_rows(run: RunFolder, *, labels_read: bool, label_fraction: float | None = None) -> list[str]:
    """The Data section of a vision run: the set and its source, the splits, the classes, the inputs."""
    data = run.data
    described = lookup(data, "image_set")
    if not isinstance(described, dict):
        return [f"The data record (data.json) is {NOT_RECORDED}."]
    sizes = described.get("sizes") if isinstance(described.get("sizes"), dict) else {}
    options = described.get("options") if isinstance(described.get("options"), dict) else {}
    phrase = image_set_phrase(described.get("image_set"), data_dir=options.get("data_dir"),
                              hf_name=options.get("hf_name"))
    roles = {"train": "labelled, trained on" if labels_read else "trained on, labels not read",
             "validation": "evaluated on", "test": "held out: never trained on"}
    rows = [("image set", phrase), ("fingerprint", described.get("fingerprint") or NOT_RECORDED)]
    if label_fraction is not None:
        rows.append(("label fraction", f"{label_fraction:g} (a stratified, seeded share of the train split)"))
    rows += [(f"{split} split", f"{number(sizes[split])} images ({roles[split]})" if is_number(sizes.get(split))
              else NOT_RECORDED) for split in SPLITS]
    held_out = ", ".join(f"{k} {options[k]}" for k in ("seed", "validation_fraction", "test_fraction") if k in options)
    rows.append(("held-out splits drawn by", f"{held_out} (stratified by class)" if held_out else NOT_RECORDED))
    classes = described.get("classes")
    if isinstance(classes, list) and classes:
        rows.append(("classes", f"{len(classes)}: " + ", ".join(map(str, classes))))
    stats = described.get("stats") if isinstance(described.get("stats"), dict) else {}
    size, channels = described.get("image_size"), described.get("channels")
    source = described.get("normalization_from") or described.get("image_set")
    rows.append(("model input", f"{channels}x{size}x{size}, normalized per channel by mean "
                                f"{_rounded(stats.get('mean'))} and std {_rounded(stats.get('std'))} of the `{source}` "
                                "train split's pixels" if size and stats else NOT_RECORDED))
    augment = described.get("augment")
    rows.append(("augmentation", NOT_RECORDED if augment is None else "none" if not augment else
                 "a random shift of up to 1/8 of the image each way" + (", and a horizontal flip half the time"
                                                                         if described.get("flip") else "")
                 + ", seeded by (seed, epoch, image)"))
    return table(rows)


def _rounded(values: object) -> str:
    return ", ".join(f"{v:.4f}" for v in values) if isinstance(values, list) and values else NOT_RECORDED


def _chance_phrase(data: object) -> str:
    counts = lookup(data, "image_set", "class_counts", "validation")
    if not isinstance(counts, dict) or not counts or not sum(counts.values()):
        return f"chance is {NOT_RECORDED}"
    majority, count = max(counts.items(), key=lambda kv: kv[1])
    return (f"chance is {1 / len(counts):.3f} over {len(counts)} classes, and always answering the majority class "
            f"`{majority}` scores {count / sum(counts.values()):.3f}")
