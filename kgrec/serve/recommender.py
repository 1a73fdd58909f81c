"""Deprecated: moved to :mod:`kgrec.recommender`. Each name once imported from here still
loads, with one warning naming where it lives now."""

from kgrec.errors import moved_names

__getattr__ = moved_names({
    "FORMAT": ("kgrec.recommender", "FORMAT"),
    "Recommendations": ("kgrec.recommender", "Recommendations"),
    "Recommender": ("kgrec.recommender", "Recommender"),
})
