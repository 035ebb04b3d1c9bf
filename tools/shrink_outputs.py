"""Shrink the PNG figures stored in notebooks: at most MAX_W pixels wide and quantised to COLOURS colours (microscopy
compresses badly; the figures are documentation, not data). Usage: python tools/shrink_outputs.py NB.ipynb ..."""
import base64, io, json, sys
from pathlib import Path

from PIL import Image

MAX_W, COLOURS = 900, 128

def shrink_png(data:bytes) -> bytes:
    "`data` (a PNG) narrowed to MAX_W pixels and quantised to COLOURS colours, or as it was when that is not smaller."
    im = Image.open(io.BytesIO(data))
    if im.mode not in ('RGB', 'RGBA', 'L', 'P'): return data
    im = im.convert('RGBA' if im.mode in ('RGBA', 'P') else 'RGB')
    if im.width > MAX_W: im = im.resize((MAX_W, round(im.height * MAX_W / im.width)), Image.LANCZOS)
    if im.mode == 'RGBA': im = im.convert('RGB')  # notebook figures sit on white
    out = io.BytesIO(); im.quantize(COLOURS, method=Image.Quantize.MEDIANCUT).save(out, format='png', optimize=True)
    return out.getvalue() if len(out.getvalue()) < len(data) else data

def shrink_notebook(path:Path) -> tuple[int, int]:
    "Shrink every PNG output of the notebook at `path` in place; its size before and after."
    before, nb = path.stat().st_size, json.loads(path.read_text())
    for cell in nb['cells']:
        for out in cell.get('outputs', []):
            png = out.get('data', {}).get('image/png')
            if png: out['data']['image/png'] = base64.b64encode(shrink_png(base64.b64decode(png))).decode()
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return before, path.stat().st_size

if __name__ == '__main__':
    for p in sys.argv[1:]:
        b, a = shrink_notebook(Path(p))
        print(f"{p}: {b // 1024} KB -> {a // 1024} KB")
