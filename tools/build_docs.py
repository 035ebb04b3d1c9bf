#!/usr/bin/env python
"""Build the docs locally: render the notebooks in `nbs/`, with their stored outputs (nothing is executed), to HTML
pages in `_docs/` with nbconvert, as nbdev's Quarto docs would show them (Quarto, which `nbdev-docs` needs, is not
installable here; the GitHub deploy workflow uses it).

Every page has a sidebar listing all pages in notebook order (`index` first) by the title of their first markdown
heading. As in nbdev's docs: `#| hide` cells are left out and other `#|` directive lines dropped; `#| export` cells
are replaced by the signature, docstring and documented parameters of each public function and class they define
(their code folded below); `foo.ipynb` links point to `foo.html`; backquoted names of the library's symbols link to
their page and anchor through `hpa_fastai/_modidx.py` (read as data, never imported), as nbdev's doclinks do.

`python tools/build_docs.py [--nbs nbs] [--out _docs] [--check]`: `--check` also checks the built site (every page
in the sidebar exists, every local href/src resolves, anchors included) and exits 1, naming each broken link."""
import argparse, ast, builtins, html, io, os, re, shutil, sys, tempfile, time, tokenize
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters.markdown import markdown2html_mistune
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

ROOT = Path(__file__).resolve().parent.parent
_re_backticks = re.compile(r'(?<!\[)`([^`\s]+?)(\(\))?`(?!\])')  # nbdev's doclinks pattern, not inside [`link text`]
_re_nb_link = re.compile(r'''(\]\(\s*<?|\b(?:href|src)\s*=\s*["'])([^)"'\s>#]+?\.ipynb)(#[^)"'\s>]*)?''')
_re_heading = re.compile(r'<h([1-6]) id="([^"]*)">(.*?)<a class="anchor-link" href="#[^"]*">¶</a></h\1>', re.S)
_def_types = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

# ---------------------------------------------------------------- notebooks and names

def page_name(nb_path) -> str:
    "nbdev's page name for a notebook: `00_core.ipynb` -> `core.html`"
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', Path(nb_path).name.lower()).rsplit('.', 1)[0] + '.html'

def notebooks(nbs:Path) -> list:
    "The notebooks of `nbs` in sidebar order: `index.ipynb` first, then by name (names starting `_` or `.` skipped)"
    found = sorted(p for p in Path(nbs).glob('*.ipynb') if not p.name.startswith(('_', '.')))
    return sorted(found, key=lambda p: p.name != 'index.ipynb')

def directives(src:str) -> dict:
    "The `#| name value` lines of a cell as {name: value}"
    res = {}
    for l in src.splitlines():
        k, _, v = l[2:].strip().partition(' ') if l.startswith('#|') else ('', '', '')
        if k: res[k.rstrip(':')] = v.strip()
    return res

def strip_directives(src:str) -> str:
    return '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip('\n')

def title_of(nb) -> str|None:
    "The text of the first markdown heading of `nb`"
    for c in nb.cells:
        if c.cell_type != 'markdown': continue
        md = re.sub(r'^```.*?^```', '', c.source, flags=re.M|re.S)
        m = re.search(r'^#{1,6}\s+(.+?)\s*#*\s*$', md, re.M)
        if m: return re.sub(r'`|\*\*?|<[^>]+>', '', m.group(1))
    return None

def load_modidx(path) -> dict:
    "The `d` dict of an nbdev `_modidx.py`, read with `ast.literal_eval` (nothing is run)"
    for node in ast.parse(Path(path).read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, 'id', None) for t in node.targets] == ['d']:
            return ast.literal_eval(node.value)
    raise ValueError(f"{path}: no `d = {{...}}` assignment")

def symbol_urls(modidx:dict) -> dict:
    "{name: 'page.html#anchor'} for full names and for names without their module, as nbdev's `NbdevLookup` strips them"
    full, short = {}, {}
    for mod, syms in modidx.get('syms', {}).items():
        for name, (url, _) in syms.items():
            full[name] = url
            short.setdefault(name[len(mod)+1:] if name.startswith(mod+'.') else name, url)
    return {**short, **full}

# ---------------------------------------------------------------- static show_doc for exported cells

def _patch_name(fn) -> str|None:
    "`Class.name` for a `@patch`ed function (as nbdev names it), else None"
    if not any(getattr(d, 'id', None) == 'patch' for d in fn.decorator_list): return None
    ann = fn.args.args[0].annotation if fn.args.args else None
    return None if ann is None else f'{ast.unparse(ann)}.{fn.name}'

def _public(name:str) -> bool: return not name.split('.')[-1].startswith('_') or name.endswith('__')

def doc_items(src:str, shown:set=frozenset()) -> list:
    "(name, node, heading level) of the public functions, classes and class methods an exported cell defines"
    try: tree = ast.parse(src)
    except SyntaxError: return []
    res = []
    for node in tree.body:
        if not isinstance(node, _def_types): continue
        name = (None if isinstance(node, ast.ClassDef) else _patch_name(node)) or node.name
        if not _public(name) or name in shown: continue
        res.append((name, node, 3))
        if isinstance(node, ast.ClassDef):
            res += [(f'{name}.{m.name}', m, 4) for m in node.body if isinstance(m, _def_types[:2]) and not m.name.startswith('_')]
    return res

def _comments(src:str) -> tuple:
    "{line: comment} of `src`, and the lines holding only a comment"
    res, alone = {}, set()
    for t in tokenize.generate_tokens(io.StringIO(src).readline):
        if t.type == tokenize.COMMENT:
            res[t.start[0]] = t.string[1:].strip()
            if not t.line[:t.start[1]].strip(): alone.add(t.start[0])
    return res, alone

def _params(fn, skip_self:bool) -> list:
    "(name, annotation, default, node) of each parameter of `fn`"
    a = fn.args
    pos = a.posonlyargs + a.args
    res = list(zip(pos, [None]*(len(pos)-len(a.defaults)) + a.defaults))
    if a.vararg: res.append((a.vararg, None))
    res += list(zip(a.kwonlyargs, a.kw_defaults))
    if a.kwarg: res.append((a.kwarg, None))
    if skip_self and res and res[0][0].arg in ('self', 'cls'): res = res[1:]
    star = {id(a.vararg): '*', id(a.kwarg): '**'}
    return [(star.get(id(n), '') + n.arg, n.annotation and ast.unparse(n.annotation), d and ast.unparse(d), n) for n, d in res]

def docments(fn, src:str, skip_self:bool) -> list:
    "[(name, type, default, comment)] of `fn`'s parameters; comments found as fastcore's `docments` finds them"
    comments, alone = _comments(src)
    params = _params(fn, skip_self)
    last_on_line = {n.lineno: nm for nm, _, _, n in params}
    res = []
    for nm, ann, dflt, n in params:
        above, l = [], n.lineno - 1
        while l > fn.lineno and l in alone and l not in last_on_line: above.insert(0, comments[l]); l -= 1
        same = comments.get(n.lineno) if last_on_line[n.lineno] == nm and n.lineno not in alone else None
        res.append((nm, ann, dflt, ' '.join(above + [same] if same else above) or None))
    return res

def _signature(name:str, node, fn, skip_self:bool) -> str:
    if fn is None:
        bases = ', '.join(ast.unparse(b) for b in getattr(node, 'bases', []))
        return f'{name}({bases})' if bases else name
    ps = [nm + (f':{ann}' if ann else '') + (f'={dflt}' if dflt else '') for nm, ann, dflt, _ in _params(fn, skip_self)]
    return f"{name}({', '.join(ps)})" + (f' -> {ast.unparse(fn.returns)}' if fn.returns else '')

def _inline(h:str) -> str:
    "A one-paragraph HTML fragment without its `<p>`, to sit in a table cell"
    m = re.fullmatch(r'\s*<p>(.*)</p>\s*', h, re.S)
    return m.group(1) if m and '<p>' not in m.group(1) else h

def _doc_table(rows:list, md) -> str:
    if not any(r[3] for r in rows): return ''
    code = lambda v: f'<code>{html.escape(v)}</code>' if v else ''
    trs = ''.join(f'<tr><td><strong>{html.escape(nm)}</strong></td><td>{code(ann)}</td><td>{code(dflt)}</td>'
                  f'<td>{_inline(md(c)) if c else ""}</td></tr>' for nm, ann, dflt, c in rows)
    return f'<table class="docments"><thead><tr><th></th><th>Type</th><th>Default</th><th>Details</th></tr></thead><tbody>{trs}</tbody></table>'

def doc_block(name:str, node, level:int, src:str, md) -> str:
    "HTML documenting the function or class `node` under nbdev's anchor `name.lower()`; `md` renders markdown"
    is_cls = isinstance(node, ast.ClassDef)
    fn = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == '__init__'), None) if is_cls else node
    skip_self = is_cls or '.' in name
    doc = ast.get_docstring(node) or (fn is not None and is_cls and ast.get_docstring(fn)) or ''
    sig = ('class ' if is_cls else '') + _signature(name, node, fn, skip_self)
    return (f'<div class="doc doc-l{level}"><h{level} id="{html.escape(name.lower())}" class="doc-name"><code>{html.escape(name)}</code></h{level}>'
            f'<pre class="doc-sig">{html.escape(sig)}</pre><div class="doc-body">{md(doc) if doc else ""}'
            f'{_doc_table(docments(fn, src, skip_self), md) if fn is not None else ""}</div></div>')

def source_block(src:str) -> str:
    "The exported code, folded"
    return f'<details class="doc-src"><summary>source</summary>{highlight(src, PythonLexer(), HtmlFormatter())}</details>'

# ---------------------------------------------------------------- markdown links

def fix_nb_links(md:str) -> str:
    "`foo.ipynb[#x]` links (markdown or HTML) to `foo.html[#x]`, nbdev's page names"
    return _re_nb_link.sub(lambda m: m.group(1) + page_name(unquote(m.group(2))) + (m.group(3) or ''), md)

def linkify(md:str, urls:dict) -> str:
    "Backquoted names in `urls` linked to their docs, on lines outside code blocks, as nbdev's `NbdevLookup.linkify` does"
    def link(m):
        url = urls.get(m.group(1))
        return f'[`{m.group(1)}{m.group(2) or ""}`]({url})' if url else m.group(0)
    lines, fence = md.splitlines(), False
    for i, l in enumerate(lines):
        if l.lstrip().startswith('```'): fence = not fence
        elif not fence and not l.startswith('    '): lines[i] = _re_backticks.sub(link, l)
    return '\n'.join(lines)

# ---------------------------------------------------------------- cells

def _imports_only(src:str) -> bool:
    "Whether an exported cell only imports (nbdev's docs show nothing of it)"
    try: return all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.parse(src).body)
    except SyntaxError: return False

def _placeholder_cell(i:int):
    "An output-only cell holding `<!--doc-block-i-->`, replaced after conversion (nbconvert re-parses all it renders)"
    return nbformat.v4.new_code_cell('', metadata={'tags': ['doc'], 'transient': {'remove_source': True}},
        outputs=[nbformat.v4.new_output('display_data', data={'text/html': f'<!--doc-block-{i}-->'})])

def fill_placeholders(body:str, blocks:list) -> str:
    return re.sub(r'<!--doc-block-(\d+)-->', lambda m: blocks[int(m.group(1))], body)

def prepare(nb, urls:dict) -> list:
    """Make `nb`'s cells as nbdev's docs show them (hidden cells gone, directives stripped, links made); returns the
    HTML documenting each exported cell, which stands in `nb` as a placeholder cell"""
    md = lambda s: markdown2html_mistune(linkify(fix_nb_links(s), urls))
    shown = {m for c in nb.cells if c.cell_type == 'code' for m in re.findall(r'^show_doc\(([\w.]+)', c.source, re.M)}
    cells, blocks = [], []
    for c in nb.cells:
        d, src = directives(c.source), strip_directives(c.source)
        c.metadata = {}  # nothing in it is shown; unclean metadata (execnb's timings) would fail nbformat's validation
        if 'hide' in d or d.get('include') == 'false': continue
        if c.cell_type == 'markdown': c.source = linkify(fix_nb_links(src), urls)
        elif c.cell_type != 'code': c.source = src
        elif {'export', 'exports'} & d.keys():
            if not _imports_only(src):
                cells.append(_placeholder_cell(len(blocks)))
                blocks.append(''.join(doc_block(*it, src, md) for it in doc_items(src, shown)) + source_block(src))
            continue
        elif {'exporti', 'default_exp'} & d.keys(): continue
        else:
            c.source = src
            if d.get('echo') == 'false': c.metadata['transient'] = {'remove_source': True}
            if d.get('output') == 'false': c.outputs = []
            for o in c.get('outputs', []):
                if 'text/markdown' in o.get('data', {}): o.data['text/markdown'] = linkify(o.data['text/markdown'], urls)
            if not (c.source.strip() or c.outputs): continue
        cells.append(c)
    nb.cells = cells
    return blocks

# ---------------------------------------------------------------- HTML of a page

def pandoc_id(text:str) -> str:
    "A heading's id as Pandoc/Quarto make it: lower case, punctuation but `_-.` dropped, spaces to `-`"
    s = re.sub(r'\s+', '-', re.sub(r'[^\w\s.-]', '', html.unescape(re.sub(r'<[^>]+>', '', text)).strip().lower()))
    return re.sub(r'^[^a-z]+', '', s) or 'section'

def fix_headings(body:str) -> tuple:
    "`body` with Quarto's heading ids (unique in the page), and the (id, text) of its `h2` sections"
    taken, toc = set(re.findall(r'\bid="([^"]*)"', body)), []
    def sub(m):
        lvl, text = m.group(1), m.group(3)
        base = hid = pandoc_id(text); i = 1
        while hid in taken: hid, i = f'{base}-{i}', i+1
        taken.add(hid)
        if lvl == '2': toc.append((hid, html.unescape(re.sub(r'<[^>]+>', '', text)).strip()))
        return f'<h{lvl} id="{hid}">{text}<a class="anchor-link" href="#{hid}">#</a></h{lvl}>'
    return _re_heading.sub(sub, body), toc

def copy_local_images(body:str, src_dir:Path, out:Path):
    "Copy the local images `body` shows (paths relative to the notebook) to the same relative path under `out`"
    for ref in re.findall(r'<(?:img|source)\b[^>]*?\ssrc="([^"]+)"', body):
        u = urlsplit(html.unescape(ref))
        if u.scheme or u.netloc or not u.path or u.path.startswith('/'): continue
        f, dest = (src_dir/unquote(u.path)).resolve(), (out/unquote(u.path)).resolve()
        if f.is_file() and dest.is_relative_to(out.resolve()):
            dest.parent.mkdir(parents=True, exist_ok=True); shutil.copyfile(f, dest)

CSS = """
:root { --side: 250px; --fg: #212529; --muted: #6c757d; --line: #dee2e6; --code-bg: #f6f8fa; --accent: #2780e3; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: var(--fg); }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
nav.sidebar { position: fixed; top: 0; bottom: 0; left: 0; width: var(--side); overflow-y: auto; padding: 1.2rem 1rem;
  border-right: 1px solid var(--line); background: #fafbfc; font-size: .93rem; }
nav.sidebar .site-title { display: block; font-weight: 700; font-size: 1.15rem; margin-bottom: 1rem; color: var(--fg); }
nav.sidebar ol { list-style: none; padding: 0; margin: 0; } nav.sidebar li { margin: .15rem 0; }
nav.sidebar a.current { font-weight: 600; color: var(--fg); }
nav.sidebar ol.toc { margin: .2rem 0 .4rem .8rem; font-size: .85rem; } nav.sidebar ol.toc a { color: var(--muted); }
main { margin-left: var(--side); padding: 1.5rem 2.5rem 4rem; max-width: calc(var(--side) + 1000px); }
h1 { font-size: 2.1rem; margin: .3rem 0 .6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
.anchor-link { visibility: hidden; margin-left: .4rem; font-size: .8em; color: var(--muted); }
h1:hover .anchor-link, h2:hover .anchor-link, h3:hover .anchor-link, h4:hover .anchor-link { visibility: visible; }
blockquote { margin: 0 0 1.2rem; padding: 0; color: var(--muted); font-size: 1.1rem; border: 0; }
code { font: .88em/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--code-bg); padding: .05em .3em; border-radius: 3px; }
pre code { background: none; padding: 0; }
pre { font: .85rem/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-x: auto; margin: 0; }
.cell { margin: .6rem 0; }
.input_area .highlight { background: var(--code-bg); border: 1px solid var(--line); border-radius: 4px; padding: .6rem .8rem; }
.output_area { margin: .25rem 0; }
.output_text pre { padding: .4rem .8rem; border-left: 3px solid var(--line); white-space: pre-wrap; }
.output_stderr pre { background: #fff5f5; border-left-color: #f5c2c7; }
.output_area img, .rendered_html img { max-width: 100%; height: auto; }
.output_html { overflow-x: auto; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .9rem; }
th, td { border-bottom: 1px solid var(--line); padding: .25rem .6rem; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid #adb5bd; }
table.dataframe { border: 0; } table.dataframe td, table.dataframe th { text-align: right; border-width: 0 0 1px; }
.doc { margin: 1.4rem 0 .5rem; padding: .6rem 1rem; border: 1px solid var(--line); border-radius: 6px; box-shadow: 0 1px 2px rgba(0,0,0,.04); }
.doc.doc-l4 { margin: .6rem 0 .4rem 1.5rem; padding: .4rem .9rem; }
.doc h3, .doc h4 { margin: .1rem 0 .3rem; border: 0; } .doc-name code { background: none; padding: 0; font-size: 1.05em; }
.doc-sig { background: var(--code-bg); padding: .35rem .6rem; border-radius: 4px; white-space: pre-wrap; }
.doc-body p { margin: .4rem 0; } table.docments { font-size: .85rem; }
details.doc-src { margin: .2rem 0 1rem; } details.doc-src summary { cursor: pointer; color: var(--muted); font-size: .85rem; }
details.doc-src .highlight { background: var(--code-bg); padding: .5rem .8rem; border-radius: 4px; }
footer { margin-top: 3rem; color: var(--muted); font-size: .8rem; }
@media (max-width: 800px) { nav.sidebar { position: static; width: auto; border-right: 0; border-bottom: 1px solid var(--line); }
  main { margin-left: 0; padding: 1rem; } }
"""

def nav_html(site:str, entries:list, current:str, toc:list) -> str:
    "The sidebar: every page in order, the current one with its sections"
    items = []
    for page, title in entries:
        cur = ' class="current" aria-current="page"' if page == current else ''
        sub = ''.join(f'<li><a href="#{hid}">{html.escape(t)}</a></li>' for hid, t in toc) if page == current else ''
        items.append(f'<li><a href="{page}"{cur}>{html.escape(title)}</a>' + (f'<ol class="toc">{sub}</ol>' if sub else '') + '</li>')
    return f'<nav class="sidebar"><a class="site-title" href="index.html">{html.escape(site)}</a><ol>{"".join(items)}</ol></nav>'

def page_html(title:str, site:str, nav:str, body:str, source:str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title if title == site else f'{title} – {site}')}</title>
<link rel="stylesheet" href="styles.css">
</head>
<body>
{nav}
<main>
{body}
<footer>Generated from <code>{html.escape(source)}</code> by <code>tools/build_docs.py</code>.</footer>
</main>
</body>
</html>
"""

# ---------------------------------------------------------------- the site

def _unchanged(s): return s

def _exporter() -> HTMLExporter:
    # Code cells are pygments-highlighted (escaped) already: skip the template's bleach pass over them, the slowest step
    return HTMLExporter(template_name='basic', exclude_input_prompt=True, exclude_output_prompt=True,
                        filters={'clean_html': _unchanged})

def _documented(nbs:list) -> dict:
    "{page: anchors of the symbols its exported cells document}"
    return {page_name(p): {n.lower() for c in nb.cells if c.cell_type == 'code' and {'export', 'exports'} & directives(c.source).keys()
                           for n, _, _ in doc_items(strip_directives(c.source))} for p, nb in nbs}

def build(nbs=ROOT/'nbs', out=ROOT/'_docs', modidx=ROOT/'hpa_fastai'/'_modidx.py', site:str='hpa_fastai') -> list:
    "Render the notebooks of `nbs` into `out` (replaced whole at the end); returns the sidebar's [(page, title)]"
    nbs, out = Path(nbs), Path(out)
    read = [(p, nbformat.read(p, as_version=4)) for p in notebooks(nbs)]
    entries = [(page_name(p), title_of(nb) or p.stem) for p, nb in read]
    docs = _documented(read)
    urls = symbol_urls(load_modidx(modidx)) if modidx and Path(modidx).exists() else {}
    urls = {k: u for k, u in urls.items() if u.partition('#')[2] in docs.get(u.partition('#')[0], ())}  # documented only
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp, exp = Path(tempfile.mkdtemp(prefix='.build-docs-', dir=out.parent)), _exporter()
    try:
        for (p, nb), (page, title) in zip(read, entries):
            blocks = prepare(nb, urls)
            body, toc = fix_headings(fill_placeholders(exp.from_notebook_node(nb)[0], blocks))
            copy_local_images(body, nbs, tmp)
            (tmp/page).write_text(page_html(title, site, nav_html(site, entries, page, toc), body, f'{nbs.name}/{p.name}'), encoding='utf-8')
        (tmp/'styles.css').write_text(CSS + HtmlFormatter().get_style_defs('.highlight'), encoding='utf-8')
        tmp.chmod(0o755)
        if out.exists(): shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists(): shutil.rmtree(tmp)
    return entries

# ---------------------------------------------------------------- the check

class _Refs(HTMLParser):
    "The ids and the href/src references of an HTML page"
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.refs = set(), []
    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k == 'id' or (tag == 'a' and k == 'name'): self.ids.add(v)
            elif k in ('href', 'src') and v is not None: self.refs.append((tag, k, v))

def _parse(path:Path, cache:dict) -> _Refs:
    if path not in cache:
        cache[path] = p = _Refs(); p.feed(path.read_text(encoding='utf-8')); p.close()
    return cache[path]

def _check_ref(ref:str, page:Path, out:Path, cache:dict) -> str|None:
    "Why the reference `ref` on `page` is broken, or None"
    u = urlsplit(ref.strip())
    if u.scheme in ('http', 'https', 'mailto', 'data') or u.netloc: return None
    if u.scheme: return f"unexpected scheme '{u.scheme}'"
    if not u.path and not u.fragment: return "empty link"
    target = (page.parent/unquote(u.path)).resolve() if u.path else page
    if not target.is_relative_to(out): return "points outside the site"
    if target.is_dir(): target = target/'index.html'
    if not target.is_file(): return f"no file {target.relative_to(out)}"
    if u.fragment and target.suffix == '.html' and unquote(u.fragment) not in _parse(target, cache).ids:
        return f"no anchor '#{u.fragment}' in {target.relative_to(out)}"
    return None

def check_site(out, pages:list) -> list:
    "What is broken in the site `out`: `pages` (the sidebar's) missing, local href/src that do not resolve (files, anchors)"
    out = Path(out).resolve()
    errs = [f"missing page: {p} (listed in the sidebar)" for p in pages if not (out/p).is_file()]
    cache = {}
    for f in sorted(out.rglob('*.html')):
        for tag, attr, ref in _parse(f, cache).refs:
            err = _check_ref(ref, f, out, cache)
            if err: errs.append(f'{f.relative_to(out)}: <{tag} {attr}="{ref}">: {err}')
    return errs

def _names(tree) -> tuple:
    "(names a cell reads, names it binds), its `import *`s counted as binding anything"
    read, bound, star = set(), set(), False
    for n in ast.walk(tree):
        if isinstance(n, ast.Name): (read if isinstance(n.ctx, ast.Load) else bound).add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): bound.add(n.name)
        elif isinstance(n, ast.arg): bound.add(n.arg)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            for a in n.names:
                if a.name == '*': star = True
                else: bound.add(a.asname or a.name.split('.')[0])
        elif isinstance(n, ast.ExceptHandler) and n.name: bound.add(n.name)
    return read, bound, star

def nbdev_docs_risks(nb_path:Path, flags=('slow', 'cuda', 'hpa_data')) -> list:
    """Cells that would fail `nbdev-docs` (the deploy job). It runs export cells and every cell holding an import
    (hidden or flagged ones too) and no other: such a cell fails when it reads a name only a skipped cell defines,
    or is flagged to need what CI lacks (nbdev's FAQ: keep imports in cells of their own)"""
    defined, star, res = set(dir(builtins)) | {'show_doc', 'get_ipython', 'display'}, False, []
    for i, c in enumerate(nbformat.read(nb_path, as_version=4).cells):
        if c.cell_type != 'code': continue
        d, src = directives(c.source), strip_directives(c.source)
        try: tree = ast.parse('\n'.join(l for l in src.splitlines() if not l.lstrip().startswith(('%', '!'))))
        except SyntaxError: continue
        exported = bool({'export', 'exports', 'exporti', 'exec_doc'} & d.keys())
        if d.get('eval') == 'false' or not (exported or any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))): continue
        read, bound, cell_star = _names(tree)
        missing = sorted(read - bound - defined)
        where = f"{nb_path.name} cell {i} ({src.splitlines()[0][:50]!r})"
        if not exported and set(flags) & d.keys(): res.append(f"{where} is flagged {sorted(set(flags) & d.keys())} but runs")
        elif not exported and missing and not star: res.append(f"{where} reads {', '.join(missing)}, which no cell it runs defines")
        defined |= bound; star |= cell_star
    return res

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--nbs', default=ROOT/'nbs', type=Path, help='folder of notebooks (default: nbs)')
    p.add_argument('--out', default=ROOT/'_docs', type=Path, help='output folder, replaced (default: _docs)')
    p.add_argument('--modidx', default=ROOT/'hpa_fastai'/'_modidx.py', type=Path, help="nbdev's symbol index")
    p.add_argument('--check', action='store_true', help='check the built site: exit 1 on a missing page or broken local link')
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    entries = build(a.nbs, a.out, a.modidx)
    print(f"built {len(entries)} pages in {a.out} in {time.perf_counter()-t0:.1f} s")
    if not a.check: return 0
    errs = check_site(a.out, [pg for pg, _ in entries])
    risks = [r for nb in notebooks(a.nbs) for r in nbdev_docs_risks(nb)]
    for r in risks: print(f"WARN: nbdev-docs (the deploy job) runs every cell with an import: {r}")
    for e in errs: print(f"BROKEN: {e}")
    if errs: print(f"FAIL: {len(errs)} broken local link(s) or missing page(s) in {a.out}"); return 1
    print(f"docs check: {len(entries)} pages, no broken local links ({time.perf_counter()-t0:.1f} s in all)"); return 0

if __name__ == '__main__': sys.exit(main())
