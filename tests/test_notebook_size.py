"""The notebooks stay small: their total size, their stored outputs, and any single stored image.

Notebooks are the source of the package and of its documentation, so every byte in them is read, diffed and
rendered. Dated measurements belong in `bench/RESULTS.md`; stored outputs should show the method working, not
archive runs (`tools/shrink_outputs.py` shrinks figures and long logs). Each failure names the largest offenders.
"""
import functools, json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_TOTAL = 1_000_000        # bytes, all notebooks under nbs/ together
MAX_OUTPUTS = 250_000        # bytes, the JSON of every code cell's stored outputs, all notebooks together
MAX_IMAGE = 120_000          # bytes, one stored image (as stored: base64 for PNG/JPEG, text for SVG)

@functools.lru_cache(maxsize=None)
def notebooks() -> tuple:
    "(relative path, size in bytes, parsed notebook) for every notebook under nbs/."
    paths = sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
    return tuple((str(p.relative_to(ROOT)), p.stat().st_size, json.loads(p.read_text(encoding='utf-8'))) for p in paths)

def _json_size(x) -> int: return len(json.dumps(x, indent=1, ensure_ascii=False).encode('utf-8'))

def _cells():
    "(notebook, cell index, cell id, cell) for every code cell."
    for path, _, nb in notebooks():
        for i, c in enumerate(nb.get('cells', [])):
            if c.get('cell_type') == 'code': yield path, i, c.get('id', '?'), c

def _top(rows, n=5) -> str: return '; '.join(f'{name}: {size:,} bytes' for size, name in sorted(rows, reverse=True)[:n])

def test_notebooks_found():
    assert len(notebooks()) >= 10, f"only {len(notebooks())} notebooks found under {ROOT / 'nbs'}"

def test_total_size():
    total = sum(size for _, size, _ in notebooks())
    assert total <= MAX_TOTAL, (f"the notebooks under nbs/ total {total:,} bytes, over {MAX_TOTAL:,}; largest: "
                                f"{_top([(size, path) for path, size, _ in notebooks()])}")

def test_stored_outputs():
    rows = [(_json_size(c.get('outputs', [])), f'{path} cell {i} ({cid})') for path, i, cid, c in _cells() if c.get('outputs')]
    total = sum(size for size, _ in rows)
    assert total <= MAX_OUTPUTS, (f"stored outputs total {total:,} bytes, over {MAX_OUTPUTS:,} (shrink them with "
                                  f"tools/shrink_outputs.py, or clear them); largest cells: {_top(rows)}")

def test_single_images():
    big = [(len(v) if isinstance(v, str) else len(''.join(v)), f'{path} cell {i} ({cid}) {mime}')
           for path, i, cid, c in _cells() for o in c.get('outputs', [])
           for mime, v in (o.get('data') or {}).items() if mime.startswith('image/')]
    over = [r for r in big if r[0] > MAX_IMAGE]
    assert not over, f"stored images over {MAX_IMAGE:,} bytes: {_top(over, n=len(over))}"
