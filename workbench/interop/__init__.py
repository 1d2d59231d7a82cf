"""Hugging Face in and out: the only room that knows Hugging Face folder formats, weight names and the hub.

Export turns a workbench run into a folder `transformers` (and `peft`) load with no workbench code;
import turns a Hugging Face folder or `hf:<repo-id>` into a model the workbench trains, fine-tunes
and probes.
"""
