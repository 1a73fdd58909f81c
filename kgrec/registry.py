"""Name -> class registries: how models, split strategies and losses are found by the name a
config gives them.

A registry belongs to the layer whose things it holds (``kgrec.models.MODELS``,
``kgrec.data.SPLITS``, ``kgrec.train.LOSSES``); this module is only the mechanism, in the
bottom layer so that any layer can own one. Things register themselves where they are
defined::

    @MODELS.register("popularity")
    class Popularity(RecModel): ...

so adding one is its module (and its test): the config check, the CLI's help and the
trainer all read the registry. Like pykeen's ``class_resolver``, lookups are by name and the
error for an unknown name lists the registered ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from kgrec.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Registered things of one kind, by name.

    Args:
        kind: what the registry holds (for messages), e.g. ``"model"``.
        field: the config field that names one (for messages), e.g. ``"model.name"``.
    """

    def __init__(self, kind: str, field: str) -> None:
        self.kind, self.field = kind, field
        self._items: dict[str, T] = {}

    def register(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator: register the decorated object under ``name`` (and set its ``name``
        attribute when it is a class without one of its own). Registering a name twice is an
        error unless ``replace`` (a test redefining its model, a user overriding a
        built-in)."""

        def deco(obj: T) -> T:
            self.add(name, obj, replace=replace)
            return obj

        return deco

    def add(self, name: str, obj: T, *, replace: bool = False) -> None:
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"{self.kind} name {name!r}: letters, digits, '_' and '-' only")
        if name in self._items and not replace and self._items[name] is not obj:
            raise ValueError(f"{self.kind} {name!r} is already registered "
                             f"({self._items[name]!r}); pass replace=True to override it")
        if isinstance(obj, type) and "name" not in vars(obj):
            obj.name = name  # type: ignore[attr-defined]
        self._items[name] = obj

    def get(self, name: str) -> T:
        """The object registered as ``name``; :class:`ConfigError` naming the field and the
        registered names otherwise."""
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(f"{self.field}: {name!r} is not one of {self.names()}",
                              field=self.field) from None

    def check(self, name: str) -> None:
        """Raise :class:`ConfigError` unless ``name`` is registered."""
        self.get(name)

    def names(self) -> list[str]:
        """Registered names, in registration order (built-ins first)."""
        return list(self._items)

    def summary(self, name: str) -> str:
        """The first sentence of the registered object's docstring, on one line (for
        ``--help``): its first paragraph up to the first full stop, however the docstring
        wraps it."""
        doc = (getattr(self._items[name], "__doc__", None) or "").strip()
        para = " ".join(doc.split("\n\n", 1)[0].split())
        cut = para.find(". ")
        return (para if cut < 0 else para[:cut]).rstrip(".")

    def help(self, sep: str = " | ") -> str:
        """``name1 | name2 | ...``, for a command-line option's help text."""
        return sep.join(self.names())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"
