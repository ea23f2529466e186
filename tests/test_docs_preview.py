"""The offline docs preview renders cells the way Quarto does (fast: one hand-made processed notebook, no
`proc_nbs`). The full build of every page is checked in `tests/test_repo.py::test_docs_preview_renders_every_notebook`."""
import html, importlib.util, re
from pathlib import Path
import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent

def _load_tool():
    spec = importlib.util.spec_from_file_location('docs_preview', ROOT / 'tools' / 'docs_preview.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

dp = _load_tool()
v4 = nbformat.v4

# what nbdev's `show_doc` leaves in a processed notebook (`nbdev.serve.proc_nbs`)
SHOW_DOC_MD = ('---\n\n[source](https://github.com/o/r/blob/main/r/m.py#L9){target="_blank" style="float:right; font-size:smaller"}\n\n'
               '### MyThing\n\n```python\ndef MyThing(\n    a:int=1\n):\n```\n\n'
               '*Docstring of MyThing, see [`helper`](https://o.github.io/r/m.html#helper).*')

def _code(src, *texts, md=None):
    c = v4.new_code_cell(src)
    c.outputs = [v4.new_output('stream', name='stdout', text=t) for t in texts]
    if md: c.outputs.append(v4.new_output('execute_result', data={'text/markdown': md, 'text/plain': 'MyThing'}, execution_count=1))
    return c

def page_text(body: str) -> str:
    "The visible text of a rendered page: the part after `<main>`, tags dropped, entities decoded."
    main = body[body.find('<main>'):]
    return html.unescape(re.sub(r'<[^>]+>', '', main))

_re_quarto_attr = re.compile(r'\{\s*(?:target=|\.[A-Za-z])')   # `{target="_blank" ...}`, `{.doc .}`, `{.callout-note}`

@pytest.fixture(scope='module')
def page():
    nb = v4.new_notebook(cells=[
        v4.new_raw_cell('---\ntitle: Demo page\ndescription: Reads `front matter`\noutput-file: demo.html\n---\n'),
        v4.new_markdown_cell('## Part {#part-one .unnumbered}\n\nA [link](https://example.org){target="_blank"}, a [span]{.doc .}, '
                             'braces as text: `{reference}` and \\frac{1}{2}.\n\n::: {.callout-note}\nA **note**.\n:::\n\n'
                             '```python\nd = {.5: 1}  # code is left alone\n```'),
        _code('#| echo: false\nprint("ECHO_FALSE_SOURCE")', 'ECHO_FALSE_OUTPUT\n'),
        _code('#| hide\nHIDDEN_SOURCE = 1', 'HIDDEN_OUTPUT\n'),
        _code('#| include: false\nINCLUDE_FALSE_SOURCE = 1', 'INCLUDE_FALSE_OUTPUT\n'),
        _code('#| output: false\nOUTPUT_FALSE_SOURCE = 1', 'OUTPUT_FALSE_OUTPUT\n'),
        _code('#| code-fold: show\n#| code-summary: "Exported source"\nFOLDED_SOURCE = 1'),
        _code('#| exec_doc\nEXEC_DOC_SOURCE = 1'),
        _code('#| echo: false\n#| output: asis\nshow_doc(MyThing)', md=SHOW_DOC_MD),
        _code('#| echo: false\n#| output: asis\nprint("**ASIS_BOLD**")', '**ASIS_BOLD**\n'),
        _code('plain = "VISIBLE_SOURCE"', 'VISIBLE_OUTPUT\n'),
    ])
    body, fm = dp.render_page(nb, doc_url='https://o.github.io/r/', root='')
    return body, page_text(body), fm

def test_no_quarto_attribute_text_left(page):
    body, text, _ = page
    left = [m.group(0) for m in _re_quarto_attr.finditer(text.replace('d = {.5: 1}', ''))]
    assert not left, f"Quarto attribute text left on the page: {left}"
    assert '<div class="callout-note">' in body and '<h2 id="part-one">' in body and '<span class="doc">span</span>' in body
    assert '{reference}' in text and '\\frac{1}{2}' in text and 'd = {.5: 1}' in text   # braces that are not attributes stay

def test_cell_options(page):
    body, text, _ = page
    assert 'ECHO_FALSE_OUTPUT' in text and 'ECHO_FALSE_SOURCE' not in text           # echo: false -> output only
    assert 'HIDDEN_SOURCE' not in text and 'HIDDEN_OUTPUT' not in text               # hide -> nothing
    assert 'INCLUDE_FALSE_SOURCE' not in text and 'INCLUDE_FALSE_OUTPUT' not in text
    assert 'OUTPUT_FALSE_SOURCE' in text and 'OUTPUT_FALSE_OUTPUT' not in text       # output: false -> source only
    assert re.search(r'<details class="code-fold" open[^>]*>\s*<summary>Exported source</summary>', body) and 'FOLDED_SOURCE' in text
    assert 'EXEC_DOC_SOURCE' in text and 'VISIBLE_SOURCE' in text and 'VISIBLE_OUTPUT' in text
    assert '<strong>ASIS_BOLD</strong>' in body                                      # output: asis -> markdown
    assert not re.search(r'^\s*#\|', text, re.M), "cell options are never shown"
    assert 'show_doc(' not in text

def test_show_doc_is_a_signature_block(page):
    body, text, _ = page
    blk = body[body.index('<div class="doc-block">'):]
    assert re.search(r'<a class="doc-source" href="https://github.com/o/r/blob/main/r/m.py#L9">source</a>', blk)
    assert '<h3 class="doc-name" id="mything">MyThing</h3>' in blk                    # nbdev's links use lower-case anchors
    assert re.search(r'<div class="highlight"><pre>.*def.*MyThing', blk, re.S)      # the signature in a code block
    assert '<em>Docstring of MyThing' in blk and 'href="m.html#helper"' in blk       # docs-site links made local
    assert 'target=' not in blk and 'float:right' not in blk

def test_header_from_front_matter(page):
    body, _, fm = page
    assert fm['output-file'] == 'demo.html'
    assert '<h1 class="title">Demo page</h1>' in body and 'Reads <code>front matter</code>' in body
    assert '<title>Demo page</title>' in body

def test_cell_options_parser():
    opts, code = dp.cell_options('#| echo: false\n#|output: asis\n#| code-summary: "Exported source"\n#| hide\nx = 1\n#| not an option\n')
    assert opts == {'echo': 'false', 'output': 'asis', 'code-summary': 'Exported source', 'hide': True}
    assert code == 'x = 1\n#| not an option'
    assert dp.show_doc_block('Some *markdown* output') is None
