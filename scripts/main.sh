#!/usr/bin/env bash
# The main job on the embedded default dataset: set up .venv, then `hpa-fastai demo`.
# Extra arguments go to `hpa-fastai demo` (see `hpa-fastai demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/hpa-fastai demo "$@"
