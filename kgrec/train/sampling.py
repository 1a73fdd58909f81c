"""Deprecated: moved to :mod:`kgrec.data.sampling`. Each name once imported from here still
loads, with one warning naming where it lives now."""

from kgrec.errors import moved_names

__getattr__ = moved_names({
    "NegativeSampler": ("kgrec.data.sampling", "NegativeSampler"),
})
