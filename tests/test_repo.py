"""Repository-level checks: library and notebooks agree, README is generated from index.ipynb and names the
command CI runs, the offline docs preview builds, the package ships its own copy of the paper's data."""
import filecmp, os, re, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / 'shared'

def _copy_tree(dst: Path) -> Path:
    "Copy what git would check out (tracked + untracked, not ignored) into `dst`."
    try:
        out = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT,
                             capture_output=True, check=True).stdout.decode().split('\0')
        files = [f for f in out if f and (ROOT / f).is_file()]
    except (OSError, subprocess.CalledProcessError):
        files = [str(p.relative_to(ROOT)) for d in ('nbs', 'rlvr_nb', 'tools') for p in (ROOT / d).rglob('*') if p.is_file()]
        files += ['settings.ini', 'setup.py', 'README.md']
    for f in files:
        (dst / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dst / f)
    return dst

def _bin(name: str) -> str:
    p = Path(sys.executable).parent / name
    return str(p) if p.exists() else name

def test_export_and_clean_leave_tree_unchanged(tmp_path):
    work = _copy_tree(tmp_path / 'repo')
    for cmd in ('nbdev_export', 'nbdev_clean'):
        r = subprocess.run([_bin(cmd)], cwd=work, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    changed = []
    for sub in ('rlvr_nb', 'nbs'):
        for p in (work / sub).rglob('*'):
            if p.is_file() and p.suffix in ('.py', '.ipynb') and '__pycache__' not in p.parts:
                orig = ROOT / p.relative_to(work)
                if not orig.exists() or not filecmp.cmp(p, orig, shallow=False): changed.append(str(p.relative_to(work)))
    assert not changed, f"nbdev_export/nbdev_clean changed {changed}: run them and commit (library and notebooks must agree)"

def test_readme_is_generated_from_index():
    r = subprocess.run([sys.executable, 'tools/make_readme.py', '--check'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr

def _readme_commands():
    text = (ROOT / 'README.md').read_text()
    m = re.search(r'## Install and test.*?```sh\n(.*?)```', text, re.S)
    assert m, "README.md has no '## Install and test' section with a sh block"
    return [l.strip() for l in m.group(1).strip().splitlines() if l.strip()]

def test_readme_has_two_setup_commands_and_ci_runs_the_test_command():
    cmds = _readme_commands()
    assert len(cmds) == 2 and cmds[0] == 'pip install -e ".[dev]"', cmds
    ci = (ROOT / '.ci' / 'run').read_text().splitlines()
    assert cmds[1] in [l.strip() for l in ci], f"CI must run exactly the README's test command {cmds[1]!r}"

def _page_name(nb_path: Path) -> str:
    "The page Quarto (and the preview) writes for a notebook: nbdev's name without the number (`01_toy.ipynb` -> `toy.html`)."
    return nb_path.with_name(re.sub(r'^\d+[a-zA-Z0-9]*_', '', nb_path.name.lower())).with_suffix('.html').as_posix()

def _hidden_sources(nb_path: Path) -> list[str]:
    "Code of the `#| hide` cells of a notebook that appears nowhere else in it (so it must not be on its page)."
    import nbformat
    cells = nbformat.read(nb_path, as_version=4).cells
    code = lambda c: '\n'.join(l for l in c.source.splitlines() if not l.lstrip().startswith('#|')).strip()
    hidden = [c for c in cells if c.cell_type == 'code' and re.match(r'\s*#\|\s*hide\s*$', c.source, re.M)]
    shown = [c.source for c in cells if c not in hidden]
    return [code(c) for c in hidden if code(c) and not any(code(c) in s for s in shown)]

def test_docs_preview_renders_every_notebook(tmp_path):
    import html as html_
    work = _copy_tree(tmp_path / 'repo')
    r = subprocess.run([sys.executable, 'tools/docs_preview.py'], cwd=work, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = work / '_docs_preview'
    nbs = sorted(p.relative_to(work / 'nbs') for p in (work / 'nbs').rglob('*.ipynb')
                 if not p.name.startswith('_') and '.ipynb_checkpoints' not in p.parts)
    missing = [str(p) for p in nbs if not (out / _page_name(p)).exists()]
    assert not missing, f"pages not rendered: {missing}"
    index = (out / 'index.html').read_text()
    assert all(f'href="{_page_name(p)}"' in index for p in nbs), "the sidebar links every page"
    data_page = (out / 'data.html').read_text()
    assert '<h3 class="doc-name" id="load_rlvr_dataset">' in data_page and '#| export' not in data_page  # show_doc ran
    # every page as Quarto shows it: no Pandoc attribute text, no cell options, no source of show_doc (echo: false)
    # or of `#| hide` cells, while the show_doc output (the signature block) is there
    bad, blocks = {}, 0
    for p in nbs:
        body = (out / _page_name(p)).read_text()
        text = html_.unescape(re.sub(r'<[^>]+>', '', body[body.find('<main>'):]))
        blocks += body.count('<div class="doc-block">')
        problems = [m.group(0) for m in re.finditer(r'\{\s*(?:target=|\.[A-Za-z])[^}]{0,30}', text)]
        problems += [l for l in text.splitlines() if l.lstrip().startswith('#|')]
        problems += ['show_doc('] * ('show_doc(' in text)
        problems += [f'hidden cell: {h[:60]!r}' for h in _hidden_sources(work / 'nbs' / p) if h in text]
        if problems: bad[str(p)] = problems[:5]
    assert not bad, f"pages that show what Quarto would not: {bad}"
    assert blocks >= 50, f"only {blocks} show_doc signature blocks in all pages"

def test_package_ships_its_own_paper_data():
    data = ROOT / 'rlvr_nb' / 'data'
    for name in ('judge_template.txt', 'subjects.csv', 'table1_main.csv', 'table2_scaling.csv', 'table3_ood.csv', 'agreement_kappa.csv'):
        assert (data / name).exists(), name
        if (SHARED / 'paper' / name).exists():
            assert filecmp.cmp(data / name, SHARED / 'paper' / name, shallow=False), f"{name} differs from the paper's copy"

def test_library_never_reads_shared():
    offenders = [p.name for p in (ROOT / 'rlvr_nb').glob('*.py') if re.search(r"['\"/]shared['\"/]", p.read_text())]
    assert not offenders, f"modules that refer to ../shared at run time: {offenders}"


def test_stored_outputs_stay_small():
    "Stored outputs are for reading: figures at ~100 dpi (≤ 1,000 px wide), no megabyte logs (`python tools/shrink_outputs.py`)."
    import base64, io, json
    from PIL import Image
    total, wide = 0, []
    for p in sorted((ROOT / 'nbs').rglob('*.ipynb')):
        for c in json.loads(p.read_text())['cells']:
            for o in c.get('outputs', []):
                total += len(json.dumps(o))
                png = (o.get('data') or {}).get('image/png')
                if png and Image.open(io.BytesIO(base64.b64decode(png))).width > 1000: wide.append(f"{p.name}:{c.get('id')}")
    assert not wide, f"figures wider than 1,000 px (save at ~100 dpi or run tools/shrink_outputs.py): {wide}"
    assert total < 300_000, f"stored outputs hold {total:,} bytes (limit 300,000): run tools/shrink_outputs.py"
