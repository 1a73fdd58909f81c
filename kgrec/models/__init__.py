"""Recommender models: MF-BPR, LightGCN, the KG-aware GNN and the text-initialised
multi-task heterogeneous GNN, found by name in :data:`MODELS`.

A model registers itself where it is defined and builds itself from its config section::

    from kgrec.models import MODELS, RecModel

    @MODELS.register("popularity")
    class Popularity(RecModel):
        \"\"\"Items ranked by their training degree.\"\"\"
        @classmethod
        def from_config(cls, cfg, inputs, **kw): ...

after which ``Config(model="popularity")``, ``kgrec train --model popularity``, the CLI's
help, :func:`kgrec.train` and :class:`kgrec.Recommender` know it. What it can do beyond
ranking it declares by implementing the protocols of :mod:`kgrec.models.capabilities`.
"""

from __future__ import annotations

from kgrec.config import Config, ModelConfig, add_check
from kgrec.errors import ConfigError
from kgrec.models.base import Encoded, GraphInputs, Isolation, PairBatch, RecModel
from kgrec.models.capabilities import Attackable, FewShot, MultiTask, PlacesItems, has
from kgrec.models.losses import LOSSES
from kgrec.models.registry import MODELS

# the built-in models register themselves on import, in this order (the CLI lists them so)
# isort: off
from kgrec.models.mf import MF
from kgrec.models.lightgcn import LightGCN
from kgrec.models.kggnn import KGGNN
from kgrec.models.hgnn import HGNN
from kgrec.models.simgcl import SimGCL, XSimGCL
# isort: on

__all__ = ["HGNN", "KGGNN", "LOSSES", "MF", "MODELS", "Encoded", "GraphInputs", "Isolation",
           "LightGCN", "PairBatch", "RecModel", "SimGCL", "XSimGCL", "build_model",
           "check_config", "model_class"]


def model_class(name: str) -> type[RecModel]:
    """The registered model class called ``name`` (:class:`ConfigError` listing the
    registered names otherwise)."""
    return MODELS.get(name)


def build_model(cfg: ModelConfig, inputs: GraphInputs, *, device: str = "auto",
                progress: bool = True) -> RecModel:
    """The model ``cfg.name`` names, built by its class's ``from_config`` for ``inputs``
    (``device``/``progress``: for models that encode content)."""
    return model_class(cfg.name).from_config(cfg, inputs, device=device, progress=progress)


@add_check
def check_config(cfg: Config) -> None:
    """The config's demands on the model: a registered ``model.name`` with valid options
    (its ``model.<name>`` section), whose class has the capabilities the other sections ask
    for, and the class's own checks. Installed as a
    :func:`kgrec.config.add_check`, so :meth:`Config.check` runs it once models are loaded."""
    cls = model_class(cfg.model.name)
    cfg.model.check()  # its options, typed now that the model is registered
    LOSSES.check(cfg.train.loss)
    name = cfg.model.name
    if cfg.train.adv_eps > 0 and not has(cls, Attackable):
        able = [n for n in MODELS if has(MODELS.get(n), Attackable)]
        raise ConfigError(f"train.adv_eps: adversarial perturbation needs a model with "
                          f"layer-0 inputs to perturb ({' or '.join(able)}); model.name is "
                          f"{name!r}", field="train.adv_eps")
    if cfg.meta.mode != "off" and not has(cls, FewShot):
        able = [n for n in MODELS if has(MODELS.get(n), FewShot)]
        raise ConfigError(f"meta.mode: {cfg.meta.mode!r} needs a model that encodes a node "
                          f"from content ({' or '.join(able)}); model.name is {name!r}",
                          field="meta.mode")
    if getattr(LOSSES.get(cfg.train.loss), "shared", False) and (
            has(cls, MultiTask) or cfg.meta.mode == "meta"):
        raise ConfigError(f"train.loss: {cfg.train.loss} (negatives shared by the batch) is "
                          "for single-task ranking; task heads and meta-episodes sample "
                          "their negatives per pair (use bpr or softmax)", field="train.loss")
    cls.check_config(cfg)


def can_place_items(name: str) -> bool:
    """Whether the model ``name`` places brand-new items from text."""
    return name in MODELS and has(MODELS.get(name), PlacesItems)
