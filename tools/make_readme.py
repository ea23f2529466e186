"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto; this needs only nbconvert).

    python tools/make_readme.py          # write README.md
    python tools/make_readme.py --check  # exit 1 if README.md differs from what index.ipynb gives

Hidden cells (`#| hide`) are dropped, directive lines removed, code cells kept with their outputs.
"""
import re, sys
from pathlib import Path
import nbformat

ROOT = Path(__file__).resolve().parent.parent
_DIRECTIVE = re.compile(r'^\s*#\s*\|.*$\n?', re.M)

def render(nb_path=ROOT / 'nbs' / 'index.ipynb') -> str:
    nb = nbformat.read(nb_path, as_version=4)
    parts = []
    for c in nb.cells:
        src = c.source
        if c.cell_type == 'code' and re.search(r'^\s*#\s*\|\s*hide\b', src, re.M): continue
        if c.cell_type == 'markdown':
            parts.append(src.strip())
        elif c.cell_type == 'code':
            code = _DIRECTIVE.sub('', src).strip()
            if code: parts.append(f"```python\n{code}\n```")
            for o in c.get('outputs', []):
                text = o.get('text') or o.get('data', {}).get('text/plain', '')
                if isinstance(text, list): text = ''.join(text)
                if text.strip(): parts.append('    ' + text.rstrip().replace('\n', '\n    '))
    return '<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file. -->\n\n' + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text = render()
    readme = ROOT / 'README.md'
    if '--check' in sys.argv:
        ok = readme.exists() and readme.read_text(encoding='utf-8') == text
        print('README.md is in step with nbs/index.ipynb' if ok else 'README.md differs from nbs/index.ipynb: run python tools/make_readme.py')
        sys.exit(0 if ok else 1)
    readme.write_text(text, encoding='utf-8')
    print(f'wrote {readme}')
