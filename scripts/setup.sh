#!/usr/bin/env bash
# Create .venv beside this checkout and install lightning-dims with every extra (all) and the test tools (dev).
# PyTorch comes first, pinned to the build this project is tested with (override with
# TORCH_PACKAGES, e.g. TORCH_PACKAGES="torch torchvision" for the newest release).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_PACKAGES="${TORCH_PACKAGES:-torch==2.14.1 torchvision==0.29.1}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086
.venv/bin/python -m pip install --quiet $TORCH_PACKAGES
.venv/bin/python -m pip install --quiet -e ".[all,dev]"
.venv/bin/python -c "import lightning_dims, torch; print(f'lightning-dims {lightning_dims.__version__} ready (torch {torch.__version__})')"
