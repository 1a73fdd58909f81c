"""Fusing a node type's modalities into one input vector ``[N, d]``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kgrec.features.build import Modalities
from kgrec.models.ops import gather_rows


class Fusion(nn.Module):
    """Projects each present modality to ``d`` and mixes them per node.

    ``mode="attention"``: a learned score per (node, modality), softmax over the modalities
    that node actually has (missing ones are masked out, not zero-filled);
    ``mode="mean"``: the plain mean of the present modalities (the ablation).
    A node with no modality at all gets a learned 'unknown' vector.

    Args:
        m: the node type's :class:`Modalities` (kept as buffers, moved with the module).
        dim: output size ``d``.
    """

    def __init__(self, m: Modalities, dim: int, mode: str = "attention") -> None:
        super().__init__()
        self.mode = mode
        self.num_nodes = m.num_nodes
        self.kinds: list[str] = []
        if m.text is not None:
            # Many nodes share a text (Book-Crossing's 62,936 entities have 10; ml-100k's
            # 33,030 have 12,421): project each distinct text once per step, then gather.
            text, index = torch.unique(m.text, dim=0, return_inverse=True)
            self.register_buffer("text", text, persistent=False)
            self.register_buffer("text_index", index, persistent=False)
            self.register_buffer("text_mask", m.text_mask, persistent=False)
            self.text_proj = nn.Linear(m.text.shape[1], dim)
            self.kinds.append("text")
        if m.categorical:
            self.register_buffer("cat", torch.stack(m.categorical, 1), persistent=False)
            self.cat_emb = nn.ModuleList(nn.Embedding(c, dim, padding_idx=0)
                                         for c in m.cardinalities)
            self.kinds.append("categorical")
        if m.numeric is not None:
            self.register_buffer("num", m.numeric, persistent=False)
            self.register_buffer("num_mask", m.numeric_mask, persistent=False)
            # the mask is an input too: 'age unknown' is information, not age 0
            self.num_proj = nn.Linear(2 * m.numeric.shape[1], dim)
            self.kinds.append("numeric")
        if m.vectors is not None:
            self.register_buffer("vec", m.vectors, persistent=False)
            self.register_buffer("vec_mask", m.vectors_mask, persistent=False)
            self.vec_proj = nn.Linear(m.vectors.shape[1], dim)
            self.kinds.append("vectors")
        self.score = nn.Linear(dim, 1, bias=False)
        self.unknown = nn.Parameter(torch.zeros(dim))

    @property
    def empty(self) -> bool:
        return not self.kinds

    def forward(self) -> Tensor:
        """``[N, d]``."""
        parts, masks = [], []
        if "text" in self.kinds:
            # gather_rows: the empty text alone repeats ~54k times on Book-Crossing, which
            # CUDA's deterministic index_add backward serialises
            parts.append(gather_rows(self.text_proj(self.text), self.text_index))
            masks.append(self.text_mask)
        if "categorical" in self.kinds:
            parts.append(sum(e(self.cat[:, k]) for k, e in enumerate(self.cat_emb)))
            masks.append((self.cat > 0).any(1))
        if "numeric" in self.kinds:
            m = self.num_mask.float()
            parts.append(self.num_proj(torch.cat([self.num * m, m], 1)))
            masks.append(self.num_mask.any(1))
        if "vectors" in self.kinds:
            parts.append(self.vec_proj(self.vec))
            masks.append(self.vec_mask)
        p = torch.stack(parts, 1)                    # [N, M, d]
        mask = torch.stack(masks, 1)                 # [N, M]
        if self.mode == "attention":
            logits = self.score(torch.tanh(p)).squeeze(-1).masked_fill(~mask, -torch.inf)
            w = torch.softmax(logits, 1).nan_to_num(0.0)  # rows with nothing: all zero
        else:
            w = mask.float() / mask.sum(1, keepdim=True).clamp(min=1)
        out = (w.unsqueeze(-1) * p).sum(1)
        none = ~mask.any(1)
        return torch.where(none.unsqueeze(-1), self.unknown.expand_as(out), out)
