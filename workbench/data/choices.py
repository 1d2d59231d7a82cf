"""The names a data setting chooses among, in a module that imports nothing heavy.

The settings dataclasses (and so `workbench run`'s spec check) read them before torch or
`datasets` loads; the modules that implement each choice import them from here.
"""

CORPORA = ("stdlib", "text", "hf")
TOKENIZERS = ("byte", "char", "bpe")
TASKS = ("docstring-topic", "token-type", "function-size", "file", "hf")
PII_MODES = ("keep", "mask")  # what pretraining does with the private data the corpus scan finds
IMAGE_SETS = ("digits", "mnist-5k", "imagefolder", "hf")  # images.py loads each
