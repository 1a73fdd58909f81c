"""Deprecated: the names once imported from here, each of which warns naming where it is
defined now (:mod:`kgrec.data.folds`, :mod:`kgrec.data.strategies`,
:mod:`kgrec.data.prepare`); ``kgrec.data`` has the public ones."""

from kgrec.errors import moved_names

_FOLDS = ("TEST", "TRAIN", "VALID", "CTRRows", "EvalSet", "Pairs", "Split", "fingerprint",
          "made_from_training")
_STRATEGIES = ("SPLITS", "check_split_params", "ctr_split", "split")

__getattr__ = moved_names({**{n: ("kgrec.data.folds", n) for n in _FOLDS},
                           **{n: ("kgrec.data.strategies", n) for n in _STRATEGIES},
                           "split_for": ("kgrec.data.prepare", "split_for")})
