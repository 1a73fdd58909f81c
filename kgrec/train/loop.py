"""The trainer: mini-batch steps over the training pairs with sampled negatives, the objective's
terms summed (:mod:`kgrec.train.objectives`), validation-based early stopping, TensorBoard
curves and checkpoints that let a killed run resume.

:class:`Trainer` is RecBole's trainer in spirit: each part of a run is a method a subclass can
override (:meth:`~Trainer.build_model`, :meth:`~Trainer.build_objective`,
:meth:`~Trainer.train_step`, :meth:`~Trainer.train_epoch`, :meth:`~Trainer.validate`,
:meth:`~Trainer.save_checkpoint`, :meth:`~Trainer.on_epoch_end`), and callbacks hook into
each validation. It returns the trained model and its history (:class:`TrainedModel`);
:func:`kgrec.train` (in :mod:`kgrec.train.api`) wraps that in a
:class:`~kgrec.recommender.Recommender` and saves it.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from kgrec.config import Config
from kgrec.data.folds import Split
from kgrec.data.sampling import NegativeSampler
from kgrec.evaluate.ranking import EmbeddingScorer, evaluate, evaluate_ctr
from kgrec.models import GraphInputs, RecModel, build_model
from kgrec.models.base import PairBatch
from kgrec.models.capabilities import AlignsContent, has
from kgrec.progress import progress as progress_bar
from kgrec.train import distributed
from kgrec.train.checkpoint import (
    RunState,
    TrainingStopped,
    determinism,
    load_checkpoint,
    save_checkpoint,
    stop_on_signal,
)
from kgrec.train.objectives import Objective, build_objective

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
    """Validation metrics (never the test set): ranking metrics, or AUC for the CTR protocol.

    Under data-parallel training every process must call it (the forward pass is
    collective); rank 0 ranks and every process gets its metrics."""
    world = distributed.current()
    vectors = outputs(model, split, cfg)
    if world.parallel:
        return world.broadcast(validate_outputs(vectors, split, cfg) if world.main else None)
    return validate_outputs(vectors, split, cfg)


def validate_outputs(vectors: tuple[Tensor, Tensor], split: Split,
                     cfg: Config) -> dict[str, float]:
    """:func:`validate` from the user and item vectors."""
    scorer = EmbeddingScorer(*vectors)
    if split.strategy == "ctr":
        return {"auc": evaluate_ctr(scorer, split.ctr["valid"], threshold=0.0)["auc"]}
    return dict(evaluate(scorer, split.valid, cfg.eval.ks, batch_users=cfg.eval.batch_users,
                         by_cold=False))


def _record_what_is_trained(cfg: Config, split: Split) -> None:
    """Make ``cfg.data`` name the data the model is trained on, so that the saved run
    rebuilds exactly this split (``kgrec evaluate RUN``): a config built in Python may still
    name the default dataset while the split came from a recipe."""
    from kgrec.ingest import is_neo4j_uri, list_datasets
    from kgrec.ingest.recipe import recipe_path

    g, d = split.graph, cfg.data
    source = str(g.meta.get("source", ""))
    recipe_file = g.meta.get("recipe_file")
    if is_neo4j_uri(source):
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


@dataclass
class TrainedModel:
    """What a :class:`Trainer` run gives: the model at its best validated epoch (in eval
    mode), its per-epoch history, and the config and split it was trained with."""

    model: RecModel
    history: list[dict[str, Any]]
    config: Config
    split: Split
    best_epoch: int = 0


class Trainer:
    """Trains ``config.model`` on ``split``'s training interactions.

    Each epoch passes once over the training positives in mini-batches, one uniformly sampled
    non-positive item per positive, minimising the objective (:meth:`build_objective`: the
    ranking loss, ``train.loss``, plus the terms the config enables). Every ``eval_every``
    epochs the validation metric (``config.eval.metric``; AUC for the click-through
    protocol) is computed; the best epoch's weights are kept and training stops after
    ``patience`` evaluations without improvement.

    Args:
        split: from :func:`kgrec.split` (the test set is never looked at).
        config: the configuration (default :class:`Config`).
        out_dir: where to write ``config.yaml``, the best weights and the resumable
            ``last.*`` checkpoint.
        logdir: TensorBoard event directory.
        resume: continue from ``out_dir``'s checkpoint when there is one.
        progress: show a progress bar.
        callbacks: called as ``cb(epoch, record)`` after each validation; may raise to stop
            (Optuna's pruning does).
        stop: set it (from another thread) to stop training after the current step, as the
            first Ctrl-C or SIGTERM does (the best validated epoch is kept;
            :class:`TrainingStopped` if none was validated yet).

    Override a step to change it: e.g. ``build_optimizer`` for another optimiser,
    ``train_step`` for gradient clipping, ``on_epoch_end`` for your own logging.

    Data-parallel (:mod:`kgrec.train.distributed`): when this process is one of several
    (``kgrec train --nproc``, ``torchrun``), each step's pairs are shared among them, the
    graph's rows are partitioned, and rank 0 validates, checkpoints and returns the model
    the others trained with it (theirs is the same).
    """

    def __init__(self, split: Split, config: Config | None = None, *,
                 out_dir: str | Path | None = None, logdir: str | Path | None = None,
                 resume: bool = False, progress: bool = True,
                 callbacks: Sequence[Callback] = (),
                 stop: threading.Event | None = None) -> None:
        self.cfg = copy.deepcopy(config or Config()).check()
        _record_what_is_trained(self.cfg, split)
        self.split = split
        self.out = Path(out_dir) if out_dir is not None else None
        self.logdir, self.resume, self.progress = logdir, resume, progress
        self.callbacks = list(callbacks)
        self.stop = stop if stop is not None else threading.Event()
        self.metric = "auc" if split.strategy == "ctr" else self.cfg.eval.metric
        self.has_valid = len(split.valid) > 0 or split.strategy == "ctr"
        self.world = distributed.current()
        if not self.world.main:  # one process reports and writes
            self.out, self.logdir, self.progress = None, None, False

    # ------------------------------------------------------------- the parts of a run
    def build_model(self) -> RecModel:
        """The registered model ``model.name``, over the split's training view."""
        return build_model(self.cfg.model, GraphInputs.from_split(self.split),
                           device=str(self.device), progress=self.progress).to(self.device)

    def build_objective(self) -> Objective:
        """The objective's terms for this config and model
        (:func:`kgrec.train.objectives.build_objective`)."""
        return build_objective(self.model, self.cfg, self.split, self.sampler, self.rng)

    def build_optimizer(self) -> torch.optim.Optimizer:
        """Adam at ``train.lr`` over every trainable parameter (the objective's included:
        they are the model's submodules)."""
        return torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad],
                                lr=self.cfg.train.lr)

    def train_step(self, batch: PairBatch) -> tuple[float, dict[str, float]]:
        """One optimiser step on ``batch``; returns the loss and its logged parts."""
        loss, parts = self.objective(self.model, batch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.world.parallel:  # the shards' gradients sum to the step's
            distributed.all_reduce_grads(self._params, self.world)
        self.opt.step()
        return float(loss.detach()), parts

    def train_epoch(self, epoch: int) -> dict[str, Any] | None:
        """One pass over the training pairs; the epoch's record, or ``None`` if stopped
        during it (the unfinished epoch is not recorded)."""
        self.model.train()
        start = time.perf_counter()
        n_pos, bs = len(self._tu), self.cfg.train.batch_size
        perm = torch.from_numpy(self.rng.permutation(n_pos))
        shared = bool(getattr(self.objective.loss, "shared", False))
        world = self.world
        total = 0.0
        part_sums: dict[str, float] = {}
        for b in range(0, n_pos, bs):
            if world.any(self.stop.is_set()):  # Ctrl-C / SIGTERM (on any process)
                return None
            idx = perm[b:b + bs]
            u, i = self._tu[idx], self._ti[idx]
            # every process draws the whole step (their generators stay in step) ...
            j = torch.from_numpy(self.sampler.shared(self.cfg.train.negatives) if shared
                                 else self.sampler.sample(u.numpy()))
            step = len(u)
            if world.parallel:  # ... and keeps its shard of it
                mine = world.shard(step)
                idx, u, i = idx[mine], u[mine], i[mine]
                j = j if shared else j[mine]
            dev = self.device
            batch = PairBatch(u.to(dev), i.to(dev), j.to(dev), idx.to(dev),
                              total=step if world.parallel else None, shared=shared,
                              owns_shared=world.main)
            loss, parts = self.train_step(batch)
            if world.parallel:  # the step's loss is the sum of the shards'
                loss, parts = self._sum_logged(loss, parts, len(u) / step)
            total += loss * step
            for k, v in parts.items():
                part_sums[k] = part_sums.get(k, 0.0) + v * step
            self.bar.update(step / n_pos)  # a long epoch shows its progress too
        record: dict[str, Any] = {"epoch": epoch, "loss": total / max(1, n_pos),
                                  "seconds": time.perf_counter() - start}
        if len(part_sums) > 1 or set(part_sums) - {self.objective.loss.kind}:
            record["parts"] = {k: v / max(1, n_pos) for k, v in part_sums.items()}
        return record

    def validate(self) -> dict[str, float]:
        """Validation metrics of the current model (:func:`validate`)."""
        return validate(self.model, self.split, self.cfg)

    def align(self) -> dict[str, Any]:
        """The aligned model's last stages, after the teacher's best epoch is restored: the
        content student against the frozen teacher, then the gate and the new items' offset
        on validation (:mod:`kgrec.train.align`). Returns their record (kept with the last
        epoch's, under ``align``)."""
        from kgrec.train.align import calibrate, fit_student

        student = fit_student(self.model, self.split, self.cfg, self.rng,
                              progress=self.progress)

        def validate_here() -> dict[str, float]:
            # rank 0 alone aligns (the others have finished): not the collective validate
            return validate_outputs(outputs(self.model, self.split, self.cfg), self.split,
                                    self.cfg)

        gate = calibrate(self.model, self.split, self.cfg, validate_here) if self.has_valid \
            else {"gate_k": 0.0, "cold_offset": 0.0, "tried": []}
        self.model.eval()
        return {"student": student, "gate": gate}

    def _sum_logged(self, loss: float, parts: dict[str, float],
                    share: float) -> tuple[float, dict[str, float]]:
        """The step's loss and logged parts from the shards' (the loss already weighted by
        this shard's ``share`` of the step, the parts shard means)."""
        keys = sorted(parts)
        total = self.world.sum([loss, *[parts[k] * share for k in keys]])
        return total[0], dict(zip(keys, total[1:], strict=True))

    def save_checkpoint(self) -> None:
        """The resumable state after an epoch (``out_dir/last.*``)."""
        if self.out is not None:
            save_checkpoint(self.out, self.model, self.opt, self.state, self.rng, self.cfg)

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        """After each epoch: TensorBoard scalars, then the callbacks if it was validated."""
        if self.writer is not None:
            w, epoch = self.writer, record["epoch"]
            w.add_scalar("train/loss", record["loss"], epoch)
            w.add_scalar("train/seconds", record["seconds"], epoch)
            for k, v in record.get("parts", {}).items():
                w.add_scalar(f"train/{k}", v, epoch)
            for k, v in record.get("valid", {}).items():
                w.add_scalar(f"valid/{k}", v, epoch)
        self.save_checkpoint()
        if "valid" in record:
            for cb in self.callbacks:
                cb(record["epoch"], record)

    # ------------------------------------------------------------- the run
    def fit(self) -> TrainedModel:
        """Train until ``train.epochs``, early stopping or a stop request; the model at its
        best validated epoch."""
        with determinism(self.cfg.train.deterministic), stop_on_signal(self.stop):
            return self._fit()

    def _setup(self) -> None:
        cfg = self.cfg
        self.device = resolve_device(cfg.train.device)
        torch.manual_seed(cfg.train.seed)
        self.rng = np.random.default_rng(cfg.train.seed)
        self.model = self.build_model()
        self.sampler = NegativeSampler(self.split.train_users, self.split.train_items,
                                       self.split.num_items, self.rng)
        self.objective = self.build_objective()
        self.opt = self.build_optimizer()
        self._params = [p for g in self.opt.param_groups for p in g["params"]]
        # data-parallel: this process's rows of the graph (rank 0 keeps the whole one, to
        # validate and serve the trained model by itself afterwards)
        self._whole_adj = distributed.partition_adjacency(self.model, self.world)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            cfg.to_yaml(self.out / "config.yaml")  # `kgrec train --config <out>/config.yaml`
        self.state = RunState()
        self.best_state = copy.deepcopy(self.model.state_dict())
        out = self.out
        if self.resume and out is not None and (out / "last.safetensors").is_file():
            self.state = load_checkpoint(out, self.model, self.opt, self.rng)
            if (out / "best.safetensors").is_file():
                self.best_state = load_file(str(out / "best.safetensors"))
            log.info("resumed %s at epoch %d (best %s=%.4f at %d)", out, self.state.epoch,
                     self.metric, self.state.best, self.state.best_epoch)
        if self.world.parallel and self.resume:
            self._resume_from_rank0()
        self.writer = None
        if self.logdir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.logdir))
        self._tu = torch.from_numpy(self.split.train_users)
        self._ti = torch.from_numpy(self.split.train_items)

    def _resume_from_rank0(self) -> None:
        """Every process continues from rank 0's checkpoint (the others may not see its
        files: several machines)."""
        mine = (self.model.state_dict(), self.opt.state_dict(), self.state,
                self.rng.bit_generator.state, torch.get_rng_state(), self.best_state)
        model_sd, opt_sd, state, rng, torch_rng, best = self.world.broadcast(
            mine if self.world.main else None)
        if not self.world.main:
            self.model.load_state_dict(model_sd)
            self.opt.load_state_dict(opt_sd)
            self.state, self.best_state = state, best
            self.rng.bit_generator.state = rng
            torch.set_rng_state(torch_rng)

    def _fit(self) -> TrainedModel:
        self._setup()
        cfg, state, metric = self.cfg, self.state, self.metric
        self.bar = progress_bar(cfg.train.epochs, f"train {cfg.model.name}", "epoch",
                                enabled=self.progress, initial=state.epoch)
        stopped = interrupted = False
        last_valid = time.monotonic()
        for epoch in range(state.epoch + 1, cfg.train.epochs + 1):
            record = self.train_epoch(epoch)
            if record is None:
                interrupted = True
                break
            due = (epoch % cfg.train.eval_every == 0 or epoch == cfg.train.epochs or (
                cfg.train.eval_every_seconds > 0
                and time.monotonic() - last_valid >= cfg.train.eval_every_seconds))
            if self.has_valid and due:
                last_valid = time.monotonic()
                record["valid"] = self.validate()
                value = record["valid"][metric]
                if value > state.best:
                    state.best, state.best_epoch, state.bad = value, epoch, 0
                    self.best_state = copy.deepcopy(self.model.state_dict())
                    record["best"] = True
                    if self.out is not None:
                        save_file({k: v.detach().cpu().contiguous()
                                   for k, v in self.best_state.items()},
                                  str(self.out / "best.safetensors"))
                else:
                    state.bad += 1
                self.bar.set_postfix(loss=f"{record['loss']:.4f}", **{metric: f"{value:.4f}"},
                                     best=f"{state.best:.4f}@{state.best_epoch}")
            else:
                self.bar.set_postfix(loss=f"{record['loss']:.4f}")
            state.history.append(record)
            state.epoch = epoch
            self.on_epoch_end(record)
            if state.bad >= cfg.train.patience:
                log.info("early stop at epoch %d; best %s=%.4f at epoch %d", epoch, metric,
                         state.best, state.best_epoch)
                stopped = True
                break
        self.bar.close()
        if self.writer is not None:
            self.writer.close()
        out = self.out
        if interrupted:
            if self.has_valid and not state.best_epoch:
                raise TrainingStopped(
                    f"training stopped at epoch {state.epoch + 1} before any epoch was "
                    f"validated (every {cfg.train.eval_every} epochs): no model to keep"
                    + (f"; `kgrec train --config {out / 'config.yaml'} --out {out} --resume` "
                       "continues it" if out is not None else ""))
            log.warning("training stopped during epoch %d; keeping the best validated epoch "
                        "(%d, %s=%.4f)", state.epoch + 1, state.best_epoch, metric, state.best)
        elif not stopped:
            log.info("ran %d epochs; best %s=%.4f at epoch %d", state.epoch, metric,
                     state.best, state.best_epoch)
        if self.has_valid:
            self.model.load_state_dict(self.best_state)
        distributed.restore_adjacency(self.model, self._whole_adj)
        self.model.eval()
        if has(self.model, AlignsContent) and not interrupted and self.world.main:
            record = self.align()
            if state.history:
                state.history[-1]["align"] = record
        return TrainedModel(self.model, state.history, cfg, self.split, state.best_epoch)
