"""Keep the notebooks' stored outputs small: figures at about 100 dpi, tables once, long logs cut.

    python tools/shrink_outputs.py nbs/*.ipynb nbs/tutorials/*.ipynb      # rewrite in place
    python tools/shrink_outputs.py --check nbs/*.ipynb                     # print sizes, change nothing

- a PNG figure wider than `--max-width` px (default 560) is resampled down,
  and every PNG is stored with a 32-colour palette (octree: line plots and colour maps keep their colours);
- a result shown both as HTML and as plain text (pandas tables) keeps the plain text only;
- a text output longer than `--max-lines` lines (default 12) keeps its last lines, after a line saying how many were cut.
"""
import argparse, base64, io, json, sys
from pathlib import Path

def shrink_png(b64: str, max_width: int, colors: int = 32) -> str:
    from PIL import Image
    im = Image.open(io.BytesIO(base64.b64decode(b64))).convert('RGB')
    if im.width > max_width: im = im.resize((max_width, round(im.height * max_width / im.width)), Image.LANCZOS)
    buf = io.BytesIO(); im.quantize(colors=colors, method=Image.Quantize.FASTOCTREE).save(buf, 'PNG', optimize=True)
    out = base64.b64encode(buf.getvalue()).decode()
    return out if len(out) < len(b64) else b64

def cut_text(text, max_lines: int):
    lines = ''.join(text).splitlines(keepends=True) if isinstance(text, list) else text.splitlines(keepends=True)
    if len(lines) <= max_lines: return text
    return [f'[… {len(lines) - max_lines} lines cut …]\n'] + lines[-max_lines:]

def shrink(nb: dict, max_width: int, max_lines: int) -> dict:
    for c in nb['cells']:
        for o in c.get('outputs', []):
            d = o.get('data')
            if d:
                if 'image/png' in d: d['image/png'] = shrink_png(d['image/png'], max_width)
                if 'text/html' in d and 'text/plain' in d: del d['text/html']
                if 'text/plain' in d: d['text/plain'] = cut_text(d['text/plain'], max_lines)
            if o.get('output_type') == 'stream': o['text'] = cut_text(o['text'], max_lines)
    return nb

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('paths', nargs='+'); ap.add_argument('--check', action='store_true')
    ap.add_argument('--max-width', type=int, default=560); ap.add_argument('--max-lines', type=int, default=12)
    a = ap.parse_args(argv)
    total = 0
    for p in map(Path, a.paths):
        if not a.check:
            nb = shrink(json.loads(p.read_text()), a.max_width, a.max_lines)
            p.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
        total += p.stat().st_size
        print(f"{p}: {p.stat().st_size:,} bytes")
    print(f"total: {total:,} bytes")

if __name__ == '__main__': sys.exit(main())
