"""Unsupervised domain adaptation building blocks (DACS/DAFormer/MIC style), as small pure functions."""

from distilkit.adapt.selftrain import (
    class_inconsistency,
    class_mix,
    masked_image,
    pseudo_labels,
    rcs_probabilities,
    strong_transform,
)

__all__ = ["class_inconsistency", "class_mix", "masked_image", "pseudo_labels", "rcs_probabilities", "strong_transform"]
