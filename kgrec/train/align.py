"""The aligned model's last two stages, after the id model (the teacher) is trained:
the content student learns to give the teacher's item vectors (:func:`fit_student`), then
the degree gate and the new items' offset are chosen on validation (:func:`calibrate`).
:class:`kgrec.train.Trainer` runs both for a model that
:class:`~kgrec.models.capabilities.AlignsContent` (``model.hgnn.ranking: aligned``).

The student's losses are ALDI's (Huang et al., "Aligning Distillation for Cold-start Item
Recommendation", SIGIR 2023), on triples ``(u, i, j)`` of a training link and a sampled
negative, with the teacher's scores ``t`` and the student's ``s = <teacher user, student
item>``, each pair weighted by how much the teacher knows the item (``q = tanh(n / n0)`` for
an item of ``n`` links, ``n0`` the median degree):

- ``rating``: ``|t_ui - s_ui| + |t_uj - s_uj|``, so a new item lands on the teacher's scale
  (ALDI's rating-distribution alignment);
- ``ranking``: BCE between ``sigmoid(s_ui - s_uj)`` and ``sigmoid(t_ui - t_uj)`` (ranking
  alignment);
- ``identity``: BCE between how far an item's vector is from the batch's others in the
  student and in the teacher (identification alignment);
- ``bpr``: the ranking loss on the student's own scores;
- ``l2`` (the ablation): ``|teacher item - student item|^2`` alone.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from kgrec.config import Config
from kgrec.data.folds import Split
from kgrec.evaluate.ranking import EmbeddingScorer, evaluate
from kgrec.progress import progress as progress_bar

log = logging.getLogger(__name__)

#: the gate's k (links at which an item is half id, half student) tried on validation
GATE_K = (0.0, 1.0, 3.0, 10.0, 30.0)
#: the new items' offset b (in units of the teacher's score spread) tried on validation:
#: negative where the student scores new items above where their links put them
OFFSETS = (-3.0, -2.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)


def fit_student(model: Any, split: Split, cfg: Config, rng: np.random.Generator, *,
                progress: bool = False) -> dict[str, Any]:
    """Train ``model.student`` against the frozen teacher for ``model.hgnn.align_epochs``;
    keeps the epoch whose student ranks the validation links to items without training
    links best among those items (NDCG@20), where the split has such links, else the last.
    Returns the stage's record (epochs, seconds, the per-epoch losses and validation)."""
    o = cfg.model.options
    start = time.perf_counter()
    dev = model.degree.device
    with torch.no_grad():
        model.eval()
        users, items = model.teacher_vectors()
        users, items = users.detach(), items.detach()
        # the spread of the teacher's scores: the unit of the new items' offset
        warm = np.flatnonzero(np.bincount(split.train_items, minlength=split.num_items) > 0)
        su = torch.from_numpy(rng.integers(0, users.shape[0], 4096)).to(dev)
        si = torch.from_numpy(rng.choice(warm, 4096)).to(dev)
        model.score_scale.fill_(float((users[su] * items[si]).sum(-1).std()))
    deg = model.degree
    n0 = float(deg[deg > 0].median()) if bool((deg > 0).any()) else 1.0
    quality = torch.tanh(deg / max(n0, 1.0))
    tu = torch.from_numpy(split.train_users.astype(np.int64))
    ti = torch.from_numpy(split.train_items.astype(np.int64))
    from kgrec.data.sampling import NegativeSampler

    sampler = NegativeSampler(split.train_users, split.train_items, split.num_items, rng)
    params = [p for p in model.student.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.train.lr)
    losses = list(o.align_losses)
    cold_valid = split.valid.cold_items
    has_cold = bool(cold_valid.any()) and split.valid.positives[:, cold_valid].nnz > 0
    best, best_epoch, bad, best_state = -1.0, 0, 0, None
    history: list[dict[str, Any]] = []
    bs = cfg.train.batch_size
    bar = progress_bar(o.align_epochs, "align content", "epoch", enabled=progress)
    for epoch in range(1, o.align_epochs + 1):
        model.student.train()
        perm = torch.from_numpy(rng.permutation(len(tu)))
        total = 0.0
        for b in range(0, len(tu), bs):
            idx = perm[b:b + bs]
            u, i = tu[idx].to(dev), ti[idx].to(dev)
            j = torch.from_numpy(sampler.sample(tu[idx].numpy())).to(dev)
            z = model.student()
            loss = student_loss(losses, users[u], items[i], items[j], z[i], z[j],
                                quality[i], quality[j], cfg.train.reg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        record: dict[str, Any] = {"epoch": epoch, "loss": total / max(1, len(tu))}
        value = _cold_ndcg(model, users, items, split, cfg) if has_cold else None
        has_cold = value is not None
        if value is not None:
            record["valid_cold_ndcg@20"] = value
            if value > best:
                best, best_epoch, bad = value, epoch, 0
                best_state = copy.deepcopy(model.student.state_dict())
            else:
                bad += 1
        history.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4f}")
        if has_cold and bad >= cfg.train.patience:
            break
    bar.close()
    if best_state is not None:
        model.student.load_state_dict(best_state)
    model.aligned.fill_(1.0)
    model.eval()
    out = {"epochs": len(history), "best_epoch": best_epoch or len(history),
           "seconds": time.perf_counter() - start, "score_scale": float(model.score_scale),
           "history": history}
    log.info("student aligned in %.1fs (%d epochs%s)", out["seconds"], out["epochs"],
             f", best cold NDCG@20 {best:.4f} at {best_epoch}" if has_cold else "")
    return out


def student_loss(losses: list[str], user: Tensor, t_pos: Tensor, t_neg: Tensor,
                 s_pos: Tensor, s_neg: Tensor, q_pos: Tensor, q_neg: Tensor,
                 reg: float) -> Tensor:
    """The student's loss on a batch of triples (module docstring): teacher users ``[B, d]``,
    teacher and student positive/negative items ``[B, d]``, teacher quality ``[B]``."""
    if losses == ["l2"]:
        return (q_pos * ((s_pos - t_pos) ** 2).sum(-1)).mean()
    tp, tn = (user * t_pos).sum(-1), (user * t_neg).sum(-1)
    sp, sn = (user * s_pos).sum(-1), (user * s_neg).sum(-1)
    total = reg * 0.5 * ((s_pos ** 2).sum() + (s_neg ** 2).sum()) / len(user)
    if "bpr" in losses:
        total = total - F.logsigmoid(sp - sn).mean()
    if "rating" in losses:
        total = total + (q_pos * (tp - sp).abs() + q_neg * (tn - sn).abs()).mean()
    if "ranking" in losses:
        total = total + (q_pos * F.binary_cross_entropy_with_logits(
            sp - sn, torch.sigmoid(tp - tn), reduction="none")).mean()
    if "identity" in losses:
        def apart(pos: Tensor, neg: Tensor) -> Tensor:
            return (pos * pos).sum(-1) - (pos @ neg.T).mean(-1)

        total = total + (q_pos * F.binary_cross_entropy_with_logits(
            apart(s_pos, s_neg), torch.sigmoid(apart(t_pos, t_neg)), reduction="none")).mean()
    return total


@torch.no_grad()
def _cold_ndcg(model: Any, users: Tensor, items: Tensor, split: Split, cfg: Config
               ) -> float | None:
    """NDCG@20 of the validation links to items without training links, ranked among those
    items by the student (the cold-start protocol's cold setting, on validation); ``None``
    when no validation user has such a link to rank (a cold-user split's held-out users)."""
    model.eval()
    z = model.student()
    table = evaluate(EmbeddingScorer(users, z), split.valid, [20],
                     batch_users=cfg.eval.batch_users, by_cold=False,
                     candidates=split.valid.cold_items)
    value = dict(table).get("ndcg@20")
    return None if value is None else float(value)


@torch.no_grad()
def calibrate(model: Any, split: Split, cfg: Config,
              validate: Any) -> dict[str, Any]:
    """Choose the new items' offset ``b`` (with ``k = 0``), then the gate's ``k`` (with that
    ``b``), then ``b`` again (with that ``k``), each by the validation metric
    (``eval.metric``, every validation link, all items ranked together; ties go to the
    smaller change). ``model.hgnn.gate: exposure`` then takes the largest ``b`` whose metric
    is at least the id model's alone (``id_model`` in the record); ``off`` keeps
    ``k = b = 0``. Returns what was tried and chosen."""
    metric = cfg.eval.metric
    if cfg.model.options.gate == "off":
        model.gate_k.fill_(0.0)
        model.cold_offset.fill_(0.0)
        return {"gate_k": 0.0, "cold_offset": 0.0, "tried": []}
    seen: dict[tuple[float, float], float] = {}

    def score(k: float, b: float) -> float:
        if (k, b) not in seen:
            model.gate_k.fill_(k)
            model.cold_offset.fill_(b)
            seen[(k, b)] = float(validate()[metric])
        return seen[(k, b)]

    def best_offset(k: float) -> float:
        return max(OFFSETS, key=lambda b: (score(k, b), -abs(b)))

    b = best_offset(0.0)
    k = max(GATE_K, key=lambda k: (score(k, b), -k))
    b = best_offset(k)
    reference = None
    if cfg.model.options.gate == "exposure":
        # the id model alone (every item by its id vector): what new items may not cost
        model.aligned.fill_(0.0)
        reference = float(validate()[metric])
        model.aligned.fill_(1.0)
        room = [x for x in OFFSETS if score(k, x) >= reference]
        b = max(room) if room else b
    model.gate_k.fill_(k)
    model.cold_offset.fill_(b)
    log.info("gate chosen on validation: k=%g, new-item offset b=%g (%s=%.4f; %.4f with "
             "neither)", k, b, metric, seen[(k, b)], seen[(0.0, 0.0)])
    return {"gate_k": k, "cold_offset": b, metric: seen[(k, b)],
            **({"id_model": reference} if reference is not None else {}),
            "tried": [{"gate_k": kk, "cold_offset": bb, metric: v}
                      for (kk, bb), v in seen.items()]}
