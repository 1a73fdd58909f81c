"""The model registry, :data:`MODELS` (in its own module so that a model's module can
register itself without importing the package that lists the built-ins)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kgrec.config import add_model_options
from kgrec.registry import Registry

if TYPE_CHECKING:
    pass


class ModelRegistry(Registry["type[RecModel]"]):
    """Models by name; registering one also registers its options dataclass (its
    ``Options``) as the config's ``model.<name>`` sub-section."""

    def add(self, name: str, obj: Any, *, replace: bool = False) -> None:
        super().add(name, obj, replace=replace)
        add_model_options(name, getattr(obj, "Options", None))


MODELS = ModelRegistry("model", "model.name")
