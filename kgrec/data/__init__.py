"""From a RecGraph to what models consume: splits, tensors, samplers."""

from kgrec.data.split import CTRRows, EvalSet, Split, ctr_split, fingerprint, split, split_for

__all__ = ["CTRRows", "EvalSet", "Split", "ctr_split", "fingerprint", "split", "split_for"]
