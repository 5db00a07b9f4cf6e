#!/usr/bin/env python
"""Offline docs check: everything the docs build does before Quarto (which cannot be installed everywhere).

nbdev processes every notebook exactly as `nbdev-docs` would (directives, show_doc, frontmatter), then
nbconvert renders each processed page to HTML in _proc/_html/ for a look (e.g. headless Chromium).
Fails on any error, on a page without a title, and on a link to a notebook that does not exist.
Run from the project root: `python .ci/docs_check.py`.
"""
import re, sys
from pathlib import Path

def main(root:Path):
    from nbdev.serve import proc_nbs
    import nbformat
    from nbconvert import HTMLExporter
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        cache = Path(proc_nbs(root/'nbs', n_workers=0, force=True))
    mixed = [str(w.message).split('---')[1].strip().splitlines()[0] for w in caught if 'containing imports and other code' in str(w.message)]
    out = cache/'_html'; out.mkdir(exist_ok=True)
    pages, errors = sorted(cache.glob('*.ipynb')), [f"a cell mixes imports with other code (nbdev runs its imports at docs time; split it): {m}" for m in mixed]
    exp = HTMLExporter()
    for p in pages:
        try:
            nb = nbformat.read(p, as_version=4)
            keep = {'cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments'}
            for c in nb.cells:                       # nbdev leaves bookkeeping keys that nbformat's schema rejects
                for k in set(c) - keep: del c[k]
                c.metadata.pop('execution', None)
                if c.cell_type == 'code': c.setdefault('execution_count', None); c.setdefault('outputs', [])
            fm = nb.cells[0].source if nb.cells and nb.cells[0].cell_type == 'raw' else ''
            if 'title:' not in fm: errors.append(f"{p.name}: no title (the first markdown cell must be '# title' + '> subtitle')")
            for c in nb.cells:
                if c.cell_type == 'markdown':
                    for t in re.findall(r'\]\(([\w./-]+\.(?:ipynb|png|jpg|gif))\)', c.source):
                        if not (root/'nbs'/t).exists(): errors.append(f"{p.name}: broken link to {t}")
            html, _ = exp.from_notebook_node(nb)
            (out/p.with_suffix('.html').name).write_text(html)
        except Exception as e: errors.append(f"{p.name}: {type(e).__name__}: {e}")
    print(f"docs check: {len(pages)} pages processed and rendered to {out}")
    if errors: sys.exit('docs check failed:\n  ' + '\n  '.join(errors))

if __name__ == '__main__': main(Path(__file__).resolve().parent.parent)
