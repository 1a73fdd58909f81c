"""What makes a training run resumable and stoppable: its checkpoint (written after every
epoch, atomically), deterministic kernels, and the first Ctrl-C / SIGTERM stopping it after
the current step."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from kgrec.config import Config
from kgrec.errors import KgrecError
from kgrec.models import RecModel

log = logging.getLogger("kgrec.train.loop")


@dataclass
class RunState:
    """Where a run is: the last finished epoch, the best validation value and its epoch,
    evaluations since the best, and the per-epoch history (checkpointed as JSON)."""

    epoch: int = 0
    best: float = -float("inf")
    best_epoch: int = 0
    bad: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def save_checkpoint(out: Path, model: RecModel, opt: torch.optim.Optimizer, state: RunState,
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


def load_checkpoint(out: Path, model: RecModel, opt: torch.optim.Optimizer,
                     rng: np.random.Generator) -> RunState:
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
    return RunState(**doc["state"])


@contextlib.contextmanager
def determinism(on: bool):
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(on, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


class TrainingStopped(KgrecError):
    """Training was stopped (Ctrl-C, SIGTERM) before any epoch was validated, so there is no
    model to keep; the ``last.*`` checkpoint of ``out_dir`` resumes it."""

    exit_code = 130  # as an interrupted command


@contextlib.contextmanager
def stop_on_signal(stop: threading.Event) -> Any:
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
