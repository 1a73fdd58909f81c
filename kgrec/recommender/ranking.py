"""Ranking: scores, the top-K of users and of a vector, exact or through an approximate
index (:mod:`kgrec.recommender.ann`), one path with evaluation
(:func:`kgrec.evaluate.ranking.top_k`).

Every top-K list, a trained user's (:meth:`Ranking.rank`) or a passing stranger's
(:meth:`Ranking.recommend_new`), comes from :meth:`Ranking._rank_exact` (or, for a
trained user without a domain filter and with an index, :meth:`Ranking._rank_ann`, which
ranks exactly what it cannot find).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from kgrec.errors import ConfigError, UnknownIdError
from kgrec.evaluate.ranking import mask_rows, top_k
from kgrec.recommender.catalogue import Catalogue, seen_items


@dataclass
class Recommendations:
    """The top-K list for one user."""

    user: str
    items: list[str]
    scores: list[float]
    names: list[str]

    def __iter__(self):  # (item, name, score) rows
        return iter(zip(self.items, self.names, self.scores, strict=True))


class Ranking(Catalogue):
    """Scoring and top-K ranking over a :class:`~kgrec.recommender.catalogue.Catalogue`."""

    chunk_bytes: int = 256 << 20
    """The most memory one chunk of scores may take (:meth:`rank`)."""

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
        return self._lists(users, vals, top)

    @torch.no_grad()
    def recommend_new(self, items: Sequence[str], k: int = 10, *,
                      profile: Mapping[str, Any] | None = None, domain: str | None = None,
                      exclude_seen: bool = True) -> Recommendations:
        """The top ``k`` for someone the model does not know, from the items they liked (and
        their profile), placed as :meth:`add_users` places a new user but not kept; ranked
        as :meth:`rank` ranks a user (exactly), with ``items`` as the seen ones.

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
        seen = (sp.csr_matrix((np.ones(len(links), np.float32), links, [0, len(links)]),
                              shape=(1, self.num_items)) if exclude_seen else None)
        vals, top = self._rank_exact(vec, np.zeros(1, dtype=np.int64), k, domain=domain,
                                     seen=seen)
        return self._lists([""], vals, top)[0]

    def rank(self, users: np.ndarray, k: int = 10, *, domain: str | None = None,
             exclude_seen: bool = True) -> tuple[Tensor, Tensor]:
        """Scores and item indices ``[B, k]`` of the ``k`` best items for user indices
        ``[B]``, best first (``-inf`` where a user has fewer than ``k`` candidates).

        No autograd context is needed (and none is paid for per call): the stored vectors
        are detached."""
        users = np.asarray(users, dtype=np.int64)
        if self.index is not None and domain is None and len(users):
            return self._rank_ann(users, min(int(k), self.num_items), exclude_seen)
        return self._rank_exact(self.user_embedding, users, k, domain=domain,
                                seen=self.seen if exclude_seen else None)

    def _rank_exact(self, vectors: Tensor, rows: np.ndarray, k: int, *,
                    domain: str | None = None, seen: sp.csr_matrix | None = None
                    ) -> tuple[Tensor, Tensor]:
        """The one exact ranking: scores and item indices ``[B, k]`` of the ``k`` best items
        for the query vectors ``vectors[rows]`` (``vectors`` ``[N, d]``, ``rows`` ``[B]``),
        best first, scored in chunks of at most :attr:`chunk_bytes`, items of another
        ``domain`` and row ``rows[b]`` of ``seen`` (CSR ``[N, I]``; ``None``: nothing)
        masked for query ``b``, ties in the evaluation's order."""
        k = min(int(k), self.num_items)
        banned = self._domain_mask(domain) if domain is not None else None
        chunk = max(1, self.chunk_bytes // (4 * max(self.num_items, 1)))
        vals, tops = [], []
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            scores = vectors[torch.from_numpy(part).to(self.device)] @ self.item_embedding.T
            if banned is not None:
                scores[:, banned] = -torch.inf
            if seen is not None:
                mask_rows(scores, seen, part)
            v, t = top_k(scores, k)
            vals.append(v)
            tops.append(t)
        if not vals:
            return torch.zeros(0, k), torch.zeros(0, k, dtype=torch.long)
        if len(vals) == 1:
            return vals[0], tops[0].cpu()
        return torch.cat(vals), torch.cat(tops).cpu()

    def _lists(self, users: Sequence[str], vals: Tensor, top: Tensor
               ) -> list[Recommendations]:
        """:meth:`rank`'s scores and item indices ``[B, k]`` as one list per user, each
        without its ``-inf`` tail (fewer candidates than ``k``)."""
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

    # ------------------------------------------------------------------ large catalogues
    def build_index(self, backend: str = "hnswlib", *, min_items: int = 0,
                    threads: int = 1, **kwargs: Any) -> bool:
        """Rank by an approximate index from now on, when the catalogue has at least
        ``min_items`` items (returns whether it built one). A domain filter still ranks
        exactly; items added later join the index."""
        from kgrec.recommender.ann import AnnIndex

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
            v, t = self._rank_exact(self.user_embedding, users[short], k,
                                    seen=self.seen if exclude_seen else None)
            vals[short], top[short] = v.to(vals.device), t.to(top.device)
        return vals, top.cpu()

    def _domain_mask(self, domain: str) -> Tensor:
        """``[I]`` whether each item is outside ``domain`` (masked when ranking in it)."""
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
