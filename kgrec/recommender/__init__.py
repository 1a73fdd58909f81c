"""What training produces: a :class:`Recommender` that ranks, explains, saves and loads, and
places items and users it was not trained with.

It sits below training (:func:`kgrec.train.train` builds one) and above evaluation (which
ranks with it), and is built from parts, each a module of its own:

- :mod:`kgrec.recommender.catalogue`: ids, names, domains, the vectors, the seen pairs,
  adding items, users and links;
- :mod:`kgrec.recommender.ranking`: scores and top-K lists, exact or through an
  approximate index (:mod:`kgrec.recommender.ann`);
- :mod:`kgrec.recommender.explain`: why an item suits a user;
- :mod:`kgrec.recommender.persistence`: ``save`` / ``load`` (safetensors + JSON);
- :mod:`kgrec.recommender.newusers`: how a new user is placed (fold-in, profile,
  adaptation).
"""

from __future__ import annotations

from kgrec.recommender.explain import Explainer, Explaining, Explanation
from kgrec.recommender.newusers import NewUserEncoder, UserFoldIn
from kgrec.recommender.persistence import FORMAT, Persistence
from kgrec.recommender.ranking import Ranking, Recommendations

__all__ = ["FORMAT", "Explainer", "Explanation", "NewUserEncoder", "Recommendations",
           "Recommender", "UserFoldIn"]


class Recommender(Ranking, Explaining, Persistence):
    """Ranks items for users from trained embeddings.

    Args:
        user_embedding: ``[U, d]``; item_embedding: ``[I, d]``; a pair scores their dot product.
        config: the config it was trained with.
        user_ids, item_ids: external ids (index order).
        item_names: display names ``[I]``; item_domains: ``[I]``.
        seen: ``[U, I]`` CSR of the pairs it learned from (excluded by default).
        kg: the knowledge triples (for :meth:`explain`), with entity ids/names.
        state: the model's weights (``name -> tensor``), kept for fine-tuning and for placing
            new items and profiles (what the model's class reads of them).
        history: per-epoch training records.
        fold_in: what :meth:`add_users` builds new users from (``None``: the model cannot).
        user_profile: how the model encodes a user's profile (``None``: it reads none).
        adaptation: the few-shot adaptation's learned log step sizes ``[d]``
            (:class:`~kgrec.models.adaptation.MetaLearner`), with which :meth:`add_users`
            adapts a new user on its links (``None``: the model was not trained to adapt).

    Attributes:
        new_users: how :meth:`add_users` encodes a new user (``None``: the model cannot).
        adaptation: the ``adaptation`` argument (on the CPU).
    """

    def __repr__(self) -> str:
        return (f"Recommender({self.config.model.name}, dataset={self.dataset!r}, "
                f"users={self.num_users}, items={self.num_items}, "
                f"dim={self.user_embedding.shape[1]})")
