"""The model section: what every model has (``name``, ``dim``, ``layers``), and the named
model's own options in a sub-section under its name.

```yaml
model:
  name: hgnn
  dim: 64
  layers: 2
  hgnn:              # HGNN's options (kgrec.models.options.HGNNOptions)
    ranking: joint
    kg_items: cold
```

A model declares its options as a dataclass (its ``Options``, with a ``check()``), and the
models layer registers it here (:func:`add_model_options`) when the model registers, so the
config knows every model's options without importing the models. Until a model's options
are registered (``kgrec.config`` used alone) its sub-section is kept as given and checked
when they are (the models layer's config check).

The options used to be flat fields of this section (``model.id_dropout``); those names still
work, with a :class:`~kgrec.errors.KgrecDeprecationWarning`, wherever a config is written:
YAML/JSON files and saved runs, ``Config.set`` / ``--set`` and search spaces, all through
:mod:`kgrec.config.migrate`. In Python the options are ``cfg.model.options`` (or
``cfg.model.hgnn``, by the model's name); the old flat attributes (``cfg.model.id_dropout``)
are gone.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from kgrec.config.fields import build, coerce
from kgrec.errors import ConfigError

# model name -> its options dataclass (None: the model takes no options)
_OPTIONS: dict[str, type | None] = {}
_FIXED = ("name", "dim", "layers", "options")


def add_model_options(name: str, options: type | None) -> None:
    """Register model ``name``'s options dataclass (``None``: it takes none); the models
    layer does this when a model registers (``MODELS.register``)."""
    _OPTIONS[name] = options


def model_options() -> dict[str, type | None]:
    """Every registered model's options dataclass (or ``None``)."""
    return dict(_OPTIONS)


def _owners(attr: str) -> list[str]:
    """The registered models with an option called ``attr``."""
    return [n for n, cls in _OPTIONS.items()
            if cls is not None and attr in {f.name for f in dataclasses.fields(cls)}]


@dataclass
class ModelConfig:
    """The model.

    Attributes:
        name: a model registered in :data:`kgrec.models.MODELS`; built in: ``mf`` (MF-BPR),
            ``lightgcn``, ``kggnn`` (KG-aware heterogeneous GNN) and ``hgnn`` (``kggnn``
            with content inputs and multi-task heads).
        dim: embedding size.
        layers: propagation layers (ignored by ``mf``).
        options: the named model's options (its ``Options`` dataclass; ``None`` for a model
            without any), written under the model's name: ``model.hgnn.id_dropout``.
    """

    name: str = "kggnn"
    dim: int = 64
    layers: int = 2
    options: Any = None

    def __post_init__(self) -> None:
        self.resolve()

    def resolve(self) -> ModelConfig:
        """Type the options by the model's registered dataclass (defaults where none were
        given); a no-op until the model's options are registered."""
        name, opts = self.name, self.options
        if name not in _OPTIONS:
            return self
        cls = _OPTIONS[name]
        section = f"model.{name}"
        if cls is None:
            if opts:
                given = sorted(opts) if isinstance(opts, dict) else [type(opts).__name__]
                raise ConfigError(f"{section}: {name} takes no options (got {given})",
                                  field=section)
            object.__setattr__(self, "options", None)
        elif opts is None:
            object.__setattr__(self, "options", cls())
        elif isinstance(opts, dict):
            object.__setattr__(self, "options", build(cls, opts, section))
        elif not isinstance(opts, cls):
            raise ConfigError(f"{section}: expected {cls.__name__}, got {type(opts).__name__}",
                              field=section)
        return self

    def check(self) -> None:
        if self.dim < 1 or self.layers < 0:
            raise ConfigError("model.dim must be >= 1 and model.layers >= 0")
        self.resolve()
        if dataclasses.is_dataclass(self.options):
            self.options.check()

    # ------------------------------------------------------------- (de)serialise
    @classmethod
    def from_doc(cls, doc: Any) -> ModelConfig:
        """From a mapping: ``name``, ``dim``, ``layers`` and the sub-section named after the
        model (an old layout is migrated first: :func:`kgrec.config.migrate.migrate_config`)."""
        if not isinstance(doc, dict):
            raise ConfigError(f"model: expected a mapping, got {type(doc).__name__}",
                              field="model")
        hints = typing.get_type_hints(cls)
        fixed = {k: coerce(v, hints[k], f"model.{k}") for k, v in doc.items()
                 if k in ("name", "dim", "layers")}
        name = fixed.get("name", cls.name)
        opts = doc.get(name)
        if opts is not None and not isinstance(opts, dict):
            raise ConfigError(f"model.{name}: expected a mapping of {name}'s options",
                              field=f"model.{name}")
        extra = [k for k in doc if k not in ("name", "dim", "layers", name)]
        if extra:
            raise ConfigError(_unknown(name, extra[0]), field=f"model.{extra[0]}")
        return cls(**fixed, options=dict(opts) if opts else None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dim": self.dim, "layers": self.layers}
        if dataclasses.is_dataclass(self.options):
            out[self.name] = dataclasses.asdict(self.options)
        elif self.options:
            out[self.name] = dict(self.options)
        return out

    # ------------------------------------------------------------- dotted access
    def get_path(self, rest: str) -> Any:
        """``rest`` of ``model.<rest>``: a fixed field or ``<name>.<option>``."""
        if rest in ("name", "dim", "layers"):
            return getattr(self, rest)
        return getattr(self.options, self._option(rest))

    def set_path(self, rest: str, value: Any) -> None:
        """Set ``model.<rest>`` (coerced to its type); setting ``name`` to another model
        resets the options to that model's defaults."""
        if rest in ("name", "dim", "layers"):
            v = coerce(value, typing.get_type_hints(type(self))[rest], f"model.{rest}")
            if rest == "name" and v != self.name:
                object.__setattr__(self, "options", None)
            object.__setattr__(self, rest, v)
            self.check()
            return
        attr = self._option(rest)
        hint = typing.get_type_hints(type(self.options))[attr]
        setattr(self.options, attr, coerce(value, hint, f"model.{self.name}.{attr}"))
        self.options.check()

    def _option(self, rest: str) -> str:
        head, _, attr = rest.partition(".")
        if attr and head == self.name:
            name = attr
        elif not attr:
            name = head
        else:
            raise ConfigError(f"unknown config field 'model.{rest}': the model is "
                              f"{self.name!r}; its options are model.{self.name}.<option>")
        self.resolve()
        if not dataclasses.is_dataclass(self.options) or \
                name not in {f.name for f in dataclasses.fields(self.options)}:
            raise ConfigError(_unknown(self.name, name))
        return name

    # ------------------------------------------------------------- the options by name
    def __getattr__(self, attr: str) -> Any:
        # only reached for names that are not fields: cfg.model.hgnn, the options by the
        # model's name
        if attr.startswith("_") or attr in _FIXED:
            raise AttributeError(attr)
        opts = self.__dict__.get("options")
        if attr == self.__dict__.get("name") and opts is not None:
            return opts
        raise AttributeError(f"ModelConfig has no field {attr!r}"
                             + (f"; the model's options are cfg.model.options.{attr}"
                                if dataclasses.is_dataclass(opts) and attr in
                                {f.name for f in dataclasses.fields(opts)} else ""))


def _unknown(name: str, attr: str) -> str:
    owners = _owners(attr)
    known = ", ".join(f"model.{f}" for f in ("name", "dim", "layers"))
    cls = _OPTIONS.get(name)
    if cls is not None:
        known += f", model.{name}.<{'|'.join(f.name for f in dataclasses.fields(cls))}>"
    where = (f"; it is an option of {' and '.join(owners)} (model.{owners[0]}.{attr})"
             if owners else "")
    return (f"unknown config field 'model.{attr}': not one of model {name!r}'s{where}; "
            f"known: {known}")


def model_fields() -> dict[str, Any]:
    """``model.*`` dotted fields and their hints: the fixed ones and every registered
    model's ``model.<name>.<option>``."""
    out: dict[str, Any] = {f"model.{k}": v for k, v in
                           typing.get_type_hints(ModelConfig).items() if k != "options"}
    for name, cls in _OPTIONS.items():
        if cls is None:
            continue
        for k, hint in typing.get_type_hints(cls).items():
            out[f"model.{name}.{k}"] = hint
    return out
