"""Deprecated: the names once imported from here, each of which warns naming where it is
defined now (:mod:`kgrec.data.folds`, :mod:`kgrec.data.strategies`,
:mod:`kgrec.data.prepare`); ``kgrec.data`` has the public ones."""

import warnings

from kgrec.errors import KgrecDeprecationWarning, moved_names

_FOLDS = ("TEST", "TRAIN", "VALID", "CTRRows", "EvalSet", "Pairs", "Split", "fingerprint",
          "made_from_training")
_STRATEGIES = ("SPLITS", "check_split_params", "ctr_split", "split")

__getattr__ = moved_names({**{n: ("kgrec.data.folds", n) for n in _FOLDS},
                           **{n: ("kgrec.data.strategies", n) for n in _STRATEGIES},
                           "split_for": ("kgrec.data.prepare", "split_for")})

# Until kgrec/serve/training.py imports Split and fingerprint from kgrec.data.folds (that
# module is being moved by another change, which switches its import), kgrec's own use of
# the old names stays quiet for users; pyproject's filterwarnings does the same for the
# tests, and tests/test_deprecation.py lists the module as the one not switched yet.
# Remove the three together.
warnings.filterwarnings("ignore", category=KgrecDeprecationWarning,
                        module=r"kgrec\.serve\.training\Z")
