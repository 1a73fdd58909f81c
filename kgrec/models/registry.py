"""The model registry, :data:`MODELS` (in its own module so that a model's module can
register itself without importing the package that lists the built-ins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kgrec.registry import Registry

if TYPE_CHECKING:
    from kgrec.models.base import RecModel

MODELS: Registry[type[RecModel]] = Registry("model", "model.name")
