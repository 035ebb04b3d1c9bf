#!/usr/bin/env bash
# Re-execute the notebooks in place so they are stored with their outputs (the figures are the documentation), then
# clean them and regenerate README.md from nbs/index.ipynb. Cells flagged slow or cuda keep no outputs; hpa_data cells
# run when ../shared/data/hpa is present. Usage: bash scripts/run_notebooks.sh [NOTEBOOK ...] (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg PYTHONWARNINGS="ignore::FutureWarning"
scratch=$(mktemp -d -t hpa_fastai_nbs.XXXXXX); trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"  # the notebooks' temporary folders (models, caches) are removed at exit
flags=""
python -c "from hpa_fastai.core import find_hpa_data; import sys; sys.exit(find_hpa_data() is None)" && flags="hpa_data"
if [ $# -eq 0 ]; then set -- nbs/*.ipynb; fi
fail=0
for nb in "$@"; do
  echo "== $nb"
  nbdev-test "$nb" --flags "$flags" --save || { echo "FAILED: $nb (left as it was)"; fail=1; }
done
python tools/shrink_outputs.py "$@"
nbdev-clean
python tools/make_readme.py
for nb in "$@"; do
  kb=$(( $(stat -c %s "$nb") / 1024 ))
  [ "$kb" -gt 1536 ] && { echo "WARNING: $nb is ${kb} KB (keep notebooks under 1.5 MB: smaller figures)"; }
done
exit $fail
