"""Deprecated: moved to :mod:`kgrec.train.api`. Each name once imported from here still
loads, with one warning naming where it lives now."""

from kgrec.errors import moved_names

__getattr__ = moved_names({
    "model_from": ("kgrec.train.api", "model_from"),
    "recommender_from": ("kgrec.train.api", "recommender_from"),
    "train": ("kgrec.train.api", "train"),
})
