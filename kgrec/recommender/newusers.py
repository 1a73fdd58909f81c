"""Placing users a trained model has never seen (:meth:`Recommender.add_users`).

A new user is encoded exactly as the few-shot evaluation encodes a held-out user: no id,
hearing only its own links (:class:`UserFoldIn`), its profile fused as a training user's is,
then adapted on its links where the model was trained to be (``meta.mode``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kgrec.config import Config
from kgrec.errors import ConfigError, DataFormatError
from kgrec.features.build import AttributeSchema


@dataclass
class UserFoldIn:
    """What a new user's propagated vector is built from.

    A propagation model's user vector is the mean of its layer-0 vector and its ``L``
    propagated ones, and layer ``l + 1`` reads only the items' layer-``l`` vectors, each
    weighted ``1 / sqrt(deg(u) deg(i))``. So a user who links to items ``S`` is
    ``scale * (start + sum_{i in S} items[i] / sqrt(|S| deg(i)))``.

    Attributes:
        start: ``[d]`` the layer-0 vector of a user the model has never seen, divided by
            ``L + 1``.
        scale: ``[d]`` what the readout multiplies a user vector by (hgnn's ranking head).
        items: ``[I, d]`` each item's layer vectors as users read them, summed over the
            layers and divided by ``L + 1``.
    """

    start: Tensor
    scale: Tensor
    items: Tensor

    def to(self, device: torch.device) -> UserFoldIn:
        return UserFoldIn(*(t.detach().to(device, torch.float32)
                            for t in (self.start, self.scale, self.items)))


class NewUserEncoder:
    """Encodes new users from their items and profiles as the trained model would.

    Args:
        fold_in: the trained model's :class:`UserFoldIn`.
        config: the config it was trained with (the model's, whose class encodes profiles,
            and ``meta``).
        state: its weights (what its class reads to encode a profile,
            :class:`~kgrec.models.capabilities.PlacesUsers`).
        profile: how it encodes a user's attributes (``None``: it reads no profiles).
        dataset: the dataset's name (its recipe's ``user_text`` template gives a profile its
            text).
        adaptation: the adaptation's learned log step sizes ``[d]``
            (:class:`~kgrec.models.adaptation.MetaLearner`; ``None``: no adaptation).
    """

    def __init__(self, fold_in: UserFoldIn, *, config: Config, state: Mapping[str, Tensor],
                 profile: AttributeSchema | None = None, dataset: str = "",
                 adaptation: Tensor | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.fold_in = fold_in.to(self.device)
        self.config = config
        self.state = state
        self.profile = profile
        self.dataset = dataset
        self.adaptation = adaptation

    def encode(self, ids: Sequence[str], links: Sequence[np.ndarray], item_degree: np.ndarray,
               item_embedding: Tensor, *,
               profiles: Sequence[Mapping[str, Any] | None] | None = None,
               seed: int = 0) -> Tensor:
        """The vectors ``[N, d]`` of new users.

        Args:
            ids: the users' ids (for error messages).
            links: per user, the distinct indices of its items.
            item_degree: ``[I]`` each item's number of training users (a new link counts
                in its item's degree too).
            item_embedding: ``[I, d]`` the model's item output vectors (the adaptation ranks
                against them).
            profiles: per user, its attributes or ``None`` (see :meth:`starts`).
            seed: for the adaptation's random negatives.

        Raises:
            ConfigError: a user has neither items nor a start to place it by.
        """
        starts = self.starts(ids, profiles)
        empty = [x for x, s, st in zip(ids, links, starts, strict=True)
                 if not len(s) and not bool(st.any())]
        if empty:
            raise ConfigError(f"add_users: {empty[:5]} have no items, and this model has "
                              "no starting vector for such a user (every item would score 0); "
                              "hgnn meta-trained on K = 0 episodes (meta.mode=meta) learns one")
        degree = item_degree + 1
        vecs = torch.stack([self.fold(s, degree, st) for s, st in zip(links, starts,
                                                                      strict=True)])
        # as in evaluation: negatives among the items with training links
        return self.adapt(vecs, links, item_embedding, pool=np.flatnonzero(item_degree > 0),
                          seed=seed)

    def fold(self, items: np.ndarray, degree: np.ndarray, start: Tensor | None = None) -> Tensor:
        """The propagated vector ``[d]`` of a user linked to ``items`` (distinct indices),
        before adaptation, given the items' degrees ``[I]`` in the graph the user is in and
        its layer-0 vector over ``L + 1`` (default: a user without profile's)."""
        f = self.fold_in
        u = f.start if start is None else start
        if len(items):
            w = torch.as_tensor(1.0 / np.sqrt(len(items) * degree[items]), dtype=torch.float32,
                                device=self.device)
            u = u + (w.unsqueeze(-1) * f.items[torch.as_tensor(items, device=self.device)]).sum(0)
        return u * f.scale

    def starts(self, ids: Sequence[str], profiles: Sequence[Mapping[str, Any] | None] | None
               ) -> Tensor:
        """``[N, d]`` each new user's layer-0 vector over ``L + 1``: its fused profile where
        it has one, else the model's start for a user without one.

        A profile maps the dataset's attribute names to values (ml-100k: ``{"age": 24,
        "gender": "M", "occupation": "technician"}``; a precomputed vector attribute, such as
        an image embedding, as a sequence of numbers); a missing attribute is missing, as in
        training. Its text is its ``"text"``, else :meth:`profile_text`.

        Raises:
            ConfigError: profiles are given, and the model reads none.
            DataFormatError: a profile names an attribute the training users did not have, or
                a value the model cannot encode (a category never seen in training, a
                non-number where numbers were, a vector of the wrong length or with NaNs).
        """
        starts = self.fold_in.start.expand(len(ids), -1).clone()
        if profiles is None:
            return starts
        if isinstance(profiles, Mapping) or len(profiles) != len(ids):
            raise ValueError("profiles: one mapping (or None) per new user")
        given = [k for k, p in enumerate(profiles) if p]
        if not given:
            return starts
        schema = self.profile
        if schema is None:
            raise ConfigError(f"add_users: this {self.config.model.name!r} model reads no user "
                              "profiles (hgnn does, where the training users had attributes)")
        rows = [{str(k): v for k, v in profiles[g].items()} for g in given]
        encoded = [c for c, *_ in schema.numeric] + [c for c, _ in schema.categorical]
        columns = {c: np.asarray(["" if r.get(c) is None else str(r[c]) for r in rows],
                                 dtype=str) for c in encoded}
        names = [f"add_users: profile of {ids[g]!r}" for g in given]
        for name, r in zip(names, rows, strict=True):
            unknown = sorted(set(r) - set(schema.attributes) - {"text"})
            if unknown:
                raise DataFormatError(f"{name}: unknown attribute {unknown[0]!r} (the training "
                                      f"users had: {', '.join(schema.attributes)})")
        if schema.vectors is not None:
            columns[schema.vectors] = _vector_column(rows, names, schema.vectors,
                                                     schema.vectors_dim)
        m = schema.encode(columns, len(rows), names=names)  # names a bad value's user
        from kgrec.models import MODELS

        texts = [self.profile_text(r) for r in rows] if schema.text else None
        starts[torch.as_tensor(given)] = MODELS.get(self.config.model.name).users_from_profiles(
            self.config.model, self.state, m, texts, device=self.device)
        return starts

    def profile_text(self, profile: Mapping[str, Any]) -> str:
        """A new user's text: its ``"text"``, else the dataset recipe's ``user_text``
        template filled from the profile if it has every field the template names (the
        text the recipe gave a training user with that profile), else ``""`` (no text)."""
        if profile.get("text"):
            return str(profile["text"])
        import string

        from kgrec.errors import DatasetNotFoundError
        from kgrec.ingest.recipe import Recipe, recipe_path

        try:
            recipe = Recipe.load(recipe_path(self.dataset))
        except DatasetNotFoundError:
            return ""  # not a recipe dataset (Neo4j, RDF, a renamed graph)
        tpl = recipe.template("user_text")
        if not tpl:
            return ""
        fields = [f for _, f, _, _ in string.Formatter().parse(tpl) if f]
        if any(profile.get(f) in (None, "") for f in fields):
            return ""
        return recipe.render("user_text", tpl, {f: str(profile[f]) for f in fields})

    def adapt(self, vecs: Tensor, links: Sequence[np.ndarray], item_embedding: Tensor, *,
              pool: np.ndarray, seed: int = 0) -> Tensor:
        """The few-shot evaluation's adaptation (:func:`kgrec.train.meta.fewshot_outputs`) of
        user vectors ``[N, d]`` on their links, with the learned step sizes
        (:attr:`adaptation`), against one random item from ``pool`` (items with training
        links, never one of the user's own) per link; unchanged where the model was not
        trained to adapt (``meta.mode`` off)."""
        meta = self.config.meta
        log_lr = self.adaptation
        if meta.mode == "off" or log_lr is None or meta.inner_steps == 0:
            return vecs
        from kgrec.data.sampling import NegativeSampler
        from kgrec.models.adaptation import MetaLearner

        learner = MetaLearner(vecs.shape[1], steps=meta.inner_steps).to(self.device)
        learner.log_lr.data.copy_(log_lr.to(self.device))
        task = np.repeat(np.arange(len(links)), [len(s) for s in links])
        pos = np.concatenate(links).astype(np.int64)
        neg = NegativeSampler(task, pos, item_embedding.shape[0], np.random.default_rng(seed),
                              pool=pool).sample(task)
        dev = self.device
        with torch.enable_grad():
            return learner.adapt(vecs, "user", torch.as_tensor(task, device=dev),
                                 item_embedding[torch.as_tensor(pos, device=dev)],
                                 item_embedding[torch.as_tensor(neg, device=dev)]).detach()

    def add_items(self, vectors: Tensor) -> None:
        """Append items ``[N, d]`` added after training with no links (their propagated
        layers are empty, so what users read of them is their vector itself)."""
        self.fold_in.items = torch.cat([self.fold_in.items, vectors.to(self.device)])


def _vector_column(rows: Sequence[Mapping[str, Any]], names: Sequence[str], column: str,
                   dim: int) -> np.ndarray:
    """``[N, dim]`` the rows' vectors of ``column``, each a sequence of numbers or a string of
    comma-separated ones (NaN rows where a row has none: the encoding's 'missing')."""
    out = np.full((len(rows), dim), np.nan, dtype=np.float32)
    for k, (name, r) in enumerate(zip(names, rows, strict=True)):
        v = r.get(column)
        if v is None:
            continue
        try:  # a string is comma-separated numbers (`kgrec recommend --profile v=0.1,0.2`)
            a = np.asarray(v.split(",") if isinstance(v, str) else v, dtype=np.float32)
        except (TypeError, ValueError):
            a = None
        if a is None or a.shape != (dim,):
            raise DataFormatError(f"{name}: {column}: expected a vector of {dim} numbers, got "
                                  f"{str(v)[:60]!r}")
        if not np.isfinite(a).all():
            raise DataFormatError(f"{name}: {column}: NaN or infinite value at position "
                                  f"{int(np.flatnonzero(~np.isfinite(a))[0])}")
        out[k] = a
    return out
