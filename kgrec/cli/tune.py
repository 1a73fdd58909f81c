"""``kgrec tune``: an Optuna study over the config."""

from __future__ import annotations

import argparse
from pathlib import Path

from kgrec.cli.common import add_config_args, config_from_args, table
from kgrec.errors import KgrecError


def cmd_tune(args: argparse.Namespace) -> int:
    from kgrec.tune import SearchSpace, best_config, tune, write_plots

    cfg = config_from_args(args)
    space = SearchSpace.load(args.space, model=cfg.model.name)
    study = tune(space, cfg, n_trials=args.trials, study_name=args.study, storage=args.storage,
                 pruner=args.pruner, seed=args.sampler_seed, timeout=args.timeout,
                 progress=not args.quiet, heartbeat=args.heartbeat)
    from optuna.trial import TrialState

    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = {s.name.lower(): states.count(s) for s in TrialState if states.count(s)}
    completed = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not completed:
        raise KgrecError(f"study {args.study!r} has no completed trial ({counts})")
    best = study.best_trial
    table(f"study {args.study}: {counts}; best trial #{best.number}",
          ["parameter", "value"],
          [[f"valid {study.user_attrs.get('metric', 'value')}", best.value],
           *[[k, v] for k, v in best.params.items()], ["train.seed", best.user_attrs["seed"]]])
    out = Path(args.best_config)
    best_config(study).to_yaml(out)
    print(f"best config: {out} (kgrec train --config {out}; then kgrec evaluate <run>)")
    if args.plots:
        for path in write_plots(study, args.plots):
            print(f"plot: {path}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """``tune``."""
    tu = sub.add_parser("tune", help="an Optuna study over the config (validation metric, "
                        "pruning, shared storage, resumable)")
    add_config_args(tu)
    tu.add_argument("--space", required=True, help="search space YAML (config field -> "
                    "{int|float: [low, high], log: bool} or {choice: [...]})")
    tu.add_argument("--trials", type=int, default=20, help="finished trials the study should "
                    "have, across all workers")
    tu.add_argument("--study", default="kgrec", help="study name (workers sharing a storage "
                    "and name cooperate)")
    tu.add_argument("--storage", default="sqlite:///kgrec-tune.db", help="sqlite:///file.db, "
                    "postgresql://..., or journal:file.log")
    tu.add_argument("--pruner", default="median", choices=["median", "hyperband", "none"])
    tu.add_argument("--sampler-seed", type=int, default=0)
    tu.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    tu.add_argument("--best-config", default="best-config.yaml", help="where to write the "
                    "best trial's config")
    tu.add_argument("--plots", help="folder for Optuna's plots (PNG)")
    tu.add_argument("--heartbeat", type=int, default=10, help="seconds between heartbeats; a "
                    "worker silent for 3 of them has its trial marked FAIL and retried")
    tu.add_argument("--quiet", action="store_true")
    tu.set_defaults(func=cmd_tune)
