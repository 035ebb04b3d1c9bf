#!/usr/bin/env python
"""Generate README.md from nbs/index.ipynb (Quarto, which `nbdev-readme` needs, is not installable here).

Markdown cells are copied; code cells become ```python blocks with their printed output and results
(progress bars on stderr and figures are left out); cells with a
`#| hide` directive are left out, other `#|` directive lines are dropped. `--check` exits 1 when README.md
differs from what would be generated."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n"

def _src(cell) -> str:
    s = cell['source']
    return ''.join(s) if isinstance(s, list) else s

def _directives(src:str) -> set:
    return {l[3:].strip().split()[0] for l in src.splitlines() if l.startswith('#|') and l[3:].strip()}

def _outputs(cell) -> str:
    txt = []
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream':
            if o.get('name') == 'stdout': txt.append(_src({'source': o['text']}))
        elif o.get('output_type') == 'execute_result' and 'text/plain' in o.get('data', {}):
            txt.append(_src({'source': o['data']['text/plain']}))
    return ''.join(txt).rstrip()

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    "Markdown for README.md from the notebook at `nb_path`."
    parts = []
    for cell in json.loads(Path(nb_path).read_text())['cells']:
        src = _src(cell)
        if cell['cell_type'] == 'markdown': parts.append(src.strip().replace('](images/', '](nbs/images/')); continue  # paths from the repo root
        if cell['cell_type'] != 'code' or {'hide', 'export', 'default_exp'} & _directives(src): continue
        code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()
        if code: parts.append(f"```python\n{code}\n```")
        out = _outputs(cell)
        if out: parts.append(f"```\n{out}\n```")
    return HEADER + '\n\n'.join(p for p in parts if p) + '\n'

def main(argv):
    readme, txt = ROOT/'README.md', render()
    if '--check' in argv:
        if not readme.exists() or readme.read_text() != txt:
            print("FAIL: README.md is out of date with nbs/index.ipynb: run `python tools/make_readme.py`")
            return 1
        print("README.md is in sync with nbs/index.ipynb"); return 0
    readme.write_text(txt); print(f"wrote {readme}"); return 0

if __name__ == '__main__': sys.exit(main(sys.argv[1:]))
