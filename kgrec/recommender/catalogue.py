"""What a :class:`~kgrec.recommender.Recommender` knows: its users, items and their vectors,
the pairs it learned from, and the bookkeeping that adds items, users and links at serving
time.

The ranking (:mod:`kgrec.recommender.ranking`), the explanations
(:mod:`kgrec.recommender.explain`) and the files (:mod:`kgrec.recommender.persistence`) each
build on :class:`Catalogue`; :class:`~kgrec.recommender.Recommender` is all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from kgrec.config import Config
from kgrec.errors import ConfigError, UnknownIdError
from kgrec.features.build import AttributeSchema
from kgrec.graph import KnowledgeTriples, index_of
from kgrec.recommender.newusers import NewUserEncoder, UserFoldIn


def seen_items(seen: sp.csr_matrix, u: int) -> np.ndarray:
    """The items of user row ``u`` of a CSR ``[U, I]`` matrix."""
    return seen.indices[seen.indptr[u]:seen.indptr[u + 1]]


class Catalogue:
    """Users, items, their vectors and the pairs learned from (the arguments and attributes
    of :class:`~kgrec.recommender.Recommender`, which documents them)."""

    def __init__(self, user_embedding: Tensor, item_embedding: Tensor, *, config: Config,
                 user_ids: Sequence[str], item_ids: Sequence[str], item_names: Sequence[str],
                 item_domains: Sequence[str], seen: sp.csr_matrix,
                 kg: KnowledgeTriples | None = None, entity_ids: Sequence[str] = (),
                 entity_names: Sequence[str] = (), state: dict[str, Tensor] | None = None,
                 history: list[dict[str, Any]] | None = None, dataset: str = "",
                 split_fingerprint: str = "", fold_in: UserFoldIn | None = None,
                 user_profile: AttributeSchema | None = None,
                 adaptation: Tensor | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.user_embedding = user_embedding.detach().to(self.device, torch.float32)
        self.item_embedding = item_embedding.detach().to(self.device, torch.float32)
        self.config = config
        self.user_ids = list(user_ids)
        self.item_ids = list(item_ids)
        self.item_names = list(item_names)
        self.item_domains = np.asarray(list(item_domains), dtype=str)
        self.seen = seen.tocsr()
        self.kg = kg
        self.entity_ids = list(entity_ids)
        self.entity_names = list(entity_names)
        self.state = state or {}
        self.history = history or []
        self.dataset = dataset
        self.split_fingerprint = split_fingerprint
        self._user_index = {u: i for i, u in enumerate(self.user_ids)}
        self._item_index = {x: i for i, x in enumerate(self.item_ids)}
        self._explainer: Any = None  # the Explainer, built on first use
        self._items_np: tuple[np.ndarray, np.ndarray] | None = None
        self._degree: np.ndarray | None = None
        self._own_users = False
        self.adaptation = None if adaptation is None else adaptation.detach().cpu()
        self.new_users = (None if fold_in is None else NewUserEncoder(
            fold_in, config=config, state=self.state, profile=user_profile, dataset=dataset,
            adaptation=self.adaptation, device=self.device))

    @property
    def user_profile(self) -> AttributeSchema | None:
        """How the model encodes a new user's profile (``None``: it places no new users, or
        reads no profiles)."""
        return self.new_users.profile if self.new_users is not None else None

    @property
    def name(self) -> str:
        """The model's name (``config.model.name``), for messages."""
        return self.config.model.name

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    index: Any = None
    """An :class:`~kgrec.recommender.ann.AnnIndex` over the items
    (:meth:`~kgrec.recommender.ranking.Ranking.build_index`), or ``None``: exact ranking.
    Items added later join it."""

    # ------------------------------------------------------------------ ids
    def has_user(self, user: str) -> bool:
        """Whether ``user`` is a known external user id (trained or added)."""
        return user in self._user_index

    def has_item(self, item: str) -> bool:
        """Whether ``item`` is a known external item id (trained or added)."""
        return item in self._item_index

    def user_index(self, users: Sequence[str]) -> np.ndarray:
        """Indices ``[N]`` of external user ids (:class:`UnknownIdError` for an unknown one)."""
        return index_of(self._user_index, users, "user id",
                        f" (the model knows {self.num_users} users, e.g. {self.user_ids[:3]})")

    def item_index(self, items: Sequence[str]) -> np.ndarray:
        """Indices ``[N]`` of external item ids (:class:`UnknownIdError` for an unknown one)."""
        return index_of(self._item_index, items, "item id")

    def items_of(self, user: str) -> list[str]:
        """The external ids of the items ``user`` has (training links and added ones)."""
        (u,) = self.user_index([user])
        return [self.item_ids[i] for i in seen_items(self.seen, int(u)).tolist()]

    def item_degree(self) -> np.ndarray:
        """``[I]`` each item's number of users in :attr:`seen` (kept up to date by the
        methods that add users, items and links; a copy)."""
        if self._degree is None or len(self._degree) != self.num_items:
            self._degree = np.bincount(self.seen.indices, minlength=self.num_items)
        return self._degree.copy()

    # ------------------------------------------------------------------ new items
    def add_items(self, ids: Sequence[str], texts: Sequence[str], *,
                  names: Sequence[str] | None = None, domain: str = "") -> Tensor:
        """Make brand-new items recommendable from their text alone.

        Works for ``hgnn`` models trained with text features: a new item is encoded exactly
        as the model encodes an unseen item (its text through the text encoder and the
        trained projection, no id, no interaction or KG messages), then appended to the
        catalogue, so :meth:`recommend` can return it.

        Args:
            ids: new external item ids (must not exist yet).
            texts: one non-empty description per item (title, genres, ...).
            names: display names (default: the texts).
            domain: the items' domain.

        Returns:
            the new items' embeddings ``[N, d]``.

        Raises:
            ConfigError: the model cannot place items from text.
            UnknownIdError: an id already exists, or a text is empty.
        """
        from kgrec.models import MODELS
        from kgrec.models.capabilities import can_place_items

        cfg = self.config.model
        cls = MODELS.get(cfg.name)
        able = can_place_items(cls, cfg, self.state)
        if not able:
            raise ConfigError("add_items needs a model that places items from text, trained "
                              f"with text features (this one is {cfg.name!r}, features "
                              f"{getattr(cfg.options, 'features', [])})")
        ids, texts = [str(x) for x in ids], [str(t) for t in texts]
        if len(ids) != len(texts) or (names is not None and len(names) != len(ids)):
            raise ValueError("ids, texts (and names) must have the same length")
        clash = [x for x in ids if x in self._item_index] + [
            x for k, x in enumerate(ids) if x in ids[:k]]
        if clash:
            raise UnknownIdError(f"item id(s) already present: {clash[:5]}")
        empty = [x for x, t in zip(ids, texts, strict=True) if not t.strip()]
        if empty:
            raise UnknownIdError(f"item(s) {empty[:5]} have no text to place them by")
        emb = cls.items_from_text(cfg, self.state, texts, device=self.device)
        start = self.num_items
        emb = emb.detach()
        self.item_embedding = torch.cat([self.item_embedding, emb])
        self.item_ids += ids
        self.item_names += list(names) if names is not None else texts
        self.item_domains = np.concatenate([self.item_domains,
                                            np.full(len(ids), domain, dtype=str)])
        self.seen = sp.hstack([self.seen, sp.csr_matrix((self.num_users, len(ids)))]).tocsr()
        self._item_index.update({x: start + k for k, x in enumerate(ids)})
        self._explainer = None  # rebuilt with the new items' names and vectors
        if self.new_users is not None:
            self.new_users.add_items(emb)
        if self.index is not None:
            self.index.add(emb.cpu().numpy())
        return emb

    # ------------------------------------------------------------------ new users
    @torch.no_grad()
    def add_users(self, ids: Sequence[str], items: Sequence[Sequence[str]], *,
                  profiles: Sequence[Mapping[str, Any] | None] | None = None,
                  seed: int = 0) -> Tensor:
        """Make brand-new users recommendable from the items they interacted with (and their
        profile, where the model reads users' profiles).

        Each new user is encoded as the model encodes a few-shot user (no id, hearing only its
        own links; its profile fused as a training user's is; :class:`NewUserEncoder`), then,
        for a model trained with ``meta.mode`` ``finetune`` or ``meta``, adapted on those
        links exactly as the few-shot evaluation adapts a held-out user (the learned step
        sizes under ``meta``), against one random item it did not pick per link. A user with
        no items (K = 0) gets its fused profile, or without one the model's starting vector,
        which meta-training learns. The trained items are not re-encoded: the new links count
        in their degrees, but not in their own vectors (a model retrained with the user would
        move them slightly).

        Args:
            ids: new external user ids (must not exist yet).
            items: for each new user, the external ids of its items (each counted once).
            profiles: for each new user, its attributes as the dataset names them (ml-100k:
                ``{"age": 24, "gender": "M", "occupation": "technician"}``; a vector
                attribute as a sequence of numbers), or ``None``; a missing attribute is
                missing, as in training. The profile's text is its
                ``"text"``, else the dataset recipe's ``user_text`` template filled from the
                profile (when it has every field the template names), else none.
            seed: for the adaptation's random negatives.

        Returns:
            the new users' vectors ``[N, d]`` (appended to the model's users; their items
            count as seen, so :meth:`recommend` leaves them out).

        Raises:
            ConfigError: the model cannot place new users (``mf``; ``model.hgnn.source_weight``),
                a user has no items (nor profile) and the model no learned starting vector,
                or profiles are given to a model that reads none.
            UnknownIdError: a user id exists already, or an item id is unknown.
            DataFormatError: a profile names an attribute the training users did not have, or
                a value the model cannot encode (a category never seen in training, a
                non-number where numbers were, a vector of the wrong length or with NaNs).
        """
        if self.new_users is None:
            raise ConfigError(f"add_users: a {self.config.model.name!r} model cannot place "
                              "users it was not trained with (lightgcn, kggnn and hgnn can, "
                              "except hgnn with model.hgnn.source_weight)")
        ids = [str(x) for x in ids]
        if len(ids) != len(items) or isinstance(items, str):
            raise ValueError("ids and items must have the same length (one list per user)")
        clash = [x for x in ids if x in self._user_index] + [
            x for k, x in enumerate(ids) if x in ids[:k]]
        if clash:
            raise UnknownIdError(f"user id(s) already present: {clash[:5]}")
        links = [np.unique(self.item_index([str(i) for i in its])) for its in items]
        if not ids:
            return self.user_embedding.new_zeros(0, self.user_embedding.shape[1])
        vecs = self.new_users.encode(ids, links, self.item_degree(), self.item_embedding,
                                     profiles=profiles, seed=seed)
        start = self.num_users
        self.user_embedding = torch.cat([self.user_embedding, vecs])
        self.user_ids += ids
        rows = np.repeat(np.arange(len(ids)), [len(s) for s in links])
        cols = np.concatenate(links) if links else np.zeros(0, dtype=np.int64)
        new = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)),
                            shape=(len(ids), self.num_items))
        self.seen = sp.vstack([self.seen, new]).tocsr()
        self._degree = None
        self._user_index.update({x: start + k for k, x in enumerate(ids)})
        return vecs

    @torch.no_grad()
    def add_interactions(self, users: Sequence[str], items: Sequence[str]) -> list[bool]:
        """Learn from new ``(user, item)`` links at once, without retraining.

        A link of a known user adds the item to its seen items and moves its vector by the
        fold-in's change (:meth:`NewUserEncoder.fold` over its items with and without the new
        one), so a trained user keeps what training gave it plus what the click adds; an
        unknown user is placed by :meth:`add_users` from its first item. A link already
        seen changes nothing (replaying a log is idempotent).

        Args:
            users, items: external ids, pairwise.

        Returns:
            per link, whether it changed the model (``False``: already seen).

        Raises:
            UnknownIdError: an item id is unknown.
            ConfigError: a new user, for a model that cannot place new users.
        """
        if len(users) != len(items):
            raise ValueError("users and items must have the same length")
        item_idx = self.item_index([str(x) for x in items])
        changed = []
        for user, i in zip(users, item_idx.tolist(), strict=True):
            user = str(user)
            u = self._user_index.get(user)
            if u is None:
                self.add_users([user], [[self.item_ids[i]]])
                changed.append(True)
                continue
            have = seen_items(self.seen, u)
            if i in have:
                changed.append(False)
                continue
            if self.new_users is not None:
                degree = self.item_degree() + 1
                after = np.append(have, i)
                delta = (self.new_users.fold(after, degree) - self.new_users.fold(have, degree))
                if not self._own_users:  # it may share memory with the saved weights (MF)
                    self.user_embedding, self._own_users = self.user_embedding.clone(), True
                self.user_embedding[u] += delta
            self._insert_seen(u, i)
            changed.append(True)
        return changed

    def _insert_seen(self, u: int, i: int) -> None:
        """Add ``(u, i)`` to :attr:`seen` (one insert into the CSR arrays, no rebuild)."""
        s = self.seen
        at = s.indptr[u + 1]
        indices = np.insert(s.indices, at, i)
        data = np.insert(s.data, at, 1.0)
        indptr = s.indptr.copy()
        indptr[u + 1:] += 1
        self.seen = sp.csr_matrix((data, indices, indptr), shape=s.shape)
        if self._degree is not None:
            self._degree[i] += 1

