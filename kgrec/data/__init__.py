"""From a RecGraph to what models consume: splits, tensors, samplers.

The names are defined in :mod:`kgrec.data.folds` (the split's types and their assembly),
:mod:`kgrec.data.strategies` (:data:`SPLITS`, :func:`split`) and :mod:`kgrec.data.prepare`
(:func:`split_for`); kgrec's own modules import them from there. Importing the package
installs the data layer's whole-config check (:func:`check_split_params` of
``Config.data``, through :func:`kgrec.config.add_check`).
"""

import importlib

from kgrec.config import add_check

# The old module kgrec.data.split (deprecated names, kgrec.data.split's docstring) is loaded
# first: importing a submodule sets it on the package, and this way the name
# ``kgrec.data.split`` ends up as the function bound below, whoever imports the old module.
importlib.import_module("kgrec.data.split")

from kgrec.data.folds import (  # noqa: E402
    TEST,
    TRAIN,
    VALID,
    CTRRows,
    EvalSet,
    Pairs,
    Split,
    fingerprint,
)
from kgrec.data.prepare import split_for  # noqa: E402
from kgrec.data.strategies import (  # noqa: E402
    SPLITS,
    check_config,
    check_split_params,
    ctr_split,
    split,
)

add_check(check_config)

__all__ = ["SPLITS", "TEST", "TRAIN", "VALID", "CTRRows", "EvalSet", "Pairs", "Split",
           "check_split_params", "ctr_split", "fingerprint", "split", "split_for"]
