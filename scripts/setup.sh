#!/usr/bin/env bash
# Create .venv (if absent) and install hpa_fastai with its dev extra, pinned by constraints.txt.
# Idempotent: reinstalls only when pyproject.toml or constraints.txt changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || { echo "hpa_fastai needs Python >= 3.10 ($PY is older)"; exit 1; }
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.hpa_fastai_installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "installing hpa_fastai and its dependencies into .venv (first time: a few minutes, ~6 GB for torch)..."
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]" 2>&1 \
    | grep -v "^WARNING: Location .* is ignored" || true
  .venv/bin/python -c "import hpa_fastai, fastai, torchvision" || { echo "installation failed"; exit 1; }
  echo "$want" > "$stamp"
fi
