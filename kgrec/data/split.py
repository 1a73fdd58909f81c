"""Train / validation / test splits of a RecGraph's interactions, built so nothing leaks.

The names that have always been importable from here: the types and their assembly are in
:mod:`kgrec.data.folds`, the strategies (:data:`SPLITS`, :func:`split`) in
:mod:`kgrec.data.strategies`, and :func:`split_for` (a config's data, loaded, split and
noised) in :mod:`kgrec.data.prepare`.
"""

from kgrec.data.folds import (
    TEST,
    TRAIN,
    VALID,
    CTRRows,
    EvalSet,
    Pairs,
    Split,
    fingerprint,
    made_from_training,
)
from kgrec.data.prepare import split_for
from kgrec.data.strategies import SPLITS, check_split_params, ctr_split, split

__all__ = ["SPLITS", "TEST", "TRAIN", "VALID", "CTRRows", "EvalSet", "Pairs", "Split",
           "check_split_params", "ctr_split", "fingerprint", "made_from_training", "split",
           "split_for"]
