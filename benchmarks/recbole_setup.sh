#!/usr/bin/env bash
# Creates the virtual environment that runs RecBole 1.2.1 beside kgrec's benchmark
# (benchmarks/recbole_peers.py). It is separate from kgrec's own environment on purpose: the
# peers run with library versions RecBole 1.2.1 works with, not kgrec's.
#
#   bash benchmarks/recbole_setup.sh            # -> ~/.cache/kgrec/venvs/recbole-1.2.1
#   RECBOLE_VENV=/some/dir bash benchmarks/recbole_setup.sh
#
# Pins, and why:
# - torch 2.2.1: KGAT needs DGL, and the newest DGL on PyPI (2.1.0) ships its graphbolt library
#   only for torch <= 2.2.1 (`import dgl` fails on any later torch). It also keeps torch.load's
#   weights_only=False default (torch >= 2.6 breaks RecBole's reload of its best checkpoint).
# - torchdata 0.7.1, pydantic 2: imported by DGL 2.1.0's graphbolt (torchdata >= 0.10 dropped
#   datapipes).
# - torch-scatter 2.1.2: KGIN imports scatter_mean from it; PyPI has only its source, so it is
#   compiled here against the installed torch (CPU only, a few minutes on 2 cores).
# - numpy 1.26.4: RecBole 1.2.1 re-creates np.float/np.int from np.float_/np.int_, which
#   numpy 2 removed.
# - scipy 1.10.1: RecBole 1.2.1's LightGCN fills its adjacency with dok_matrix._update, gone
#   in later scipy.
# - colorlog 4.7.2, colorama 0.4.4: RecBole 1.2.1 requires exactly these; ray <= 2.6.3 too.
# - the rest: versions of RecBole 1.2.1's time that work with the above.
# PyPI only has CUDA builds of torch for Linux; they run on CPU (the CUDA libraries are
# installed but unused), at the price of a large download.
set -euo pipefail
VENV="${RECBOLE_VENV:-$HOME/.cache/kgrec/venvs/recbole-1.2.1}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q "pip==24.3.1" "setuptools==75.6.0" "wheel==0.45.1"
"${PIP[@]}" install -q \
  "recbole==1.2.1" \
  "torch==2.2.1" \
  "numpy==1.26.4" \
  "scipy==1.10.1" \
  "pandas==2.2.3" \
  "scikit-learn==1.5.2" \
  "tqdm==4.67.1" \
  "colorlog==4.7.2" \
  "colorama==0.4.4" \
  "pyyaml==6.0.2" \
  "tensorboard==2.18.0" \
  "thop==0.1.1.post2209072238" \
  "tabulate==0.9.0" \
  "plotly==5.24.1" \
  "texttable==1.7.0" \
  "psutil==6.1.1" \
  "ray==2.6.3" \
  "dgl==2.1.0" \
  "torchdata==0.7.1" \
  "pydantic==2.10.6"
# Built against the torch above, hence no build isolation; CPU only.
FORCE_ONLY_CPU=1 MAX_JOBS="${MAX_JOBS:-2}" "${PIP[@]}" install -q --no-build-isolation \
  "torch-scatter==2.1.2"
"${PIP[@]}" check
"$VENV/bin/python" -c "import recbole, torch, numpy, dgl, torch_scatter; print('recbole', recbole.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__, 'dgl', dgl.__version__, 'torch_scatter', torch_scatter.__version__)"
"${PIP[@]}" freeze > "$VENV/requirements.freeze.txt"
touch "$VENV/.deps-installed"
