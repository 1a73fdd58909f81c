"""What every recommender model shares: its inputs and its interface."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from kgrec.graph import KnowledgeTriples


@dataclass
class GraphInputs:
    """What a model may see of the data: sizes, the training interactions and the KG.

    Attributes:
        num_users, num_items: node counts.
        train_users, train_items: training positives ``[P]`` (the message-passing graph).
        kg: knowledge triples in the joint item+entity index space, or ``None``.
    """

    num_users: int
    num_items: int
    train_users: np.ndarray
    train_items: np.ndarray
    kg: KnowledgeTriples | None = None


class RecModel(nn.Module):
    """A model that embeds every user and item; a pair's score is the dot product.

    Subclasses implement :meth:`forward` (full-graph propagation) and :meth:`ego` (the input
    embeddings of a batch, for L2 regularisation).
    """

    def forward(self) -> tuple[Tensor, Tensor]:
        """Returns ``(users [U, d], items [I, d])``."""
        raise NotImplementedError

    def ego(self, users: Tensor, items: Tensor) -> list[Tensor]:
        """Input embeddings of a batch's users ``[B]`` and items ``[B']`` (for L2 terms)."""
        raise NotImplementedError

    def auxiliary_loss(self) -> Tensor | None:
        """An extra training loss (e.g. KG completion), or ``None``."""
        return None


def bipartite_adjacency(users: np.ndarray, items: np.ndarray, num_users: int,
                        num_items: int) -> Tensor:
    """The symmetric-normalised adjacency of the user-item graph over ``U + I`` nodes.

    ``A[u, U + i] = A[U + i, u] = 1 / sqrt(deg(u) deg(i))`` for each unique training pair.

    Returns:
        ``torch.sparse_csr`` tensor ``[U + I, U + I]`` (CSR: much faster than ``edge_index``
        for this propagation on CPU).
    """
    keys = np.unique(users.astype(np.int64) * num_items + items)
    u, i = keys // num_items, keys % num_items
    du = np.bincount(u, minlength=num_users).astype(np.float64)
    di = np.bincount(i, minlength=num_items).astype(np.float64)
    w = 1.0 / np.sqrt(du[u] * di[i])
    rows = np.concatenate([u, i + num_users])
    cols = np.concatenate([i + num_users, u])
    vals = np.concatenate([w, w]).astype(np.float32)
    n = num_users + num_items
    coo = torch.sparse_coo_tensor(torch.from_numpy(np.stack([rows, cols])),
                                  torch.from_numpy(vals), (n, n)).coalesce()
    return coo.to_sparse_csr()
