"""Training: losses, negative sampling, the loop with early stopping and checkpoints."""

from kgrec.train.loop import graph_inputs, resolve_device, train, validate

__all__ = ["graph_inputs", "resolve_device", "train", "validate"]
