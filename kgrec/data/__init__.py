"""From a RecGraph to what models consume: splits, tensors, samplers.

Importing it installs the data layer's whole-config check (:func:`check_split_params` of
``Config.data``, through :func:`kgrec.config.add_check`).
"""

from kgrec.config import add_check

# through the module kgrec.data.split, so that the name ``kgrec.data.split`` ends up as the
# function, not that module (importing a submodule first sets it on the package)
from kgrec.data.split import (
    SPLITS,
    TEST,
    TRAIN,
    VALID,
    CTRRows,
    EvalSet,
    Pairs,
    Split,
    check_split_params,
    ctr_split,
    fingerprint,
    split,
    split_for,
)
from kgrec.data.strategies import check_config

add_check(check_config)

__all__ = ["SPLITS", "TEST", "TRAIN", "VALID", "CTRRows", "EvalSet", "Pairs", "Split",
           "check_split_params", "ctr_split", "fingerprint", "split", "split_for"]
