"""Round-trip notebooks through a plain-text "percent" script, for editing notebooks with a text editor.

    python tools/nbpy.py to-py nbs/00_data.ipynb /tmp/00_data.py   # notebook -> script
    python tools/nbpy.py to-nb /tmp/00_data.py nbs/00_data.ipynb   # script -> notebook (outputs dropped)

Cells are separated by lines `# %%` (code) or `# %% [markdown]` (markdown; each line prefixed by `# `).
The notebook stays the source of truth: scripts are scratch files, never committed.
"""
import sys, nbformat

def to_py(nb_path, py_path):
    nb = nbformat.read(nb_path, as_version=4)
    out = []
    for c in nb.cells:
        if c.cell_type == 'markdown':
            out.append('# %% [markdown]\n' + '\n'.join(('# ' + l) if l else '#' for l in c.source.split('\n')))
        else:
            out.append('# %%\n' + c.source)
    open(py_path, 'w').write('\n\n'.join(out) + '\n')

def to_nb(py_path, nb_path):
    text = open(py_path).read()
    cells, cur, kind = [], None, None
    def flush():
        if cur is None: return
        src = '\n'.join(cur).strip('\n')
        if kind == 'markdown':
            src = '\n'.join(l[2:] if l.startswith('# ') else l.lstrip('#') for l in src.split('\n'))
            cells.append(nbformat.v4.new_markdown_cell(src))
        else:
            cells.append(nbformat.v4.new_code_cell(src))
    for line in text.split('\n'):
        if line.startswith('# %%'):
            flush()
            kind = 'markdown' if '[markdown]' in line else 'code'
            cur = []
        elif cur is not None:
            cur.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}
    nbformat.write(nb, nb_path)

if __name__ == '__main__':
    cmd, src, dst = sys.argv[1:4]
    {'to-py': to_py, 'to-nb': to_nb}[cmd](src, dst)
