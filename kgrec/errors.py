"""One family of errors, each naming what is wrong and where.

Every error kgrec raises on purpose is a :class:`KgrecError`. Errors about input data carry
the file, line and field so that a user can open the file and fix it.

Old names that still work go through the one deprecation helper here: :func:`deprecated`
warns (a :class:`KgrecDeprecationWarning` naming the new name), :func:`moved_names` builds
a module's ``__getattr__`` for names that moved or were renamed. Old config field names and
saved runs are migrated in one place, :mod:`kgrec.config.migrate`.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


class KgrecError(Exception):
    """Base class of every error kgrec raises on purpose.

    Attributes:
        exit_code: the command line's exit status for it (2: bad input or state).
    """

    exit_code = 2


class DataFormatError(KgrecError):
    """A source file is malformed: a bad line, a missing column, a NaN, an id out of range.

    Attributes:
        file: the file that is wrong (or ``None`` when the data came from memory).
        line: 1-based line number in that file, when known.
        field: the column or field that is wrong, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        where = []
        if self.file is not None:
            where.append(self.file if line is None else f"{self.file}:{line}")
        elif line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class SchemaError(KgrecError):
    """A graph schema is invalid, or a graph does not conform to its schema."""


class ConfigError(KgrecError):
    """A configuration value, recipe or search space is invalid; the message names the field.

    Attributes:
        field: the dotted field that is wrong (``train.lr``), when one is; a file reader uses
            it to name the line.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DatasetNotFoundError(KgrecError):
    """A dataset name, recipe or data directory cannot be found."""


class StoreError(KgrecError):
    """A store (local directory or Neo4j) cannot be read or written."""


class UnknownIdError(KgrecError):
    """An external user or item id that the graph does not know."""


class ModelError(KgrecError):
    """A model produced something that cannot be used: NaN or infinite scores, say."""


class KgrecDeprecationWarning(FutureWarning):
    """An old name that still works, for now (a ``FutureWarning``, so Python shows it to
    users by default; a ``DeprecationWarning`` raised inside a library is hidden)."""


def deprecated(old: str, new: str, *, stacklevel: int = 2) -> None:
    """Warn once (one :class:`KgrecDeprecationWarning`) that ``old`` is deprecated in favour of
    ``new``: "``old`` is deprecated: use ``new``". ``stacklevel`` counts as
    :func:`warnings.warn`'s does, from the function calling this one (2: its caller)."""
    warnings.warn(f"{old} is deprecated: use {new}", KgrecDeprecationWarning,
                  stacklevel=stacklevel + 1)


def moved_names(names: Mapping[str, tuple[str, str]], owner: str | None = None, *,
                values: Mapping[str, Any] | None = None) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for names that moved or were renamed::

        __getattr__ = moved_names({"Split": ("kgrec.data.folds", "Split")})

    ``names``: old name -> ``(module, new name)``; reading an old name warns (through
    :func:`deprecated`, naming ``module.new_name``) and returns the new one, imported when
    first asked for. ``owner``: the module that had the old names (default: the caller's).
    ``values``: for an old name whose value is not its replacement (an old tuple of what a
    registry now holds, say), what to return instead of importing the new name."""
    where = owner if owner is not None else sys._getframe(1).f_globals["__name__"]
    kept = dict(values or {})

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {where!r} has no attribute {name!r}")
        module, new = names[name]
        deprecated(f"{where}.{name}", f"{module}.{new}")
        if name in kept:
            return kept[name]
        return getattr(importlib.import_module(module), new)

    return __getattr__
