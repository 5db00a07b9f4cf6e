"""The test suite: every notebook in nbs/ is one test, run top to bottom by nbdev's `test_nb`.

Cells flagged with a word in `tst_flags` (settings.ini) are skipped unless named in `$SEGSYN_FLAGS`
(e.g. SEGSYN_FLAGS="slow gpu"). Run from the project root: `pytest -n 2 nbs/_test.py` (a worker per core).
The file name starts with `_` so that nbdev and Quarto leave it out of the docs.
"""
import os
# share the cores among xdist workers; this must happen before torch is imported
_n = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1') or 1)
if _n > 1: os.environ.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // _n)))
os.environ.setdefault('MPLBACKEND', 'Agg')
from pathlib import Path
import pytest

# third-party deprecation notices (e.g. torchvision 0.29's codecs) would bury the summary; errors still fail
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')

NBS = Path(__file__).resolve().parent
ROOT = NBS.parent
NOTEBOOKS = sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith('_'))

def _skip_flags():
    from nbdev.config import get_config
    flags = get_config(ROOT).get('tst_flags', '') or ''
    return flags.replace('|', ' ').split() if isinstance(flags, str) else list(flags)

def test_found_notebooks():
    "Fails when nothing would be tested, so a broken glob can't pass silently"
    assert NOTEBOOKS, f"no notebooks found in {NBS}"

def test_slow_cells_are_skipped():
    "The full-size cells (`#| slow`, `#| gpu`) must be skipped by default: they download weights and run for hours"
    assert {'slow', 'gpu'} <= set(_skip_flags()), f"tst_flags in settings.ini is {_skip_flags()}"

@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    "Each notebook's temporary files (datasets, checkpoints: GBs for the model comparisons) go to a folder removed afterwards"
    import tempfile, shutil
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook(nb, own_tmp):
    from nbdev.test import test_nb
    ok, secs = test_nb(nb, skip_flags=_skip_flags(), force_flags=os.environ.get('SEGSYN_FLAGS', '').split(),
                       basepath=ROOT, showerr=True)
    assert ok, f"{nb.name} failed: the failing cell and its traceback are printed above"


def _md(nb):
    import json
    return [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'markdown']

def _code(nb):
    import json
    return [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_course_page(nb):
    "Every notebook: an Open-in-Colab badge to itself, a hidden Colab install cell, and working links to other notebooks"
    import re
    md = '\n'.join(_md(nb))
    assert f'colab.research.google.com/github/segsyn/segsyn/blob/main/nbs/{nb.name}' in md, f"{nb.name}: no Colab badge for itself"
    assert any('#| hide' in c and "'google.colab' in sys.modules" in c and 'pip' in c for c in _code(nb)), f"{nb.name}: no Colab install cell"
    for target in re.findall(r'\]\(([\w./-]+\.(?:ipynb|png|jpg|gif))\)', md):
        assert (NBS/target).exists(), f"{nb.name} links to {target}, which does not exist"

def test_course_order():
    "Each chapter links back to the previous one and on to the next, in the order of the sidebar"
    import yaml
    order = [e for e in yaml.safe_load((NBS/'sidebar.yml').read_text())['website']['sidebar']['contents']]
    order = [e if isinstance(e, str) else e['href'] for e in order]
    assert sorted(order) == sorted(p.name for p in NOTEBOOKS), f"sidebar.yml lists {order}"
    for prev, cur in zip(order, order[1:]):
        last = _md(NBS/cur)[-1]
        assert f'({prev})' in last, f"{cur}'s last cell does not link back to {prev}"
        assert f'({cur})' in _md(NBS/prev)[-1], f"{prev}'s last cell does not link on to {cur}"
