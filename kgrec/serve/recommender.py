"""What training produces: a :class:`Recommender` that ranks, explains, saves and loads.

Saved as a directory: ``model.safetensors`` (embeddings, model weights, the training
interactions and KG needed for exclusion and explanations) and ``recommender.json`` (config,
id vocabularies, item names, training history). No pickle anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from kgrec.config import Config
from kgrec.errors import ConfigError, StoreError, UnknownIdError
from kgrec.evaluate.ranking import mask_rows, top_k
from kgrec.features.build import AttributeSchema
from kgrec.graph import KnowledgeTriples, index_of
from kgrec.serve.explain import Explainer, Explanation, seen_items
from kgrec.serve.newusers import NewUserEncoder, UserFoldIn

FORMAT = "kgrec-recommender/1"


@dataclass
class Recommendations:
    """The top-K list for one user."""

    user: str
    items: list[str]
    scores: list[float]
    names: list[str]

    def __iter__(self):  # (item, name, score) rows
        return iter(zip(self.items, self.names, self.scores, strict=True))


class Recommender:
    """Ranks items for users from trained embeddings.

    Args:
        user_embedding: ``[U, d]``; item_embedding: ``[I, d]``; a pair scores their dot product.
        config: the config it was trained with.
        user_ids, item_ids: external ids (index order).
        item_names: display names ``[I]``; item_domains: ``[I]``.
        seen: ``[U, I]`` CSR of the pairs it learned from (excluded by default).
        kg: the knowledge triples (for :meth:`explain`), with entity ids/names.
        state: the model's weights (``name -> tensor``), kept for fine-tuning.
        history: per-epoch training records.
        fold_in: what :meth:`add_users` builds new users from (``None``: the model cannot).
        user_profile: how the model encodes a user's profile (``None``: it reads none).

    Attributes:
        new_users: how :meth:`add_users` encodes a new user (``None``: the model cannot).
    """

    def __init__(self, user_embedding: Tensor, item_embedding: Tensor, *, config: Config,
                 user_ids: Sequence[str], item_ids: Sequence[str], item_names: Sequence[str],
                 item_domains: Sequence[str], seen: sp.csr_matrix,
                 kg: KnowledgeTriples | None = None, entity_ids: Sequence[str] = (),
                 entity_names: Sequence[str] = (), state: dict[str, Tensor] | None = None,
                 history: list[dict[str, Any]] | None = None, dataset: str = "",
                 split_fingerprint: str = "", fold_in: UserFoldIn | None = None,
                 user_profile: AttributeSchema | None = None,
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
        self._explainer: Explainer | None = None
        self._items_np: tuple[np.ndarray, np.ndarray] | None = None
        self._degree: np.ndarray | None = None
        self._own_users = False
        self.new_users = (None if fold_in is None else NewUserEncoder(
            fold_in, config=config, state=self.state, profile=user_profile, dataset=dataset,
            device=self.device))

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
        from kgrec.models import MODELS, PlacesItems, has

        cfg = self.config.model
        cls = MODELS.get(cfg.name)
        if not has(cls, PlacesItems) or not {"item_content.text_proj.weight",
                                             "student.content.text_proj.weight"} & set(self.state):
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

    @torch.no_grad()
    def recommend_new(self, items: Sequence[str], k: int = 10, *,
                      profile: Mapping[str, Any] | None = None, domain: str | None = None,
                      exclude_seen: bool = True) -> Recommendations:
        """The top ``k`` for someone the model does not know, from the items they liked (and
        their profile), placed as :meth:`add_users` places a new user but not kept.

        Raises:
            as :meth:`add_users`.
        """
        if self.new_users is None:
            raise ConfigError(f"a {self.config.model.name!r} model cannot place users it was "
                              "not trained with (lightgcn, kggnn and hgnn can)")
        links = np.unique(self.item_index([str(i) for i in items]))
        vec = self.new_users.encode(["(new user)"], [links], self.item_degree(),
                                    self.item_embedding,
                                    profiles=None if profile is None else [profile])
        scores = vec @ self.item_embedding.T
        if domain is not None:
            scores[:, self._domain_mask(domain)] = -torch.inf
        if exclude_seen and len(links):
            scores[0, torch.from_numpy(links).to(self.device)] = -torch.inf
        vals, top = top_k(scores, min(int(k), self.num_items))
        keep = torch.isfinite(vals[0]).cpu().numpy()
        top_np = top[0].cpu().numpy()[keep]
        ids, names = self._item_arrays()
        return Recommendations("", ids[top_np].tolist(), vals[0][torch.from_numpy(keep)].tolist(),
                               names[top_np].tolist())

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

    # ------------------------------------------------------------------ scoring
    def user_index(self, users: Sequence[str]) -> np.ndarray:
        """Indices ``[N]`` of external user ids (:class:`UnknownIdError` for an unknown one)."""
        return index_of(self._user_index, users, "user id",
                        f" (the model knows {self.num_users} users, e.g. {self.user_ids[:3]})")

    def item_index(self, items: Sequence[str]) -> np.ndarray:
        """Indices ``[N]`` of external item ids (:class:`UnknownIdError` for an unknown one)."""
        return index_of(self._item_index, items, "item id")

    @torch.no_grad()
    def score_users(self, users: np.ndarray) -> Tensor:
        """Scores ``[B, I]`` of every item for user indices ``[B]``."""
        u = torch.as_tensor(np.asarray(users), device=self.device)
        return self.user_embedding[u] @ self.item_embedding.T

    @torch.no_grad()
    def score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores ``[N]`` of user-item index pairs."""
        u = torch.as_tensor(np.asarray(users), device=self.device)
        i = torch.as_tensor(np.asarray(items), device=self.device)
        return (self.user_embedding[u] * self.item_embedding[i]).sum(-1).cpu().numpy()

    def recommend(self, users: Sequence[str], k: int = 10, *, domain: str | None = None,
                  exclude_seen: bool = True) -> list[Recommendations]:
        """The top ``k`` items for each user (external ids).

        One ranking path with evaluation (:func:`kgrec.evaluate.top_k`): users are scored
        in chunks of at most :attr:`chunk_bytes` of scores, excluded items masked in place,
        exact ties in the evaluation's fixed random order.

        Args:
            users: external user ids.
            k: list length (a user with fewer candidates gets a shorter list).
            domain: only items of this domain.
            exclude_seen: drop the items the user interacted with in training.
        """
        if isinstance(users, str):
            users = [users]
        idx = self.user_index(users)
        vals, top = self.rank(idx, k, domain=domain, exclude_seen=exclude_seen)
        ids, names = self._item_arrays()
        finite = torch.isfinite(vals).cpu().numpy()
        t = top.numpy()
        vals_l, ids_l, names_l = vals.cpu().tolist(), ids[t].tolist(), names[t].tolist()
        if bool(finite.all()):  # every user had k candidates
            return [Recommendations(str(u), i, v, n) for u, i, v, n in
                    zip(users, ids_l, vals_l, names_l, strict=True)]
        out = []
        for row, user in enumerate(users):
            if finite[row].all():
                out.append(Recommendations(str(user), ids_l[row], vals_l[row], names_l[row]))
            else:  # fewer candidates than k: the -inf tail is no recommendation
                n = int(finite[row].sum())
                out.append(Recommendations(str(user), ids_l[row][:n], vals_l[row][:n],
                                           names_l[row][:n]))
        return out

    chunk_bytes: int = 256 << 20
    """The most memory one chunk of scores may take (:meth:`rank`)."""

    def rank(self, users: np.ndarray, k: int = 10, *, domain: str | None = None,
             exclude_seen: bool = True) -> tuple[Tensor, Tensor]:
        """Scores and item indices ``[B, k]`` of the ``k`` best items for user indices
        ``[B]``, best first (``-inf`` where a user has fewer than ``k`` candidates).

        No autograd context is needed (and none is paid for per call): the stored vectors
        are detached."""
        users = np.asarray(users, dtype=np.int64)
        k = min(int(k), self.num_items)
        if self.index is not None and domain is None and len(users):
            return self._rank_ann(users, k, exclude_seen)
        banned = self._domain_mask(domain) if domain is not None else None
        chunk = max(1, self.chunk_bytes // (4 * max(self.num_items, 1)))
        vals, tops = [], []
        for start in range(0, len(users), chunk):
            rows = users[start:start + chunk]
            scores = self.user_embedding[torch.from_numpy(rows).to(self.device)] \
                @ self.item_embedding.T
            if banned is not None:
                scores[:, banned] = -torch.inf
            if exclude_seen:
                mask_rows(scores, self.seen, rows)
            v, t = top_k(scores, k)
            vals.append(v)
            tops.append(t)
        if not vals:
            return torch.zeros(0, k), torch.zeros(0, k, dtype=torch.long)
        if len(vals) == 1:
            return vals[0], tops[0].cpu()
        return torch.cat(vals), torch.cat(tops).cpu()

    # ------------------------------------------------------------------ large catalogues
    index: Any = None
    """An :class:`~kgrec.serve.ann.AnnIndex` over the items (:meth:`build_index`), or
    ``None``: exact ranking."""

    def build_index(self, backend: str = "hnswlib", *, min_items: int = 0,
                    threads: int = 1, **kwargs: Any) -> bool:
        """Rank by an approximate index from now on, when the catalogue has at least
        ``min_items`` items (returns whether it built one). A domain filter still ranks
        exactly; items added later join the index."""
        from kgrec.serve.ann import AnnIndex

        if self.num_items < min_items:
            self.index = None
            return False
        self.index = AnnIndex.build(self.item_embedding.cpu().numpy(), backend=backend,
                                    threads=threads, **kwargs)
        return True

    def _rank_ann(self, users: np.ndarray, k: int, exclude_seen: bool
                  ) -> tuple[Tensor, Tensor]:
        """:meth:`rank` through :attr:`index`: each user's ``k`` + (its seen items) nearest
        candidates, seen ones dropped, re-scored exactly; a user left with fewer than ``k``
        is ranked exactly."""
        ptr = self.seen.indptr
        n_seen = (ptr[users + 1] - ptr[users]) if exclude_seen else np.zeros(len(users), int)
        fetch = min(k + int(n_seen.max()), self.num_items)
        vecs = self.user_embedding[torch.from_numpy(users).to(self.device)]
        found = torch.from_numpy(self.index.search(vecs.cpu().numpy(), fetch)).to(self.device)
        scores = (vecs.unsqueeze(1) * self.item_embedding[found.clamp(min=0)]).sum(-1)
        scores[found < 0] = -torch.inf  # a backend's "no more results"
        if exclude_seen:
            for row, u in enumerate(users.tolist()):
                have = torch.from_numpy(seen_items(self.seen, u).astype(np.int64))
                if len(have):
                    scores[row, torch.isin(found[row], have.to(self.device))] = -torch.inf
        vals, pos = top_k(scores, k)
        top = found.gather(1, pos)
        short = (~torch.isfinite(vals)).any(1).nonzero().squeeze(1).tolist()
        if short:  # too few unseen candidates found: those users exactly
            index, self.index = self.index, None
            try:
                v, t = self.rank(users[short], k, exclude_seen=exclude_seen)
            finally:
                self.index = index
            vals[short], top[short] = v.to(vals.device), t.to(top.device)
        return vals, top.cpu()

    def _domain_mask(self, domain: str) -> Tensor:
        mask = self.item_domains != domain
        if mask.all():
            raise UnknownIdError(f"unknown domain {domain!r}; known: "
                                 f"{sorted(set(self.item_domains.tolist()))}")
        return torch.from_numpy(mask).to(self.device)

    def _item_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Item ids and names as object arrays (ids map back by one fancy index)."""
        if self._items_np is None or len(self._items_np[0]) != self.num_items:
            self._items_np = (np.asarray(self.item_ids, dtype=object),
                              np.asarray(self.item_names, dtype=object))
        return self._items_np

    # ------------------------------------------------------------------ explanations
    @property
    def explainer(self) -> Explainer:
        """The :class:`~kgrec.serve.explain.Explainer` over this model's KG and items."""
        if self._explainer is None:
            self._explainer = Explainer(self.kg, self.item_names, self.entity_ids,
                                        self.entity_names, self.item_embedding)
        return self._explainer

    def explain(self, user: str, item: str, max_paths: int = 5) -> list[str]:
        """Knowledge-graph paths from the user's training items to ``item`` (at most two hops),
        as text; entities without a name are named by the relation and the items they link.

        Each path reads ``seen item -[relation]-> entity <-[relation]- item``.
        """
        (u,) = self.user_index([user])
        (t,) = self.item_index([item])
        return self.explainer.paths(seen_items(self.seen, int(u)).tolist(), int(t), max_paths)

    def explanations(self, user: str, items: Sequence[str], max_paths: int = 3
                     ) -> list[Explanation]:
        """Why each of ``items`` suits ``user``: KG paths where there are any, else the
        user's items nearest to it by the model's item vectors."""
        (u,) = self.user_index([user])
        seen = seen_items(self.seen, int(u)).tolist()
        return [self.explainer.explain(seen, int(t), str(x), max_paths)
                for x, t in zip(items, self.item_index(items), strict=True)]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``model.safetensors`` and ``recommender.json`` into directory ``path``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tensors = {"user_embedding": self.user_embedding.cpu().contiguous(),
                   "item_embedding": self.item_embedding.cpu().contiguous(),
                   "seen.indptr": torch.from_numpy(self.seen.indptr.astype(np.int64)),
                   "seen.indices": torch.from_numpy(self.seen.indices.astype(np.int64))}
        if self.kg is not None:
            tensors.update({f"kg.{k}": torch.from_numpy(np.ascontiguousarray(getattr(self.kg, k)))
                            for k in ("head", "relation", "tail")})
        for k, v in self.state.items():
            tensors[f"state.{k}"] = v.detach().cpu().contiguous()
        if self.new_users is not None:
            tensors.update({f"fold_in.{k}": getattr(self.new_users.fold_in, k).cpu().contiguous()
                            for k in ("start", "scale", "items")})
        # MF's output vectors are its weights: safetensors refuses tensors sharing memory
        seen: set[int] = set()
        for k, v in tensors.items():
            if v.numel() and v.data_ptr() in seen:
                tensors[k] = v.clone()
            seen.add(tensors[k].data_ptr())
        save_file(tensors, str(path / "model.safetensors"))
        doc = {"format": FORMAT, "dataset": self.dataset, "config": self.config.to_dict(),
               "user_ids": self.user_ids, "item_ids": self.item_ids,
               "item_names": self.item_names, "item_domains": self.item_domains.tolist(),
               "entity_ids": self.entity_ids, "entity_names": self.entity_names,
               "kg_relations": self.kg.relations if self.kg is not None else None,
               "kg_sizes": [self.kg.num_items, self.kg.num_entities] if self.kg else None,
               "split_fingerprint": self.split_fingerprint, "history": self.history,
               "user_profile": self.user_profile.to_dict() if self.user_profile else None}
        (path / "recommender.json").write_text(json.dumps(doc))
        return path

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> Recommender:
        """Load a saved recommender directory (safetensors + JSON; no pickle)."""
        path = Path(path)
        meta_path, weights = path / "recommender.json", path / "model.safetensors"
        if not meta_path.is_file() or not weights.is_file():
            raise StoreError(f"{path}: not a saved recommender (needs recommender.json and "
                             "model.safetensors)")
        try:
            doc = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"{meta_path}: not a readable recommender.json ({exc}); the run "
                             "is damaged: train it again or restore the file") from None
        if doc.get("format") != FORMAT:
            raise StoreError(f"{meta_path}: unsupported format {doc.get('format')!r}")
        try:
            t = load_file(str(weights))
        except Exception as exc:  # safetensors raises its own error types (and OSError)
            raise StoreError(f"{weights}: damaged or truncated ({str(exc).splitlines()[0]}); "
                             "train the run again, or copy the file anew") from None
        missing = [k for k in ("user_embedding", "item_embedding", "seen.indices",
                               "seen.indptr") if k not in t]
        if missing:
            raise StoreError(f"{weights}: lacks {missing}; not a kgrec model file")
        n_users, n_items = len(doc["user_ids"]), len(doc["item_ids"])
        seen = sp.csr_matrix((np.ones(len(t["seen.indices"]), dtype=np.float32),
                              t["seen.indices"].numpy(), t["seen.indptr"].numpy()),
                             shape=(n_users, n_items))
        kg = None
        if doc.get("kg_relations") is not None:
            kg = KnowledgeTriples(t["kg.head"].numpy(), t["kg.relation"].numpy(),
                                  t["kg.tail"].numpy(), doc["kg_relations"], *doc["kg_sizes"])
        state = {k[len("state."):]: v for k, v in t.items() if k.startswith("state.")}
        fold_in = (UserFoldIn(t["fold_in.start"], t["fold_in.scale"], t["fold_in.items"])
                   if "fold_in.items" in t else None)
        conf = doc["config"]
        hgnn = conf.get("model", {}).get("hgnn") if isinstance(conf.get("model"), dict) else None
        if isinstance(hgnn, dict) and "ranking" not in hgnn:
            hgnn["ranking"] = "joint"  # saved before the aligned ranking was hgnn's default
        return cls(t["user_embedding"], t["item_embedding"], config=Config.from_dict(conf),
                   user_ids=doc["user_ids"], item_ids=doc["item_ids"],
                   item_names=doc["item_names"], item_domains=doc["item_domains"], seen=seen,
                   kg=kg, entity_ids=doc["entity_ids"], entity_names=doc["entity_names"],
                   state=state, history=doc["history"], dataset=doc.get("dataset", ""),
                   split_fingerprint=doc.get("split_fingerprint", ""), fold_in=fold_in,
                   user_profile=(AttributeSchema.from_dict(doc["user_profile"])
                                 if doc.get("user_profile") else None), device=device)

    def __repr__(self) -> str:
        return (f"Recommender({self.config.model.name}, dataset={self.dataset!r}, "
                f"users={self.num_users}, items={self.num_items}, "
                f"dim={self.user_embedding.shape[1]})")
