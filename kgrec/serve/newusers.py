"""Deprecated: moved to :mod:`kgrec.recommender.newusers`. Each name once imported from here still
loads, with one warning naming where it lives now."""

from kgrec.errors import moved_names

__getattr__ = moved_names({
    "NewUserEncoder": ("kgrec.recommender.newusers", "NewUserEncoder"),
    "UserFoldIn": ("kgrec.recommender.newusers", "UserFoldIn"),
})
