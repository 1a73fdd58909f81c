"""The training loop: BPR (or sampled softmax) with sampled negatives, validation-based early
stopping, TensorBoard curves, a PNG plot, and checkpoints that let a killed run resume."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from kgrec.config import Config
from kgrec.data.split import Split, fingerprint
from kgrec.errors import KgrecError
from kgrec.evaluate.ranking import evaluate, evaluate_ctr
from kgrec.graph import ENTITY
from kgrec.models import GraphInputs, RecModel, build_model
from kgrec.models.base import Objective, PairBatch
from kgrec.progress import progress as progress_bar
from kgrec.serve import Recommender, UserFoldIn
from kgrec.train.sampling import NegativeSampler

log = logging.getLogger(__name__)

Callback = Callable[[int, dict[str, Any]], None]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        from kgrec.errors import ConfigError

        raise ConfigError("train.device: cuda requested but no CUDA device is available")
    return torch.device(name)


def graph_inputs(split: Split) -> GraphInputs:
    """What the model may see: only the training interactions, plus the whole KG."""
    kg = split.kg if split.kg is not None else split.graph.knowledge()
    return GraphInputs(split.num_users, split.num_items, split.train_users, split.train_items,
                       kg if len(kg) else None, split.graph)


class EmbeddingScorer:
    """Scores from user ``[U, d]`` and item ``[I, d]`` vectors (validation, and anything
    :func:`kgrec.evaluate` should rank from vectors that are not a saved recommender's)."""

    def __init__(self, users: Tensor, items: Tensor) -> None:
        self.users, self.items = users, items

    def score_users(self, users: np.ndarray) -> Tensor:
        return self.users[torch.as_tensor(users, device=self.users.device)] @ self.items.T

    def score_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        u = self.users[torch.as_tensor(users, device=self.users.device)]
        i = self.items[torch.as_tensor(items, device=self.items.device)]
        return (u * i).sum(-1).cpu().numpy()


def objective(cfg: Config) -> Objective:
    """The ranking loss ``cfg.train`` asks for."""
    return Objective(cfg.train.loss, cfg.train.temperature)


@torch.no_grad()
def outputs(model: RecModel, split: Split, cfg: Config,
            trace: list[Tensor] | None = None) -> tuple[Tensor, Tensor]:
    """The user ``[U, d]`` and item ``[I, d]`` vectors to rank with: the model's, or under
    ``meta.mode`` finetune/meta, with the split's held-out nodes adapted on their K support
    links (:func:`kgrec.train.meta.fewshot_outputs`). ``trace``: see
    :meth:`~kgrec.models.base.RecModel.forward`."""
    model.eval()
    learner = getattr(model, "meta_learner", None)
    if cfg.meta.mode == "off" or learner is None:
        return model(trace=trace)
    from kgrec.train.meta import fewshot_outputs

    return fewshot_outputs(model, learner, split, seed=cfg.train.seed, trace=trace)


@torch.no_grad()
def validate(model: RecModel, split: Split, cfg: Config) -> dict[str, float]:
    """Validation metrics (never the test set): ranking metrics, or AUC for the CTR protocol."""
    scorer = EmbeddingScorer(*outputs(model, split, cfg))
    if split.strategy == "ctr":
        return {"auc": evaluate_ctr(scorer, split.ctr["valid"], threshold=0.0)["auc"]}
    return dict(evaluate(scorer, split.valid, cfg.eval.ks, batch_users=cfg.eval.batch_users,
                         by_cold=False))


@dataclass
class _State:
    epoch: int = 0
    best: float = -float("inf")
    best_epoch: int = 0
    bad: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def _save_checkpoint(out: Path, model: RecModel, opt: torch.optim.Optimizer, state: _State,
                     rng: np.random.Generator, cfg: Config) -> None:
    """The resumable state after an epoch; written to temp files, then renamed."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    osd = opt.state_dict()
    for pid, st in osd["state"].items():
        for k, v in st.items():
            tensors[f"optim.{pid}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(v)).cpu()
    tensors["torch_rng"] = torch.get_rng_state()
    save_file(tensors, str(out / "last.safetensors.tmp"))
    doc = {"config": cfg.to_dict(), "state": state.__dict__, "numpy_rng": rng.bit_generator.state,
           "param_groups": osd["param_groups"]}
    (out / "last.json.tmp").write_text(json.dumps(doc))
    (out / "last.safetensors.tmp").replace(out / "last.safetensors")
    (out / "last.json.tmp").replace(out / "last.json")


def _load_checkpoint(out: Path, model: RecModel, opt: torch.optim.Optimizer,
                     rng: np.random.Generator) -> _State:
    t = load_file(str(out / "last.safetensors"))
    doc = json.loads((out / "last.json").read_text())
    model.load_state_dict({k[6:]: v for k, v in t.items() if k.startswith("model.")})
    ostate: dict[int, dict[str, Tensor]] = {}
    for k, v in t.items():
        if k.startswith("optim."):
            _, pid, name = k.split(".", 2)
            ostate.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": ostate, "param_groups": doc["param_groups"]})
    torch.set_rng_state(t["torch_rng"])
    rng.bit_generator.state = doc["numpy_rng"]
    return _State(**doc["state"])


@contextlib.contextmanager
def _determinism(on: bool):
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(on, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


def train(split: Split, config: Config | None = None, *, out_dir: str | Path | None = None,
          logdir: str | Path | None = None, resume: bool = False, progress: bool = True,
          callbacks: Sequence[Callback] = (), stop: threading.Event | None = None
          ) -> Recommender:
    """Train ``config.model`` on ``split``'s training interactions.

    Each epoch passes once over the training positives in mini-batches, one uniformly sampled
    non-positive item per positive, with the ranking loss (``train.loss``: BPR, or sampled
    softmax over the batch's items) plus L2 on the batch's input embeddings.
    Every ``eval_every`` epochs the validation metric (``config.eval.metric``; AUC for the
    click-through protocol) is computed; the best epoch's weights are kept and training stops
    after ``patience`` evaluations without improvement.

    Args:
        split: from :func:`kgrec.split` (the test set is never looked at).
        config: the configuration (default :class:`Config`).
        out_dir: where to save the recommender, ``curves.png``, ``history.json`` and the
            resumable ``last.*`` checkpoint.
        logdir: TensorBoard event directory.
        resume: continue from ``out_dir``'s checkpoint when there is one.
        progress: show a progress bar.
        callbacks: called as ``cb(epoch, record)`` after each validation; may raise to stop
            (Optuna's pruning does).
        stop: set it (from another thread) to stop training after the current step, as the
            first Ctrl-C or SIGTERM does: the best validated epoch is kept and saved, a
            complete run (:class:`TrainingStopped` if none was validated yet). After
            ``train`` returns, ``stop.is_set()`` tells whether it was stopped so.

    Returns:
        the trained :class:`~kgrec.serve.Recommender` (best validation epoch).
    """
    cfg = copy.deepcopy(config or Config()).check()
    _record_what_is_trained(cfg, split)
    stop = stop if stop is not None else threading.Event()
    with _determinism(cfg.train.deterministic), _stop_on_signal(stop):
        return _train(split, cfg, out_dir, logdir, resume, progress, callbacks, stop)


class TrainingStopped(KgrecError):
    """Training was stopped (Ctrl-C, SIGTERM) before any epoch was validated, so there is no
    model to keep; the ``last.*`` checkpoint of ``out_dir`` resumes it."""

    exit_code = 130  # as an interrupted command


@contextlib.contextmanager
def _stop_on_signal(stop: threading.Event) -> Any:
    """While training, the first SIGINT (Ctrl-C) or SIGTERM sets ``stop``: training ends
    after the current step, keeping the best validated epoch; a second one stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signals reach the main thread only; nothing to install
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set():
            signal.signal(signum, previous[signum])
            raise KeyboardInterrupt
        stop.set()
        log.warning("%s: stopping after the current step (again to stop at once)",
                    signal.Signals(signum).name)

    for s in previous:
        signal.signal(s, handler)
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _record_what_is_trained(cfg: Config, split: Split) -> None:
    """Make ``cfg.data`` name the data the model is trained on, so that the saved run
    rebuilds exactly this split (``kgrec evaluate RUN``): a config built in Python may still
    name the default dataset while the split came from a recipe."""
    from kgrec.ingest import list_datasets
    from kgrec.ingest.recipe import recipe_path

    g, d = split.graph, cfg.data
    source = str(g.meta.get("source", ""))
    recipe_file = g.meta.get("recipe_file")
    if source.startswith(("bolt://", "bolt+s://", "neo4j://", "neo4j+s://")):
        trained_on = f"{source}#{g.meta.get('dataset', g.name)}"
    elif g.name in list_datasets() and recipe_file and Path(recipe_file).is_file() \
            and Path(recipe_file).resolve() == recipe_path(g.name).resolve():
        trained_on = g.name
    elif recipe_file and Path(recipe_file).is_file():
        trained_on = str(Path(recipe_file).resolve())
    else:
        trained_on = g.name  # a graph built in memory: evaluate it from Python
    named = {"dataset": trained_on, "split": split.strategy, "seed": split.seed,
             "shots": split.shots}
    for key, value in named.items():
        if getattr(d, key) != value:
            log.info("config data.%s: %r -> %r (what is trained on)", key, getattr(d, key),
                     value)
            setattr(d, key, value)


def _train(split: Split, cfg: Config, out_dir: str | Path | None, logdir: str | Path | None,
           resume: bool, progress: bool, callbacks: Sequence[Callback],
           stop: threading.Event) -> Recommender:
    device = resolve_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)
    rng = np.random.default_rng(cfg.train.seed)
    inputs = graph_inputs(split)
    model = build_model(cfg.model, inputs, device=str(device), progress=progress).to(device)
    model.objective = objective(cfg)
    sampler = NegativeSampler(split.train_users, split.train_items, split.num_items, rng)
    if cfg.train.adv_eps > 0:
        from kgrec.models.base import Adversary

        model.adversary = Adversary(cfg.train.adv_eps, cfg.train.adv_weight,
                                    cfg.train.adv_steps)
    meta = None
    if cfg.meta.mode != "off":
        from kgrec.train.meta import MetaLearner, MetaObjective

        # a submodule: optimised, checkpointed, resumed and kept at the best epoch with it
        model.add_module("meta_learner", MetaLearner(
            cfg.model.dim, cfg.meta.inner_steps, cfg.meta.inner_lr,
            learn_lr=cfg.meta.mode == "meta" and cfg.meta.learn_inner_lr).to(device))
        if cfg.meta.mode == "meta":
            meta = MetaObjective(model, split, cfg.meta, model.meta_learner, sampler, rng)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.train.lr)
    metric = "auc" if split.strategy == "ctr" else cfg.eval.metric
    has_valid = len(split.valid) > 0 or split.strategy == "ctr"
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(out / "config.yaml")  # `kgrec train --config <out>/config.yaml --resume`

    state = _State()
    best_state = copy.deepcopy(model.state_dict())
    if resume and out is not None and (out / "last.safetensors").is_file():
        state = _load_checkpoint(out, model, opt, rng)
        if (out / "best.safetensors").is_file():
            best_state = load_file(str(out / "best.safetensors"))
        log.info("resumed %s at epoch %d (best %s=%.4f at %d)", out, state.epoch, metric,
                 state.best, state.best_epoch)

    writer = None
    if logdir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(logdir))

    tu = torch.from_numpy(split.train_users)
    ti = torch.from_numpy(split.train_items)
    n_pos, bs = len(tu), cfg.train.batch_size
    bar = progress_bar(cfg.train.epochs, f"train {cfg.model.name}", "epoch", enabled=progress,
                       initial=state.epoch)
    stopped = interrupted = False
    last_valid = time.monotonic()
    for epoch in range(state.epoch + 1, cfg.train.epochs + 1):
        model.train()
        start = time.perf_counter()
        perm = torch.from_numpy(rng.permutation(n_pos))
        total = 0.0
        part_sums: dict[str, float] = {}
        for b in range(0, n_pos, bs):
            if stop.is_set():  # Ctrl-C / SIGTERM: this epoch is not finished, not recorded
                interrupted = True
                break
            idx = perm[b:b + bs]
            u, i = tu[idx], ti[idx]
            j = torch.from_numpy(sampler.sample(u.numpy()))
            batch = PairBatch(u.to(device), i.to(device), j.to(device), idx.to(device))
            loss, parts = model.loss(batch, cfg.train.reg)
            if meta is not None:
                lm, mparts = meta.loss()
                loss = loss + cfg.meta.weight * lm
                parts = {**parts, **mparts}
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(u)
            for k, v in parts.items():
                part_sums[k] = part_sums.get(k, 0.0) + v * len(u)
            bar.update(len(u) / n_pos)  # a long epoch shows its progress too
        if interrupted:
            break
        record: dict[str, Any] = {"epoch": epoch, "loss": total / max(1, n_pos),
                                  "seconds": time.perf_counter() - start}
        if len(part_sums) > 1 or set(part_sums) - {model.objective.kind}:
            record["parts"] = {k: v / max(1, n_pos) for k, v in part_sums.items()}
        due = (epoch % cfg.train.eval_every == 0 or epoch == cfg.train.epochs or (
            cfg.train.eval_every_seconds > 0
            and time.monotonic() - last_valid >= cfg.train.eval_every_seconds))
        if has_valid and due:
            last_valid = time.monotonic()
            record["valid"] = validate(model, split, cfg)
            value = record["valid"][metric]
            if value > state.best:
                state.best, state.best_epoch, state.bad = value, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
                record["best"] = True
                if out is not None:
                    save_file({k: v.detach().cpu().contiguous() for k, v in best_state.items()},
                              str(out / "best.safetensors"))
            else:
                state.bad += 1
            bar.set_postfix(loss=f"{record['loss']:.4f}", **{metric: f"{value:.4f}"},
                            best=f"{state.best:.4f}@{state.best_epoch}")
        else:
            bar.set_postfix(loss=f"{record['loss']:.4f}")
        state.history.append(record)
        state.epoch = epoch
        if writer is not None:
            writer.add_scalar("train/loss", record["loss"], epoch)
            writer.add_scalar("train/seconds", record["seconds"], epoch)
            for k, v in record.get("parts", {}).items():
                writer.add_scalar(f"train/{k}", v, epoch)
            for k, v in record.get("valid", {}).items():
                writer.add_scalar(f"valid/{k}", v, epoch)
        if out is not None:
            _save_checkpoint(out, model, opt, state, rng, cfg)
        if "valid" in record:
            for cb in callbacks:
                cb(epoch, record)
        if state.bad >= cfg.train.patience:
            log.info("early stop at epoch %d; best %s=%.4f at epoch %d", epoch, metric,
                     state.best, state.best_epoch)
            stopped = True
            break
    bar.close()
    if writer is not None:
        writer.close()
    if interrupted:
        if has_valid and not state.best_epoch:
            raise TrainingStopped(
                f"training stopped at epoch {state.epoch + 1} before any epoch was validated "
                f"(every {cfg.train.eval_every} epochs): no model to keep"
                + (f"; `kgrec train --config {out / 'config.yaml'} --out {out} --resume` "
                   "continues it" if out is not None else ""))
        log.warning("training stopped during epoch %d; keeping the best validated epoch (%d, "
                    "%s=%.4f)", state.epoch + 1, state.best_epoch, metric, state.best)
    elif not stopped:
        log.info("ran %d epochs; best %s=%.4f at epoch %d", state.epoch, metric, state.best,
                 state.best_epoch)
    if has_valid:
        model.load_state_dict(best_state)
    rec = recommender_from(model, split, cfg, state.history)
    if out is not None:
        rec.save(out)
        (out / "history.json").write_text(json.dumps(state.history, indent=1))
        from kgrec.plot import plot_history

        plot_history(state.history, out / "curves.png",
                     f"{cfg.model.name} on {split.graph.name} ({split.strategy})", metric)
    return rec


def model_from(rec: Recommender, split: Split, device: str = "cpu") -> RecModel:
    """Rebuild the trained model behind a saved recommender (its config and weights) over
    ``split``'s training graph, e.g. to attack its inputs at test time."""
    cfg = rec.config
    model = build_model(cfg.model, graph_inputs(split), device=device, progress=False)
    model.objective = objective(cfg)
    state = {k: v for k, v in rec.state.items() if not k.startswith("meta_learner.")}
    model.load_state_dict(state)
    return model.to(device).eval()


@torch.no_grad()
def recommender_from(model: RecModel, split: Split, cfg: Config,
                     history: list[dict[str, Any]]) -> Recommender:
    """Freeze a trained model's embeddings into a :class:`Recommender`, with what
    :meth:`Recommender.add_users` builds new users from."""
    trace: list[Tensor] = []
    users, items = outputs(model, split, cfg, trace)
    parts = model.new_user()
    fold_in = None
    if parts is not None and trace:
        # a user's propagated vector reads the items' layer-l vectors at layer l + 1 only
        # (the graph is bipartite), so their sum is all a new user needs
        n = len(trace) + 1
        fold_in = UserFoldIn(parts[0] / n, parts[1], torch.stack(trace).sum(0) / n)
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
                       state={k: v for k, v in model.state_dict().items() if not v.is_sparse
                              and v.layout == torch.strided},
                       history=history, dataset=g.name, split_fingerprint=fingerprint(split),
                       fold_in=fold_in, user_profile=model.user_profile(), device=users.device)
