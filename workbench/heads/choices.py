"""The head and pooling names a fine-tuning setting chooses among; imports nothing heavy (see data/choices.py)."""

HEADS = ("sequence_classification", "token_classification", "regression", "lm")
POOLINGS = ("mean", "last", "first")
