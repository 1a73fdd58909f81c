"""The one place old config layouts and saved runs become today's.

* :func:`migrate_config`: a config dict in any old layout -> today's. The model's options
  used to be flat fields of the model section (``model.kg_items``); they live under the
  model's name now (``model.hgnn.kg_items``). A config in the flat layout predates the
  options' later defaults: an options dataclass's ``LEGACY`` mapping (hgnn:
  ``ranking: joint``, the model such a file was written for) fills the options it does not
  set.
* :func:`migrate_field`: an old dotted field name (``--set``, :meth:`Config.set`, search
  spaces) -> today's.
* :func:`migrate_run`: a saved run's ``recommender.json`` document -> today's (its config
  through :func:`migrate_config`; hgnn options saved before ``ranking`` existed get
  ``ranking: joint``, the model they were trained as).

Each old name warns once, through :func:`kgrec.errors.deprecated`, naming the new one.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from kgrec.config.model import ModelConfig, model_options
from kgrec.errors import ConfigError, deprecated

_FIXED = ("name", "dim", "layers")


def _option_names(cls: type | None) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} if cls is not None else set()


def migrate_config(doc: Any) -> Any:
    """``doc`` (a config mapping, in any old layout) in today's layout: a copy, ``doc`` is
    left as it is. Anything that is not an old layout (a wrong type, an unknown field) is
    left for the config to report."""
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict):
        return doc
    out = dict(doc)
    model = dict(out["model"])
    name = model.get("name", ModelConfig.name)
    if not isinstance(name, str):
        return doc  # reported by the model section
    opts = model.get(name)
    if opts is not None and not isinstance(opts, dict):
        return doc  # reported by the model section
    opts = dict(opts or {})
    registered = model_options()
    known = _option_names(registered[name]) if name in registered else None
    moved = False
    for k in [k for k in model if k not in (*_FIXED, name)]:
        if known is None:  # a model not registered yet: kept, checked once it is
            opts[k] = model.pop(k)
        elif k in known:
            deprecated(f"model.{k}", f"model.{name}.{k}", stacklevel=3)
            opts[k] = model.pop(k)
            moved = True
    if moved:
        for k, v in getattr(registered.get(name), "LEGACY", {}).items():
            opts.setdefault(k, v)
    if opts:
        model[name] = opts
    out["model"] = model
    return out


def migrate_field(path: str, model: str | None = None) -> str:
    """An old dotted field name -> today's (warning once); other names are returned as
    given. ``model``: the model the config is for (``None``: the one model with that option;
    an option of several is then an error naming them)."""
    section, _, rest = path.partition(".")
    if section != "model" or not rest or "." in rest or rest in _FIXED:
        return path
    owners = [n for n, cls in model_options().items() if rest in _option_names(cls)]
    if model is not None:
        if model not in owners:
            return path  # not one of its options: the config names what is
        owner = model
    elif len(owners) == 1:
        owner = owners[0]
    elif owners:
        raise ConfigError(f"{path} is an option of {' and '.join(owners)}: write "
                          + " or ".join(f"model.{o}.{rest}" for o in owners), field=path)
    else:
        return path
    new = f"model.{owner}.{rest}"
    deprecated(path, new, stacklevel=3)
    return new


#: ``model.safetensors`` keys a saved run wrote before they moved: old -> today's. The
#: adaptation's learned step sizes were saved among the model's weights (the trainer's
#: ``meta_learner`` submodule); the recommender keeps them apart from the model's now.
MOVED_TENSORS = {"state.meta_learner.log_lr": "adaptation.log_lr"}


def migrate_run(doc: Any, tensors: dict[str, Any] | None = None) -> Any:
    """A saved run in today's layout: its ``recommender.json`` document (a copy) with its
    config through :func:`migrate_config` and hgnn options saved without ``ranking``
    (written before the aligned ranking was hgnn's default) given ``ranking: joint``; and,
    when given, its ``model.safetensors`` tensors (``name -> tensor``, renamed in place by
    :data:`MOVED_TENSORS`). Returns the document, or ``(document, tensors)`` with tensors.
    This is the one place that knows what older versions saved."""
    out = doc
    if isinstance(doc, dict) and "config" in doc:
        out = copy.deepcopy(doc)
        conf = migrate_config(out["config"])
        model = conf.get("model") if isinstance(conf, dict) else None
        hgnn = model.get("hgnn") if isinstance(model, dict) else None
        if isinstance(hgnn, dict) and "ranking" not in hgnn:
            hgnn["ranking"] = "joint"
        out["config"] = conf
    if tensors is None:
        return out
    for before, now in MOVED_TENSORS.items():
        value = tensors.pop(before, None)
        if value is not None and now not in tensors:
            tensors[now] = value
    return out, tensors
