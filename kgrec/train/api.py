"""Training, as a user calls it: :func:`train` runs a :class:`~kgrec.train.Trainer` and wraps
the trained model in a :class:`~kgrec.recommender.Recommender` (saved with its curves when
``out_dir`` is given); :func:`model_from` rebuilds the model behind a saved recommender.

The trainer itself returns a model and its history and knows nothing of recommenders; this
module, above it in the train layer and above :mod:`kgrec.recommender`, joins the two. It
also hands the recommender what training added to the model beside its own weights: the
few-shot adaptation's learned step sizes (the submodule ``meta_learner``), as the
recommender's ``adaptation``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from kgrec.config import Config
from kgrec.data.folds import Split, fingerprint
from kgrec.graph import ENTITY
from kgrec.models import GraphInputs, RecModel, build_model
from kgrec.models.adaptation import MetaLearner
from kgrec.recommender import Recommender, UserFoldIn
from kgrec.train.loop import Callback, Trainer, outputs


def train(split: Split, config: Config | None = None, *, out_dir: str | Path | None = None,
          logdir: str | Path | None = None, resume: bool = False, progress: bool = True,
          callbacks: Sequence[Callback] = (), stop: threading.Event | None = None
          ) -> Recommender | None:
    """Train ``config.model`` on ``split`` with a :class:`~kgrec.train.Trainer` (its
    arguments, documented there) and wrap the best validated model in a
    :class:`~kgrec.recommender.Recommender`; with ``out_dir`` it is saved there beside
    ``history.json`` and ``curves.png``. After ``train`` returns, ``stop.is_set()`` tells
    whether it was stopped (Ctrl-C, SIGTERM or the event) before its last epoch.

    Under data-parallel training (:mod:`kgrec.train.distributed`) rank 0 returns (and
    saves) the recommender; the other processes return ``None``.
    """
    trainer = Trainer(split, config, out_dir=out_dir, logdir=logdir, resume=resume,
                      progress=progress, callbacks=callbacks, stop=stop)
    trained = trainer.fit()
    if not trainer.world.main:
        return None
    cfg = trained.config
    rec = recommender_from(trained.model, split, cfg, trained.history)
    if out_dir is not None:
        out = Path(out_dir)
        rec.save(out)
        (out / "history.json").write_text(json.dumps(trained.history, indent=1))
        from kgrec.plot import plot_history

        plot_history(trained.history, out / "curves.png",
                     f"{cfg.model.name} on {split.graph.name} ({split.strategy})",
                     trainer.metric)
    return rec


def model_from(rec: Recommender, split: Split, device: str = "cpu") -> RecModel:
    """Rebuild the trained model behind a saved recommender (its config and weights) over
    ``split``'s training graph, e.g. to attack its inputs at test time (without the
    adaptation's learner, which the recommender keeps as its ``adaptation``)."""
    cfg = rec.config
    model = build_model(cfg.model, GraphInputs.from_split(split), device=device,
                        progress=False)
    model.load_state_dict(rec.state)
    return model.to(device).eval()


@torch.no_grad()
def recommender_from(model: RecModel, split: Split, cfg: Config,
                     history: list[dict[str, Any]]) -> Recommender:
    """Freeze a trained model's embeddings into a :class:`Recommender`, with what
    :meth:`Recommender.add_users` builds new users from: the fold-in, and the learned log
    step sizes ``[d]`` of the model's ``meta_learner`` (added by the trainer under
    ``meta.mode``) as its ``adaptation``; its ``state`` is the model's own weights, without
    the learner's."""
    trace: list[Tensor] = []
    users, items = outputs(model, split, cfg, trace)
    parts = model.new_user()
    fold_in = None
    if parts is not None and trace:
        # a user's propagated vector reads the items' layer-l vectors at layer l + 1 only
        # (the graph is bipartite), so their sum is all a new user needs
        n = len(trace) + 1
        fold_in = UserFoldIn(parts[0] / n, parts[1], torch.stack(trace).sum(0) / n)
    learner = getattr(model, "meta_learner", None)
    adaptation = learner.log_lr.detach() if isinstance(learner, MetaLearner) else None
    own = {k: v for k, v in model.state_dict().items()
           if not k.startswith("meta_learner.") and not v.is_sparse and v.layout == torch.strided}
    g = split.graph
    ent = g.nodes.get(ENTITY)
    kg = g.knowledge()
    return Recommender(users, items, config=cfg, user_ids=g.users.ids.tolist(),
                       item_ids=g.items.ids.tolist(), item_names=g.item_text().tolist(),
                       item_domains=g.items.attrs.get("domain", np.full(g.num_items, "")).tolist(),
                       seen=split.train_matrix(), kg=kg if len(kg) else None,
                       entity_ids=ent.ids.tolist() if ent is not None else [],
                       entity_names=(ent.attrs["name"].tolist() if ent is not None
                                     and "name" in ent.attrs else []),
                       state=own, history=history, dataset=g.name,
                       split_fingerprint=fingerprint(split), fold_in=fold_in,
                       user_profile=model.user_profile(), adaptation=adaptation,
                       device=users.device)
