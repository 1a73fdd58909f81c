"""Deprecated: moved to :mod:`kgrec.recommender.explain`. Each name once imported from here still
loads, with one warning naming where it lives now."""

from kgrec.errors import moved_names

__getattr__ = moved_names({
    "Explainer": ("kgrec.recommender.explain", "Explainer"),
    "Explanation": ("kgrec.recommender.explain", "Explanation"),
    "seen_items": ("kgrec.recommender.catalogue", "seen_items"),
})
