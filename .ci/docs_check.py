#!/usr/bin/env python
"""Offline docs check: everything the docs build does before Quarto (which cannot be installed everywhere).

nbdev processes every notebook exactly as `nbdev-docs` would (directives, show_doc, frontmatter), then
nbconvert renders each processed page to HTML in _proc/_html/ for a look (e.g. headless Chromium).
Fails on any error, on a page without a title, on a link to a notebook or image that does not exist, and on a
file the Quarto configuration names (stylesheets, metadata files, sidebar entries) that is missing, so the real
Quarto build in GitHub Actions meets no surprise. Images the pages link are copied beside the preview.
Run from the project root: `python .ci/docs_check.py`.
"""
import re, shutil, sys
from pathlib import Path

def config_errors(nbs:Path) -> list:
    "Files that _quarto.yml and the files it pulls in name but that do not exist"
    import yaml
    errors, q = [], yaml.safe_load((nbs/'_quarto.yml').read_text())
    css = q.get('format', {}).get('html', {}).get('css', [])
    named = [*([css] if isinstance(css, str) else css), *q.get('metadata-files', [])]
    side = yaml.safe_load((nbs/'sidebar.yml').read_text()) if (nbs/'sidebar.yml').exists() else {}
    named += [e if isinstance(e, str) else e.get('href', '') for e in side.get('website', {}).get('sidebar', {}).get('contents', [])]
    return [f"_quarto.yml or sidebar.yml names {f}, which is not in {nbs}" for f in named if f and not (nbs/f).exists()]

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
    errors += config_errors(root/'nbs')
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
                        elif not t.endswith('.ipynb'): (out/t).parent.mkdir(parents=True, exist_ok=True); shutil.copy(root/'nbs'/t, out/t)
            html, _ = exp.from_notebook_node(nb)
            (out/p.with_suffix('.html').name).write_text(html)
        except Exception as e: errors.append(f"{p.name}: {type(e).__name__}: {e}")
    print(f"docs check: {len(pages)} pages processed and rendered to {out}")
    if errors: sys.exit('docs check failed:\n  ' + '\n  '.join(errors))

if __name__ == '__main__': main(Path(__file__).resolve().parent.parent)
