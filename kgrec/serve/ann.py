"""Deprecated: moved to :mod:`kgrec.recommender.ann`. Each name once imported from here still
loads, with one warning naming where it lives now."""

from kgrec.errors import moved_names

__getattr__ = moved_names({
    "AnnIndex": ("kgrec.recommender.ann", "AnnIndex"),
    "available": ("kgrec.recommender.ann", "available"),
})
