"""Render the docs site offline, without Quarto: `python tools/docs_preview.py` (or `make docs-preview`).

nbdev 2's `nbdev_docs`, `nbdev_proc_nbs`, `nbdev_preview` and `nbdev_readme` all try to install Quarto
first (with sudo), which cannot work on machines without network access to its binary. This script
runs nbdev's own notebook processing (`nbdev.serve.proc_nbs`: `show_doc` for every exported name,
hide/export directives, front matter) and then does, roughly, what Quarto does with the processed pages
before rendering each one to HTML with nbconvert under `_docs_preview/`:

- cell options at the top of a code cell (`#| ...`) are read and never shown: `echo: false` shows the
  output only, `output: false` the source only, `include: false` and `hide` nothing, `output: asis`
  renders printed text as markdown, `code-fold: true|show` (with `code-summary`) folds the source;
- `show_doc` output becomes a signature block (the name as a heading, with the anchor nbdev's links use,
  the signature in a code block, the docstring, a "source" link) without Pandoc's `{...}` attributes;
- Pandoc attributes elsewhere in markdown (`[x](y){target=...}`, `## H {#id}`, `[x]{.cls}`, `::: {.callout-note}`
  fenced divs) become plain HTML;
- pages are named like Quarto names them (front matter `output-file`: `reward.html`, `index.html`), links to
  the docs site point at the local pages, and each page has the front matter's title and description and
  a sidebar that links every page.

Where Quarto exists, use `nbdev_docs`: this is a preview, not the site.
"""
import argparse, html, os, re, shutil, sys
from pathlib import Path

# --- cell options ---------------------------------------------------------------------------------------

_re_opt = re.compile(r'^\s*#\|\s?(.*?)\s*$')

def cell_options(source: str) -> tuple[dict, str]:
    "The `#|` options at the top of a code cell (`{'echo': 'false', 'hide': True}`) and the code below them."
    lines, opts = source.splitlines(True), {}
    i = 0
    while i < len(lines) and _re_opt.match(lines[i]):
        body = _re_opt.match(lines[i]).group(1)
        k, sep, v = body.partition(':')
        k = k.strip()
        if k: opts[k] = v.strip().strip('"\'') if sep else True
        i += 1
    return opts, ''.join(lines[i:]).strip('\n')

def _false(v) -> bool: return str(v).strip().lower() in ('false', 'no', '0')
def _true(v) -> bool: return v is True or str(v).strip().lower() in ('true', 'yes', '1', 'show')

# --- Pandoc attributes in markdown -------------------------------------------------------------------------

_attr = r'\{\s*(?:[#.][\w-]|[\w-]+\s*=)[^{}\n]*\}'   # {#id}, {.cls}, {key=...}: not {question} or {...}
_re_link_attr = re.compile(r'(\]\([^)\n]*\))' + _attr)
_re_span = re.compile(r'(?<!!)\[([^\[\]\n]+)\]\{\s*([^{}\n]*)\}')
_re_code_attr = re.compile(r'(`[^`\n]+`)' + _attr)
_re_head_attr = re.compile(r'^(#{1,6})\s+(.*?)\s*(' + _attr + r')\s*$', re.M)
_re_div_open = re.compile(r'^\s*:::+\s*(\{[^{}\n]*\}|[\w-]+)\s*$')
_re_div_close = re.compile(r'^\s*:::+\s*$')
_re_fence = re.compile(r'^\s*(```|~~~)')

def _parse_attrs(s: str) -> tuple[str, list, dict]:
    "Pandoc attribute text (`{#id .a .b key=\"v\"}` or `a`) -> (id, classes, key/values)."
    s = s.strip()
    if not s.startswith('{'): return '', [s], {}
    s = s[1:-1]
    kv = dict((k, v1 or v2) for k, v1, v2 in re.findall(r'([\w-]+)=(?:"([^"]*)"|(\S+))', s))
    s = re.sub(r'[\w-]+=(?:"[^"]*"|\S+)', ' ', s)
    ident = next((t[1:] for t in s.split() if t.startswith('#')), '')
    return ident, [t[1:] for t in s.split() if t.startswith('.') and len(t) > 1], kv

def _div(attrs: str) -> str:
    ident, cls, _ = _parse_attrs(attrs)
    title = ''
    for c in cls:
        m = re.match(r'callout-(\w+)', c)
        if m: title = f'<div class="callout-title">{m.group(1).capitalize()}</div>'
    return (f'<div' + (f' id="{html.escape(ident)}"' if ident else '') +
            (f' class="{html.escape(" ".join(cls))}"' if cls else '') + f'>\n{title}\n')

def _span(m) -> str:
    text, attrs = m.group(1), m.group(2)
    if not re.match(r'\s*(?:[#.][\w-]|[\w-]+\s*=)', attrs): return m.group(0)
    ident, cls, _ = _parse_attrs('{' + attrs + '}')
    return (f'<span' + (f' id="{html.escape(ident)}"' if ident else '') +
            (f' class="{html.escape(" ".join(cls))}"' if cls else '') + f'>{text}</span>')

def _head(m) -> str:
    ident, _, _ = _parse_attrs(m.group(3))
    if not ident: return f'{m.group(1)} {m.group(2)}'
    n = len(m.group(1))
    return f'<h{n} id="{html.escape(ident)}">{m.group(2)}</h{n}>'

def strip_attrs(md: str) -> str:
    "Markdown with Pandoc/Quarto attribute syntax turned into plain markdown or HTML (code blocks untouched)."
    out, fence = [], None
    for line in md.splitlines():
        m = _re_fence.match(line)
        if fence:
            out.append(line)
            if m and m.group(1) == fence: fence = None
            continue
        if m:
            fence = m.group(1); out.append(re.sub(r'^(\s*(?:```|~~~))\s*\{\.?([\w+-]+)[^}]*\}', r'\1\2', line)); continue
        if _re_div_open.match(line): out += ['', _div(_re_div_open.match(line).group(1)), '']; continue
        if _re_div_close.match(line): out += ['', '</div>', '']; continue
        line = _re_head_attr.sub(_head, line)
        line = _re_link_attr.sub(r'\1', line)
        line = _re_code_attr.sub(r'\1', line)
        line = _re_span.sub(_span, line)
        out.append(line)
    return '\n'.join(out)

# --- show_doc ------------------------------------------------------------------------------------------

_re_showdoc = re.compile(r'\A\s*(?:---\s*\n)?\s*(?:\[source\]\((?P<url>[^)\s]*)\)(?:\{[^{}]*\})?\s*\n)?\s*'
                         r'(?P<h>#{2,6})\s+(?P<name>[^\n]+?)\s*\n(?P<rest>.*)\Z', re.S)

def show_doc_block(md: str) -> str | None:
    "The markdown of a `show_doc` output as a signature block, or None when `md` is not one."
    m = _re_showdoc.match(md)
    if not m or not (m.group('url') or m.group('rest').lstrip().startswith('```')): return None
    name, n = m.group('name').strip(), len(m.group('h'))
    plain = re.sub(r'[`*\\]', '', re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', name))
    src = f'<a class="doc-source" href="{html.escape(m.group("url"))}">source</a>' if m.group('url') else ''
    return (f'<div class="doc-block">\n\n{src}\n\n<h{n} class="doc-name" id="{html.escape(plain.lower())}">'
            f'{html.escape(plain)}</h{n}>\n\n{strip_attrs(m.group("rest").strip())}\n\n</div>')

# --- one page ------------------------------------------------------------------------------------------

def _md_cell(source):
    import nbformat
    return nbformat.v4.new_markdown_cell(source)

def _text(v) -> str: return ''.join(v) if isinstance(v, list) else (v or '')

def quarto_cells(nb):
    "Turn a processed notebook into what Quarto would show; returns `(nb, front_matter)`."
    fm, cells = _front_matter(nb), []
    for c in nb.cells:
        src = _text(c.source)
        if c.cell_type == 'raw':
            if not src.lstrip().startswith('---'): cells.append(c)
            continue
        if c.cell_type == 'markdown':
            c.source = strip_attrs(src); cells.append(c); continue
        if c.cell_type != 'code': continue
        opts, code = cell_options(src)
        if 'hide' in opts or _false(opts.get('include', True)) or 'remove_cell' in c.metadata.get('tags', []): continue
        c.source, outs = code, []
        asis = str(opts.get('output', '')).lower() == 'asis'
        if not _false(opts.get('output', True)):
            for o in c.get('outputs', []):
                if asis and o.get('output_type') == 'stream' and o.get('name') == 'stdout':
                    o = {'output_type': 'display_data', 'metadata': {}, 'data': {'text/markdown': _text(o.get('text'))}}
                data = o.get('data') or {}
                if 'text/markdown' in data:
                    md = _text(data['text/markdown'])
                    sd = show_doc_block(md)
                    data['text/markdown'] = sd or strip_attrs(md)
                    if sd: data.pop('text/html', None)
                outs.append(o)
        c.outputs = outs
        tags = set(c.metadata.get('tags', []))
        fold = opts.get('code-fold')
        if not code.strip() or _false(opts.get('echo', True)): tags.add('remove_input')
        elif fold is not None and _true(fold):
            summary = html.escape(str(opts.get('code-summary', 'Code')))
            cells.append(_md_cell(f'<details class="code-fold"{" open" if str(fold).lower() == "show" else ""}>\n'
                                  f'<summary>{summary}</summary>\n\n```python\n{code}\n```\n\n</details>'))
            tags.add('remove_input')
        if 'remove_input' in tags and not outs: continue
        c.metadata['tags'] = sorted(tags)
        cells.append(c)
    nb.cells = cells
    return nb, fm

_CSS = """
body { margin: 0; }
body.jp-Notebook { padding: 0; }
.preview-sidebar { position: fixed; top: 0; left: 0; bottom: 0; width: 230px; overflow-y: auto; padding: 1rem .8rem;
  box-sizing: border-box; border-right: 1px solid #ddd; background: #f8f9fa; font: 14px/1.4 system-ui, sans-serif; }
.preview-sidebar .lib { font-weight: 600; font-size: 16px; display: block; margin-bottom: .6rem; color: #2c3e50; }
.preview-sidebar ul { list-style: none; padding: 0; margin: 0 0 .8rem 0; }
.preview-sidebar li { margin: .15rem 0; }
.preview-sidebar a { color: #2c3e50; text-decoration: none; }
.preview-sidebar a:hover { text-decoration: underline; }
.preview-sidebar a.active { color: #2780e3; font-weight: 600; }
.preview-sidebar .section { text-transform: uppercase; font-size: 12px; color: #6c757d; margin: .6rem 0 .2rem; }
body > main { margin-left: 230px; max-width: 960px; padding: 1rem 2rem 3rem 2rem; box-sizing: border-box; }
.jp-Cell, .jp-InputArea, .jp-OutputArea-output { min-width: 0; max-width: 100%; }
.jp-Cell pre { overflow-x: auto; }
.jp-RenderedMarkdown pre { white-space: pre; font-family: var(--jp-code-font-family, monospace); font-size: var(--jp-code-font-size, 13px);
  background: #f5f5f5; border: 1px solid #e5e5e5; border-radius: 4px; padding: .5rem .75rem; overflow-x: auto; }
.jp-RenderedMarkdown a code, .jp-RenderedMarkdown a { color: #2780e3; }
.preview-header { font-family: var(--jp-content-font-family, system-ui, sans-serif); }
.preview-header h1 { margin: .5rem 0 .3rem 0; font-size: 2.2rem; }
.preview-header .description { color: #555; font-size: 1.1rem; margin: 0 0 1rem 0; }
.preview-header .banner { font-size: 12px; color: #888; margin-bottom: 1rem; }
.doc-block { border-top: 1px solid #ddd; margin-top: 1.2rem; padding-top: .4rem; }
.doc-block .doc-source { float: right; font-size: smaller; }
.jp-RenderedMarkdown .doc-block h2, .jp-RenderedMarkdown .doc-block h3, .jp-RenderedMarkdown .doc-block h4 { margin-top: .2rem; }
details.code-fold > summary { cursor: pointer; color: #555; font-size: smaller; }
.callout-note, .callout-tip, .callout-warning, .callout-important, .callout-caution {
  border-left: 4px solid #2780e3; background: #f4f8fd; padding: .4rem .9rem; margin: .8rem 0; }
.callout-tip { border-color: #3fb618; background: #f5fbf3; }
.callout-warning, .callout-caution { border-color: #ff7518; background: #fff8f2; }
.callout-important { border-color: #ff0039; background: #fff4f6; }
.callout-title { font-weight: 600; }
@media (max-width: 800px) { .preview-sidebar { display: none; } body > main { margin-left: 0; } }
"""

def _exporter():
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_input_tags = {'remove_input'}
    c.TagRemovePreprocessor.remove_all_outputs_tags = {'remove_output'}
    c.TagRemovePreprocessor.remove_cell_tags = {'remove_cell'}
    c.HTMLExporter.exclude_input_prompt = True
    c.HTMLExporter.exclude_output_prompt = True
    return HTMLExporter(config=c, template_name='lab')

def _inline_md(s: str) -> str:
    "Front matter text (`code`, **bold**, *em*) as inline HTML, the way Quarto shows a description."
    s = html.escape(s)
    s = re.sub(r'`([^`]+)`', r'<code>\1</code>', s)
    s = re.sub(r'\*\*([^*]+)\*\*', r'<strong>\1</strong>', s)
    return re.sub(r'(?<![\w*])\*([^*]+)\*(?!\w)', r'<em>\1</em>', s)

def render_page(nb, nav: str = '', doc_url: str = '', root: str = '', exporter=None) -> tuple[str, dict]:
    "HTML of one processed notebook as Quarto would show it; `doc_url` links are made relative to `root`."
    nb, fm = quarto_cells(nb)
    title, desc = str(fm.get('title', '') or ''), str(fm.get('description', '') or '')
    head = (f'<header class="preview-header"><div class="banner">Offline preview (tools/docs_preview.py); '
            f'the site is built by nbdev_docs with Quarto.</div>' + (f'<h1 class="title">{html.escape(title)}</h1>' if title else '') +
            (f'<p class="description">{_inline_md(desc)}</p>' if desc else '') + '</header>')
    body, _ = (exporter or _exporter()).from_notebook_node(nb, resources={'metadata': {'name': title or 'docs'}})
    body = body.replace('</head>', f'<style type="text/css">{_CSS}</style>\n</head>', 1)
    body = re.sub(r'(<body[^>]*>\s*<main>)', lambda m: m.group(1).replace('<main>', nav + '<main>' + head), body, count=1)
    if doc_url: body = body.replace(f'href="{doc_url}', f'href="{root}')
    return body, fm

def _front_matter(nb) -> dict:
    import yaml
    for c in nb.cells:
        src = _text(c.source)
        if c.cell_type == 'raw' and src.lstrip().startswith('---'):
            try: return yaml.safe_load(src.strip().strip('-')) or {}
            except yaml.YAMLError: return {}
    return {}

def _title(nb) -> str:
    t = _front_matter(nb).get('title')
    if t: return str(t).strip()
    for c in nb.cells:
        m = c.cell_type == 'markdown' and re.search(r'^#\s+(.+)$', _text(c.source), re.M)
        if m: return m.group(1).strip()
    return ''

def _page_name(nb, rel: Path) -> Path:
    "Where Quarto writes a page: its front matter's `output-file`, else nbdev's name for it (`01_toy.ipynb` -> `toy.html`)."
    for c in nb.cells:
        if c.cell_type == 'raw':
            m = re.search(r'^output-file:\s*"?([^"\n]+?)"?\s*$', _text(c.source), re.M)
            if m: return rel.parent / m.group(1)
    return rel.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', rel.name.lower())).with_suffix('.html')

def _nav(pages, here: str, lib: str) -> str:
    "A sidebar linking every page, relative to page `here`."
    up = '../' * here.count('/')
    groups = {}
    for p, t in pages: groups.setdefault(p.rpartition('/')[0], []).append((p, t))
    parts = [f'<nav class="preview-sidebar"><a class="lib" href="{up}index.html">{html.escape(lib)}</a>']
    for g in sorted(groups, key=lambda g: (g != '', g)):
        if g: parts.append(f'<div class="section">{html.escape(g)}</div>')
        parts.append('<ul>' + ''.join(f'<li><a href="{html.escape(up + p)}"' + (' class="active"' if p == here else '') +
                                      f'>{html.escape(t)}</a></li>' for p, t in groups[g]) + '</ul>')
    return ''.join(parts) + '</nav>'

def _md_notebook(text: str):
    "A `.qmd`/`.md` page as a notebook: front matter as a raw cell, the rest as one markdown cell."
    import nbformat
    nb = nbformat.v4.new_notebook()
    m = re.match(r'\A(---\s*\n.*?\n---\s*\n)(.*)\Z', text, re.S)
    if m: nb.cells = [nbformat.v4.new_raw_cell(m.group(1)), nbformat.v4.new_markdown_cell(m.group(2))]
    else: nb.cells = [nbformat.v4.new_markdown_cell(text)]
    return nb

def build(out='_docs_preview', n_workers=1):
    import nbformat
    from nbdev.config import get_config
    from nbdev.serve import proc_nbs
    cfg = get_config()
    proc = Path(proc_nbs(cfg.nbs_path, n_workers=n_workers, force=True))
    out = cfg.config_path / out
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    srcs = sorted(p for p in proc.rglob('*') if p.suffix in ('.ipynb', '.qmd', '.md') and p.is_file()
                  and not any(s.startswith(('_', '.')) for s in p.relative_to(proc).parts))
    nbs = []
    for src in srcs:
        rel = src.relative_to(proc)
        nb = nbformat.read(src, as_version=4) if src.suffix == '.ipynb' else _md_notebook(src.read_text(encoding='utf-8'))
        nbs.append((_page_name(nb, rel).as_posix(), _title(nb) or rel.stem, nb))
    nbs.sort(key=lambda x: (x[0] != 'index.html', x[0].count('/'), x[0] if x[0].count('/') else ''))  # index, pages, folders
    pages = [(p, t) for p, t, _ in nbs]
    doc_url = (cfg.get('doc_host', '') or '').rstrip('/') + '/' + (cfg.get('doc_baseurl', '') or '').strip('/')
    doc_url = doc_url.rstrip('/') + '/' if doc_url.strip('/') else ''
    exporter = _exporter()
    for p, _, nb in nbs:
        body, _ = render_page(nb, _nav(pages, p, cfg.lib_name), doc_url, '../' * p.count('/'), exporter)
        dst = out / p
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(body, encoding='utf-8')
    if 'index.html' not in [p for p, _ in pages]:
        items = '\n'.join(f'<li><a href="{html.escape(p)}">{html.escape(t)}</a> <small>({html.escape(p)})</small></li>' for p, t in pages)
        (out / 'index.html').write_text(f'<!doctype html><meta charset="utf-8"><title>{cfg.lib_name} docs (preview)</title>'
                                        f'<h1>{cfg.lib_name} — docs preview</h1><p>{html.escape(cfg.description)}</p><ul>{items}</ul>',
                                        encoding='utf-8')
    return out, pages

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default='_docs_preview')
    ap.add_argument('--n_workers', type=int, default=1)
    a = ap.parse_args(argv)
    out, pages = build(a.out, a.n_workers)
    print(f"{len(pages)} pages rendered under {out}/ (open {out}/index.html)")

if __name__ == '__main__': sys.exit(main())
