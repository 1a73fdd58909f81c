"""Typed fields from plain values: how a YAML, JSON, ``--set`` or Optuna value becomes a
config field's value (coerced to its type hint, or refused naming the field)."""

from __future__ import annotations

import types
import typing
from typing import Any

from kgrec.errors import ConfigError


def build(cls: type, doc: dict[str, Any], section: str) -> Any:
    if not isinstance(doc, dict):
        raise ConfigError(f"{section}: expected a mapping, got {type(doc).__name__}")
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(doc) - set(hints))
    if unknown:
        raise ConfigError(f"unknown field(s) {', '.join(f'{section}.{u}' for u in unknown)}"
                          f"; known: {', '.join(f'{section}.{h}' for h in hints)}",
                          field=f"{section}.{unknown[0]}")
    obj = cls(**{k: coerce(v, hints[k], f"{section}.{k}") for k, v in doc.items()})
    try:
        obj.check()
    except ConfigError as exc:
        if exc.field is None:  # name the field the message starts with, for its line
            head = str(exc).split(":", 1)[0]
            raise ConfigError(str(exc), field=head if head.startswith(f"{section}.")
                              else section) from None
        raise
    return obj


def coerce(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return coerce(value, a, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{path}: bad value {value!r}", field=path)
    if origin is list:
        (inner,) = typing.get_args(hint)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: expected a list, got {value!r}", field=path)
        return [coerce(v, inner, path) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true/false, got {value!r}", field=path)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise ConfigError(f"{path}: expected an integer, got {value!r}", field=path)
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            try:
                return float(str(value))
            except ValueError:
                raise ConfigError(f"{path}: expected a number, got {value!r}",
                                  field=path) from None
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}", field=path)
        return value
    return value
