"""Render the docs site offline, without Quarto: `python tools/docs_preview.py` (or `make docs-preview`).

nbdev 2's `nbdev_docs`, `nbdev_proc_nbs`, `nbdev_preview` and `nbdev_readme` all try to install Quarto
first (with sudo), which cannot work on machines without network access to its binary. This script
runs nbdev's own notebook processing (`nbdev.serve.proc_nbs`: `show_doc` for every exported name,
hide/export directives, front matter) and renders each processed page to HTML with nbconvert under
`_docs_preview/`, with an `index.html` that links every page. Where Quarto exists, use `nbdev_docs`.
"""
import argparse, html, re, shutil, sys
from pathlib import Path

def _title(nb) -> str:
    for c in nb.cells:
        if c.cell_type in ('markdown', 'raw'):
            m = re.search(r'^title:\s*"?([^"\n]+)"?', c.source, re.M) or re.search(r'^#\s+(.+)$', c.source, re.M)
            if m: return m.group(1).strip()
    return ''

def build(out='_docs_preview', n_workers=1):
    import nbformat
    from nbconvert import HTMLExporter
    from nbdev.config import get_config
    from nbdev.serve import proc_nbs
    cfg = get_config()
    proc = Path(proc_nbs(cfg.nbs_path, n_workers=n_workers, force=True))
    out = cfg.config_path / out
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    exporter = HTMLExporter(template_name='lab')
    pages = []
    for src in sorted(proc.rglob('*.ipynb')):
        rel = src.relative_to(proc)
        nb = nbformat.read(src, as_version=4)
        # front matter is a raw cell; show it as the page header instead of raw YAML
        nb.cells = [c for c in nb.cells if not (c.cell_type == 'raw' and c.source.lstrip().startswith('---'))]
        body, _ = exporter.from_notebook_node(nb)
        dst = (out / rel).with_suffix('.html')
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(body, encoding='utf-8')
        pages.append((rel.with_suffix('.html').as_posix(), _title(nbformat.read(src, as_version=4)) or rel.stem))
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
