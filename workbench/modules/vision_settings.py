"""What a vision pretraining run and a vision fine-tuning run are, each as one frozen dataclass: the notebooks'
parameters, a spec's values and the recipes' input, so each setting's name, type, default and valid values
live here.

Every value is checked on construction, all problems at once, before an image is read or a base is loaded.
The held-out images are drawn by `split_seed`, not `seed`: seeds vary initialisation, order and the label
subsample over one fixed test split, and a base pretrained on the same image set with the same split never
saw the test images a fine-tuning run scores on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Iterator

from workbench.data.choices import IMAGE_SETS
from workbench.errors import RequestError
from workbench.models.mae import MAE_DECODER_PRESETS, MAEDecoderConfig, kept_count
from workbench.models.vit import VIT_PRESETS, ViTConfig
from workbench.modules.choices import (
    MAE,
    OPTIMIZERS,
    PRECISIONS,
    PRETRAIN_PRECISIONS,
    SCRATCH,
    STRATEGIES,
    VISION_OBJECTIVES,
    VISION_POOLINGS,
)
from workbench.modules.optim import OptimConfig
from workbench.modules.tracking_settings import tracking_problems, tracking_setting, tracking_uri_setting
from workbench.settings import Settings, setting

if TYPE_CHECKING:
    from workbench.modules.strategies import Strategy

# None of these changes the weights.
RESUME_MAY_CHANGE = ("checkpoint_every", "final_eval_batches", "reconstructions", "tracking", "tracking_uri")
ATTENTION_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj"]  # LoRA's default targets in a ViT


@dataclass(frozen=True)
class ImageSetSettings(Settings):
    """The image set and its held-out splits: the same fields, checked the same way, in both notebooks."""

    what = "image set settings"

    seed: int = setting(0, "seeds initialisation, batch order, augmentation (and the label subsample): the same "
                        "seed gives the same metrics")
    image_set: str = setting("digits", " | ".join(IMAGE_SETS) + ": digits = scikit-learn's 1,797 8x8 digits, "
                             "mnist-5k = 5,000 28x28 MNIST digits (both offline)", choices=IMAGE_SETS,
                             section="data")
    data_dir: str | None = setting(None, 'a folder with one sub-folder of images per class, for image_set='
                                   '"imagefolder"', path="folder")
    hf_name: str | None = setting(None, 'a Hugging Face image dataset, for image_set="hf" (its cache, or the hub)')
    hf_config: str | None = setting(None, 'its configuration, for image_set="hf"')
    image_column: str = setting("image", 'the image column, for image_set="hf"')
    label_column: str = setting("label", 'the label column, for image_set="hf"')
    max_examples: int | None = setting(None, "a stratified, seeded cap on the set's images (all splits); None = "
                                       "every image", minimum=3)
    validation_fraction: float = setting(0.1, "share of the images held out for validation", above=0, below=1)
    test_fraction: float = setting(0.1, "share of the images held out for test (never trained on)", above=0,
                                   below=1)
    split_seed: int = setting(0, "draws the held-out splits (stratified): keep it fixed across seeds, and equal to "
                              "the base's when fine-tuning on its image set, so no test image was pretrained on",
                              minimum=0)
    augment: bool = setting(True, "shift each training image by up to 1/8 of its size, seeded by (seed, epoch, "
                            "image)")
    flip: bool = setting(False, "also mirror training images half the time (off: digits are not symmetric)")

    def more_problems(self) -> Iterator[str]:
        if self.validation_fraction + self.test_fraction >= 1:
            yield (f"validation_fraction + test_fraction = {self.validation_fraction} + {self.test_fraction} "
                   "leaves no image to train on; together they must be below 1")
        if self.image_set == "imagefolder" and not self.data_dir:
            yield 'image_set="imagefolder" needs data_dir: a folder with one sub-folder of images per class'
        if self.image_set == "hf" and not self.hf_name:
            yield 'image_set="hf" needs hf_name: the Hugging Face image dataset to read, e.g. "ylecun/mnist"'
        for name, applies, default in (("data_dir", "imagefolder", None), ("hf_name", "hf", None),
                                       ("hf_config", "hf", None), ("image_column", "hf", "image"),
                                       ("label_column", "hf", "label")):
            value = getattr(self, name)
            if value != default and self.image_set != applies:
                yield f"{name}={value!r} applies to image_set={applies!r} only, not {self.image_set!r}"

    def required_paths(self) -> dict[str, list[str]]:
        paths = super().required_paths()
        if self.image_set != "imagefolder":
            paths.pop("data_dir", None)
        return paths

    def image_options(self) -> dict[str, Any]:
        """`load_images`' options for this set (its splits drawn by split_seed)."""
        options: dict[str, Any] = {"seed": self.split_seed, "validation_fraction": self.validation_fraction,
                                   "test_fraction": self.test_fraction, "max_examples": self.max_examples}
        if self.image_set == "imagefolder":
            options["data_dir"] = self.data_dir
        if self.image_set == "hf":
            options.update(hf_name=self.hf_name, hf_config=self.hf_config, image_column=self.image_column,
                           label_column=self.label_column)
        return options


@dataclass(frozen=True)
class VisionPretrainSettings(ImageSetSettings):
    what = "vision pretraining settings"

    objective: str = setting(MAE, "mae | supervised: masked autoencoding (hide mask_ratio of each image's patches, "
                             "reconstruct their normalized pixels; no labels read) or classifying the set's labels "
                             "(a base to fine-tune on another set)", choices=VISION_OBJECTIVES, section="model")
    preset: str = setting("tiny", " | ".join(VIT_PRESETS) + " (tiny: 8x8 grayscale, small: 28x28)",
                          choices=tuple(VIT_PRESETS))
    image_size: int | None = setting(None, "resize images to this (a multiple of the patch size); None = the "
                                     "preset's", minimum=1)
    model_overrides: dict[str, Any] = setting({}, "any ViTConfig field over the preset, e.g. {n_layer: 4, "
                                              "pooling: mean}")
    mask_ratio: float = setting(0.75, "mae: share of each image's patches hidden from the encoder", above=0, below=1)
    decoder_overrides: dict[str, Any] = setting({}, "mae: any MAEDecoderConfig field over the preset's decoder "
                                                "(thrown away after pretraining), e.g. {n_layer: 2}")
    batch_size: int = setting(64, "images per batch", minimum=1, section="optimisation")
    max_steps: int = setting(3000, "optimizer steps", minimum=1)
    optimizer: str = setting("adamw", "adamw | muon (Muon on the block matrices, AdamW on the rest)",
                             choices=OPTIMIZERS)
    learning_rate: float = setting(1e-3, "peak learning rate", above=0)
    min_lr_ratio: float = setting(0.1, "the cosine schedule ends at learning_rate * min_lr_ratio", minimum=0,
                                  maximum=1)
    warmup_steps: int = setting(100, "linear warmup steps", minimum=0)
    weight_decay: float = setting(0.05, "decoupled decay on matrices only (MAE's 0.05)", minimum=0)
    grad_clip: float = setting(1.0, "clip the gradient norm to this; 0 = no clipping", minimum=0)
    precision: str = setting("auto", "auto | 32-true | bf16-mixed: auto takes bf16-mixed where a measured step at "
                             "this model and batch shape is 1.2x faster, else fp32 (remembered per machine and "
                             "shape; compute.json and the card say which and why)", choices=PRETRAIN_PRECISIONS)
    eval_every: int = setting(250, "steps between periodic evaluations", minimum=1, section="evaluation")
    eval_batches: int = setting(3, "validation batches per periodic evaluation", minimum=1)
    final_eval_batches: int | None = setting(None, "validation batches of the final evaluation; None = the whole "
                                             "validation split", minimum=1)
    checkpoint_every: int = setting(500, "save the training state every N steps (0 = only at the end), so "
                                    "`workbench run --resume` continues a killed run", minimum=0)
    tracking: str = tracking_setting()
    tracking_uri: str | None = tracking_uri_setting()

    def more_problems(self) -> Iterator[str]:
        yield from super().more_problems()
        yield from tracking_problems(self.tracking, self.tracking_uri)
        config = None
        if self.preset in VIT_PRESETS and (self.image_size is None or self.image_size >= 1):
            config = _value(self.model_config)
            if isinstance(config, str):
                yield config
                config = None
        if self.objective == MAE and self.preset in MAE_DECODER_PRESETS:
            yield from _message(self.decoder_config)
            if config is not None and 0 < self.mask_ratio < 1:
                yield from _message(lambda: kept_count(config.num_patches, self.mask_ratio))
        if self.objective != MAE and (self.decoder_overrides or self.mask_ratio != 0.75):
            yield (f"mask_ratio and decoder_overrides apply to objective={MAE!r} only, not "
                   f"objective={self.objective!r} (leave them at their defaults)")
        if self.learning_rate > 0 and self.max_steps >= 1 and self.warmup_steps >= 0 and 0 <= self.min_lr_ratio <= 1 \
                and self.optimizer in OPTIMIZERS:
            yield from _message(self.optim_config)

    def model_config(self) -> ViTConfig:
        """The encoder: the preset, then image_size, then model_overrides."""
        size = {"image_size": self.image_size} if self.image_size is not None else {}
        return ViTConfig.from_preset(self.preset, **size, **self.model_overrides)

    def decoder_config(self) -> MAEDecoderConfig:
        return MAEDecoderConfig.from_preset(self.preset, **self.decoder_overrides)

    def optim_config(self) -> OptimConfig:
        return OptimConfig(learning_rate=self.learning_rate, min_lr_ratio=self.min_lr_ratio,
                           warmup_steps=min(self.warmup_steps, self.max_steps), max_steps=self.max_steps,
                           weight_decay=self.weight_decay, optimizer=self.optimizer)

    def identity(self) -> dict[str, Any]:
        """The settings that shape training: a run may only resume under the same ones."""
        return {k: v for k, v in asdict(self).items() if k not in RESUME_MAY_CHANGE}


@dataclass(frozen=True)
class VisionPretrainNotebook(VisionPretrainSettings):
    """notebooks/pretrain-vision.ipynb's parameters: the settings, then what the notebook shows."""

    reconstructions: int = setting(8, "mae: validation images shown with their hidden patches reconstructed",
                                   minimum=0, section="what the notebook shows")


@dataclass(frozen=True)
class VisionFinetuneSettings(ImageSetSettings):
    what = "vision fine-tuning settings"

    base: str = setting("", 'a vision pretraining run folder, or "scratch:<run folder>" (its architecture and '
                        'image inputs, fresh weights: the control); "" = the notebook pretrains a base first',
                        section="what to adapt")
    label_fraction: float = setting(1.0, "a stratified, seeded share of the training labels", above=0, maximum=1,
                                    section="the labels")
    pooling: str | None = setting(None, "cls | mean: the class token's state or the mean over tokens; None = the "
                                  "base's own", choices=VISION_POOLINGS, section="the head")
    dropout: float = setting(0.1, "dropout before the head", minimum=0, below=1)
    strategy: str = setting("full", " | ".join(STRATEGIES) + ": full is MAE's protocol (its features are "
                            "weak under a linear probe)", choices=STRATEGIES, section="the strategy")
    layer_lr_decay: float | None = setting(None, "e.g. 0.75 (MAE's): each layer down learns 0.75x slower", above=0,
                                           maximum=1)
    unfreeze_every: int = setting(1, "gradual_unfreeze: epochs between unfreezing the next layer group", minimum=1)
    lora_rank: int = setting(8, "lora: adapter rank", minimum=1)
    lora_alpha: float = setting(16.0, "lora: adapter scale (alpha / rank multiplies the update)", above=0)
    lora_dropout: float = setting(0.0, "lora: dropout on the adapter input", minimum=0, below=1)
    lora_targets: list[str] | None = setting(None, "lora: module names to adapt; None = the attention projections "
                                             "(q_proj, k_proj, v_proj, o_proj)")
    batch_size: int = setting(64, "images per batch", minimum=1, section="optimisation")
    max_epochs: int = setting(20, "passes over the (labelled) training split: a small label fraction "
                            "wants more", minimum=1)
    learning_rate: float = setting(1e-3, "peak rate: ~1e-3 for full fine-tuning of the small ViTs, higher for a "
                                   "linear probe", above=0)
    weight_decay: float = setting(0.05, "AdamW decay", minimum=0)
    warmup_fraction: float = setting(0.1, "share of the steps spent warming up", minimum=0, below=1)
    grad_clip: float = setting(1.0, "clip the gradient norm to this; 0 = no clipping", minimum=0)
    precision: str = setting("32-true", "32-true | bf16-mixed", choices=PRECISIONS)
    tracking: str = tracking_setting()
    tracking_uri: str | None = tracking_uri_setting()

    def more_problems(self) -> Iterator[str]:
        yield from super().more_problems()
        yield from tracking_problems(self.tracking, self.tracking_uri)
        if self.lora_targets is not None and not all(isinstance(t, str) and t for t in self.lora_targets or [""]):
            yield f"lora_targets={self.lora_targets!r} must be a non-empty list of module names, or None"
        if self.base.startswith(SCRATCH) and not self.base.removeprefix(SCRATCH).strip():
            yield f'base={self.base!r} names no folder: give "scratch:<vision pretraining run folder>"'

    def required_paths(self) -> dict[str, list[str]]:
        paths = super().required_paths()
        folder = self.base.removeprefix(SCRATCH).strip()
        if folder:
            paths["base"] = [folder]
        return paths

    def base_pretraining(self, *, max_steps: int) -> VisionPretrainSettings:
        """The pretraining of a base for this run when it names none: the pretraining defaults (an MAE), on this
        run's image set, split and augmentation (so the base holds out exactly this run's test images), in this
        run's precision."""
        shared = {f.name: getattr(self, f.name) for f in fields(ImageSetSettings)}
        return VisionPretrainSettings(**shared, max_steps=max_steps, precision=self.precision)

    def strategy_value(self) -> Strategy:
        from workbench.modules.strategies import Strategy  # here: these settings are read with no framework loaded

        return Strategy(name=self.strategy, layer_lr_decay=self.layer_lr_decay, unfreeze_every=self.unfreeze_every,
                        lora_rank=self.lora_rank, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                        lora_targets=self.lora_targets or ATTENTION_PROJECTIONS)


@dataclass(frozen=True)
class VisionFinetuneNotebook(VisionFinetuneSettings):
    """notebooks/finetune-vision.ipynb's parameters: the settings, then how it pretrains a base when given none."""

    base_steps: int = setting(3000, 'base="": steps of the MAE base pretrained first (the pretraining notebook\'s '
                              "defaults otherwise, on this image set and split, in this precision)", minimum=1,
                              section="when base is empty")
    save_model: bool = setting(True, "write the fine-tuned weights (base + head, LoRA merged) into finetuned/ "
                               "(~4 bytes a parameter; workbench.load_finetuned reads them)",
                               section="what the notebook keeps")


def _value(build) -> Any:
    """What `build()` returns, or the message of the RequestError it raises."""
    try:
        return build()
    except RequestError as error:
        return str(error)


def _message(check) -> Iterator[str]:
    """The message of the RequestError `check` raises, if it does: rules written as raising checks."""
    result = _value(check)
    if isinstance(result, str):
        yield result
