"""The sections of MODEL_CARD.md (assembled by runs/model_card.py).

`common` holds the sections every run has (reproduce, parameters, metrics, compute, environment);
`pretraining` and `finetuning` the ones that depend on what the run trained, each phrased by the
module that owns the concept (a corpus describes itself in data/corpora.py, a task in data/tasks);
`vision_pretraining` and `vision_finetuning` the same for runs on an image set (data/image_sources.py).
"""
