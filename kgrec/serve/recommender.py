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
        self._user_index.update({x: start + k for k, x in enumerate(ids)})
        return vecs

    def item_degree(self) -> np.ndarray:
        """``[I]`` each item's number of users in :attr:`seen`."""
        return np.diff(self.seen.tocsc().indptr)

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

        Args:
            users: external user ids.
            k: list length.
            domain: only items of this domain.
            exclude_seen: drop the items the user interacted with in training.
        """
        if isinstance(users, str):
            users = [users]
        idx = self.user_index(users)
        scores = self.score_users(idx).clone()
        if domain is not None:
            mask = self.item_domains != domain
            if mask.all():
                raise UnknownIdError(f"unknown domain {domain!r}; known: "
                                     f"{sorted(set(self.item_domains.tolist()))}")
            scores[:, torch.from_numpy(mask).to(scores.device)] = -torch.inf
        if exclude_seen:
            r, c = self.seen[idx].nonzero()
            scores[torch.from_numpy(r), torch.from_numpy(c)] = -torch.inf
        k = min(k, self.num_items)
        top = torch.topk(scores, k, dim=1)
        out = []
        for row, user in enumerate(users):
            keep = torch.isfinite(top.values[row])
            items = top.indices[row][keep].tolist()
            out.append(Recommendations(str(user), [self.item_ids[i] for i in items],
                                       top.values[row][keep].tolist(),
                                       [self.item_names[i] for i in items]))
        return out

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
