#!/usr/bin/env bash
# All tests: set up .venv, check notebooks are clean and the library and README in sync, run the notebook
# tests (nbdev-test) and the pytest suite. Cells flagged `hpa_data` run when ../shared/data/hpa is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" MPLBACKEND=Agg PYTHONWARNINGS="ignore::FutureWarning"
fail=0

# Every temporary folder the notebooks and tests make (they hold models and caches) goes under one removed at exit.
scratch=$(mktemp -d -t hpa_fastai_tests.XXXXXX); tmp=$(mktemp -d); trap 'rm -rf "$tmp" "$scratch"' EXIT
export TMPDIR="$scratch"

echo "== notebooks clean and library in sync (nbdev-clean, nbdev-export change nothing)"
cp -r nbs hpa_fastai pyproject.toml "$tmp"/
(cd "$tmp" && nbdev-clean >/dev/null && nbdev-export >/dev/null)
for d in nbs hpa_fastai; do
  if ! diff -r -x __pycache__ -x .ipynb_checkpoints "$d" "$tmp/$d" >"$tmp/diff.txt"; then
    echo "FAIL: '$d' changes under nbdev-clean/nbdev-export: run them and commit"; head -40 "$tmp/diff.txt"; fail=1
  fi
done

echo "== pyflakes over the library (unused imports, undefined names)"
python -m pyflakes $(ls hpa_fastai/*.py | grep -v _modidx.py) || fail=1

echo "== README.md generated from nbs/index.ipynb"
python tools/make_readme.py --check || fail=1

flags=""
if python -c "from hpa_fastai.core import find_hpa_data; import sys; sys.exit(find_hpa_data() is None)"; then
  flags="hpa_data"
else
  echo "SKIP: real HPA data not found (../shared/data/hpa or \$HPA_DATA): cells flagged hpa_data are skipped"
fi
echo "== notebook tests (nbdev-test --flags '$flags')"
nbdev-test --n-workers 2 --flags "$flags" --timing || fail=1

echo "== docs: build _docs from the notebooks and check every page and local link"
python tools/build_docs.py --check || fail=1

echo "== pytest"
python -m pytest tests || fail=1
exit $fail
