"""A :class:`~kgrec.recommender.Recommender` on disk: a directory with
``model.safetensors`` (embeddings, model weights, the adaptation's step sizes, the training
interactions and KG needed for exclusion and explanations) and ``recommender.json`` (config,
id vocabularies, item names, training history). No pickle anywhere.

What older versions saved differently is translated on load, in the one place that knows
it (:func:`kgrec.config.migrate.migrate_run`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file

from kgrec.config import Config
from kgrec.config.migrate import migrate_run
from kgrec.errors import StoreError
from kgrec.features.build import AttributeSchema
from kgrec.graph import KnowledgeTriples
from kgrec.recommender.catalogue import Catalogue
from kgrec.recommender.newusers import UserFoldIn

FORMAT = "kgrec-recommender/1"

ADAPTATION = "adaptation.log_lr"
"""The ``model.safetensors`` key of the adaptation's log step sizes ``[d]``."""


class Persistence(Catalogue):
    """:meth:`save` and :meth:`load` of a :class:`~kgrec.recommender.catalogue.Catalogue`
    (and so of a :class:`~kgrec.recommender.Recommender`)."""

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
        if self.adaptation is not None:
            tensors[ADAPTATION] = self.adaptation.cpu().contiguous()
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
    def load(cls, path: str | Path, device: str = "cpu") -> Self:
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
        # the saved config is checked by every layer that holds a registry it names (models,
        # split strategies; metrics are evaluate's, loaded with the ranking): a run of a
        # model nobody registered is refused here, naming it. Loaded before the migration,
        # which reads the models' options to place an old flat option name.
        import kgrec.data
        import kgrec.models  # noqa: F401

        doc, t = migrate_run(doc, t)
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
        return cls(t["user_embedding"], t["item_embedding"],
                   config=Config.from_dict(doc["config"]), user_ids=doc["user_ids"],
                   item_ids=doc["item_ids"], item_names=doc["item_names"],
                   item_domains=doc["item_domains"], seen=seen, kg=kg,
                   entity_ids=doc["entity_ids"], entity_names=doc["entity_names"],
                   state=state, history=doc["history"], dataset=doc.get("dataset", ""),
                   split_fingerprint=doc.get("split_fingerprint", ""), fold_in=fold_in,
                   user_profile=(AttributeSchema.from_dict(doc["user_profile"])
                                 if doc.get("user_profile") else None),
                   adaptation=t.get(ADAPTATION), device=device)
