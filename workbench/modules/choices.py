"""The objective, strategy, precision and optimizer names a training setting chooses among; imports nothing heavy.

strategies.py keys its behaviour table on STRATEGIES (and checks that it does); the settings
dataclasses, and so `workbench run`'s spec check, read the names without loading Lightning.
"""

CAUSAL_LM, MASKED_LM = "causal_lm", "masked_lm"
OBJECTIVES = (CAUSAL_LM, MASKED_LM)  # a decoder predicts the next token, an encoder the masked ones
STRATEGIES = ("full", "linear_probe", "gradual_unfreeze", "lora")
PRECISIONS = ("32-true", "bf16-mixed")
PRETRAIN_PRECISIONS = (*PRECISIONS, "auto")  # auto: measured per model and batch shape (modules/precision.py)
# How several processes share training (modules/distributed.py): auto is DDP when there are several, else none.
DISTRIBUTED_STRATEGIES = ("auto", "ddp", "fsdp")
OPTIMIZERS = ("adamw", "muon")  # muon: Muon on the hidden matrices, AdamW on the rest (modules/optim.py)
MINILM, SCRATCH = "minilm", "scratch:"  # a base that is a name (base_model.py loads it), the fresh-weights prefix
NAMED_BASES = (MINILM,)
HUB_PREFIX = "hf:"  # hf:<repo-id>[@revision]: a Hugging Face hub model, from the local cache or the hub
MAE, SUPERVISED = "mae", "supervised"
VISION_OBJECTIVES = (MAE, SUPERVISED)  # masked autoencoding of unlabelled images, or classification of labelled ones
VISION_POOLINGS = ("cls", "mean")  # a ViT's summary of an image: its class token's state, or the mean over tokens
