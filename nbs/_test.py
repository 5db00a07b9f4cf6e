"""The test suite: every notebook in nbs/ is one test, run top to bottom by nbdev's `test_nb`.

Cells flagged with a word in `tst_flags` (settings.ini) are skipped unless named in `$SEGSYN_FLAGS`.
`SEGSYN_FLAGS="slow gpu"` in the CI profile is the *smoke mode*: every slow/GPU cell runs at tiny size on the CPU
(.ci/run does this), so no code path goes untested. Run from the project root: `pytest -n 2 --dist loadgroup nbs/_test.py` (two lanes, below).
Notebooks of one run share built artefacts (synthetic datasets, small trained models) through `$SEGSYN_CACHE`
(default: a folder for this run under the temp dir). Checks that need third-party data (../shared/data) are
separate tests that report themselves as skipped when it is absent.
The file name starts with `_` so that nbdev and Quarto leave it out of the docs.
"""
import os, tempfile, time, shutil
# share the cores among xdist workers; this must happen before torch is imported
_n = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1') or 1)
if _n > 1: os.environ.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // _n)))
# the same threads in every run it compares bit for bit, whatever else the machine does (00_core: on_idle_threads)
os.environ.setdefault('SEGSYN_THREADS', os.environ.get('OMP_NUM_THREADS') or str(os.cpu_count() or 1))
os.environ.setdefault('MPLBACKEND', 'Agg')
from pathlib import Path

def _run_cache():
    "One cache folder per test run, shared by the xdist workers (same run id); old runs' folders are removed"
    base = Path(tempfile.gettempdir())/'segsyn-test-cache'
    run = os.environ.get('PYTEST_XDIST_TESTRUNUID') or f'solo-{os.getpid()}'
    base.mkdir(exist_ok=True)
    for old in base.iterdir():
        if old.name != run and time.time() - old.stat().st_mtime > 6 * 3600: shutil.rmtree(old, ignore_errors=True)
    return str(base/run)
os.environ.setdefault('SEGSYN_CACHE', _run_cache())
import pytest

# third-party deprecation notices (e.g. torchvision 0.29's codecs) would bury the summary; errors still fail
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning')

NBS = Path(__file__).resolve().parent
ROOT = NBS.parent
NOTEBOOKS = sorted(p for p in NBS.glob('*.ipynb') if not p.name.startswith('_'))
# Two lanes, one per worker (`--dist loadgroup`; each lane runs its notebooks in the order listed). The chapters that
# train the shared models come before the notebooks that reuse their fits (`segsyn.core.cached`: built once per
# configuration; a second asker waits for the first): 08 reuses all nine segmenters of 02-05, 07b, 09a and 11 the
# U-Net and SPADE of 09, 13 the U-Net and SPADE of 09 (a lane that gets there first waits). Measured on a clean clone
# (2 CPU cores): 13_reproduce alone is ~350 s (its five reproductions train), so lane B holds it with the short
# notebooks and lane A the other long ones (lanes of ~665 s each).
LANE_A = ['03_unet', '05_denseaspp', '02_fcn', '06b_cgan_training', '10_performance', '08_evaluation', '11_cli']
LANE_B = ['04_deeplab', '09_roundtrip', '09a_video', '03b_structure', '07b_spade_training', '10b_runs']
def _rank(p): return (0, LANE_A.index(p.stem)) if p.stem in LANE_A else (1, LANE_B.index(p.stem)) if p.stem in LANE_B else (2, p.name)
RUN_ORDER = sorted(NOTEBOOKS, key=_rank)
_LANED = [pytest.param(p, id=p.stem, marks=pytest.mark.xdist_group('A' if p.stem in LANE_A else 'B')) for p in RUN_ORDER]

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

# a guard against a hung cell, not a speed limit: the comparison cells train several models (minutes on a busy 2-core machine)
CELL_TIMEOUT = int(os.environ.get('SEGSYN_CELL_TIMEOUT', 1800))

@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    "Each notebook's temporary files (datasets, checkpoints: GBs for the model comparisons) go to a folder removed afterwards"
    import tempfile, shutil
    monkeypatch.setattr(tempfile, 'tempdir', str(tmp_path))
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)

@pytest.mark.parametrize('nb', _LANED)
def test_notebook(nb, own_tmp):
    from nbdev.test import test_nb
    ok, secs = test_nb(nb, skip_flags=_skip_flags(), force_flags=os.environ.get('SEGSYN_FLAGS', '').split(),
                       basepath=ROOT, showerr=True, cell_timeout=CELL_TIMEOUT)
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


def _opening(nb:Path) -> tuple:
    "(the measured run time on its opening paragraph's ⏱ line or None, the index of its first picture or None)"
    import json, re
    cells = json.loads(nb.read_text())['cells']
    intro = ''.join(cells[2]['source']) if len(cells) > 2 and cells[2]['cell_type'] == 'markdown' else ''
    t = re.search(r'^⏱ \*Runs in (\d+ (?:min \d+ )?s)', intro, re.M)
    pic = next((i for i, c in enumerate(cells) if '](images/' in ''.join(c['source']) and c['cell_type'] == 'markdown'
                or any('image/png' in o.get('data', {}) for o in c.get('outputs', []))), None)
    return (t[1] if t else None), pic

def test_chapter_openings():
    "Each chapter reads as a page: after its title, what it teaches with its measured run time (⏱, written by .ci/refresh.py), and its first picture within its first 15 cells"
    bad = []
    for nb in NOTEBOOKS:
        if nb.stem == 'index': continue
        t, pic = _opening(nb)
        if t is None: bad.append(f"{nb.stem}: no measured run time on its opening paragraph (python .ci/refresh.py {nb.stem})")
        if pic is not None and pic > 15: bad.append(f"{nb.stem}: its first picture is cell {pic}; show one in its opening")
    assert not bad, '\n'.join(bad)

def test_readme_examples(tmp_path):
    "Every README example marked ⏱ runs as written (CI profile, one after another in one folder, as a reader would) and states the time .ci/refresh.py measured"
    import subprocess, sys, re
    sys.path.insert(0, str(ROOT/'.ci'))
    import readme
    blocks = readme.timed_blocks((ROOT/'README.md').read_text())
    assert len(blocks) >= 8, f"README.md has only {len(blocks)} timed examples"
    env = {**os.environ, 'SEGSYN_PROFILE': 'ci', 'MPLBACKEND': 'Agg', 'TQDM_DISABLE': '1'}
    for kind, code, stated in blocks:
        assert re.fullmatch(r'\d+ (min \d+ )?s on \d+ CPU cores', stated), f"{code[:60]!r} states {stated!r}: run python .ci/refresh.py --readme"
        if code.startswith('segsyn demo') or kind == 'python': continue   # run by 11_cli (the demo, these defaults), 12_api (this block)
        rc, secs, out = readme.run_block(kind, code, tmp_path, env)
        assert rc == 0, f"README example failed:\n{code}\n{out}"

def test_runtime_needs_no_course_tools():
    "The library and the command run on the light install: no module imports nbdev, Jupyter or IPython, and neither is a dependency"
    import subprocess, sys, re
    probe = ("import importlib, pkgutil, sys, segsyn\n"
             "for m in pkgutil.iter_modules(segsyn.__path__): importlib.import_module('segsyn.' + m.name)\n"
             "from segsyn.cli import build_parser; build_parser().format_help()\n"
             "print(sorted({n.split('.')[0] for n in sys.modules} & {'nbdev', 'IPython', 'ipykernel', 'jupyterlab', 'jupyter_server', 'execnb'}))")
    out = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == '[]', f"segsyn imports course tools at run time: {out.stdout}"
    deps = re.search(r'^dependencies = \[(.*)\]$', (ROOT/'pyproject.toml').read_text(), re.M).group(1)
    assert not re.search(r"'(nbdev|jupyterlab|notebook|ipython)\b", deps, re.I), f"a course tool is a run-time dependency: {deps}"

# ---- real-data checks: third-party samples (../shared/data) that the project's own CI does not have ----
def _samples():
    env = os.environ.get('SEGSYN_SAMPLES')
    for c in ([Path(env)] if env else [p/'shared'/'data' for p in [ROOT, *ROOT.parents]]):
        if c.exists(): return c
    return None

def _users(sample):
    "Notebooks whose real-data checks read `sample`"
    return [p.stem for p in NOTEBOOKS if f"sample_data('{sample}')" in p.read_text()]

def _check_cityscapes(d):
    from segsyn.datasets import Cityscapes
    ds = Cityscapes(d, 'train'); x, m = ds[0]
    assert len(ds) >= 1 and x.shape[-2:] == m.shape and set(m.unique().tolist()) <= set(range(19)) | {255}

def _check_voc(d):
    from segsyn.datasets import ImageMaskFolder, VOC
    ds = ImageMaskFolder(d, d, VOC, image_glob='*_image.png', mask_name=lambda s: s.replace('_image', '_target_rgb') + '.png', rgb_masks=True)
    x, m = ds[0]
    assert len(ds) >= 1 and x.shape[-2:] == m.shape and set(m.unique().tolist()) <= set(range(21)) | {255}

def _check_coco(d):
    from segsyn.datasets import COCOStuff
    ds = COCOStuff(d, 'train'); x, m = ds[0]
    assert len(ds) >= 1 and x.shape[-2:] == m.shape and int(m[m != 255].max()) < 182

REAL = {'cityscapes_sample': _check_cityscapes, 'voc_sample': _check_voc, 'coco_stuff_sample': _check_coco}

@pytest.mark.parametrize('sample', sorted(REAL))
def test_real_data(sample):
    "The real-data samples load through segsyn's readers; reported as skipped (with the notebooks whose checks skipped) when absent"
    root = _samples()
    if root is None or not (root/sample).exists():
        pytest.skip(f"third-party data {sample} not here (../shared/data or $SEGSYN_SAMPLES): the real-data checks of "
                    f"{', '.join(_users(sample)) or 'no notebook'} were skipped; their synthetic-data checks ran")
    REAL[sample](root/sample)


# ---- the course's shape: short export cells, modules of one idea, a docs entry for every public method ----
def _export_cells(nb):
    import json
    for i, c in enumerate(json.loads(nb.read_text())['cells']):
        s = ''.join(c['source'])
        if c['cell_type'] == 'code' and s.lstrip().startswith(('#| export', '#|export')): yield i, s

def _one_class_or_table(src:str) -> bool:
    "The cell defines one class, or one table (a single assignment): it cannot be split at a function boundary"
    import ast
    body = ast.parse('\n'.join(l for l in src.splitlines() if not l.lstrip().startswith('#|'))).body
    return len(body) == 1 and isinstance(body[0], (ast.ClassDef, ast.Assign, ast.AnnAssign))

def test_export_cells_short():
    "No export cell over 30 lines unless it is one class or one table: one symbol (or a tight family) per cell, then its demo and test"
    long = [f"{nb.name} cell {i}: {len(s.splitlines())} lines" for nb in NOTEBOOKS for i, s in _export_cells(nb)
            if len(s.splitlines()) > 30 and not _one_class_or_table(s)]
    assert not long, "split these export cells: " + '; '.join(long)

def test_modules_small():
    "Each module holds one idea: about 400 lines at most"
    big = [f"{p.name}: {n}" for p in sorted((ROOT/'segsyn').glob('*.py')) if p.name != '_modidx.py'
           and (n := len(p.read_text().splitlines())) > 420]
    assert not big, f"split these modules (one notebook, one idea): {big}"

def test_public_methods_documented():
    "Every public method of every exported class has an entry in nbdev's index (so the docs show it)"
    import importlib, inspect
    from segsyn._modidx import d
    syms = {k for m in d['syms'].values() for k in m}
    missing = []
    for modname in d['syms']:
        mod = importlib.import_module(modname)
        for cname in getattr(mod, '__all__', []):
            cls = getattr(mod, cname, None)
            if not inspect.isclass(cls) or not cls.__module__.startswith('segsyn'): continue
            for name, f in vars(cls).items():
                f = getattr(f, '__func__', f)
                if name.startswith('_') or not callable(f) or not getattr(f, '__module__', '').startswith('segsyn'): continue
                if f"{cls.__module__}.{cls.__qualname__}.{name}" not in syms: missing.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
    assert not missing, f"public methods with no docs entry (define them in the class, or with @patch; not by assignment): {sorted(set(missing))}"

# DESIGN.md's public entry points: users, the docs and outside checks import these from these modules
PUBLIC = {
    'segsyn.labels': 'CITYSCAPES VOC COCO_STUFF', 'segsyn.datasets': 'Cityscapes', 'segsyn.synthetic': 'make_synthetic_streets',
    'segsyn.metrics': 'ConfusionMatrix',
    'segsyn.fcn': 'fcn32_resnet34 fcn8s_vgg16', 'segsyn.unet': 'unet res_unet ssfpn',
    'segsyn.structure': 'writeup_structure_distance',
    'segsyn.deeplab': 'deeplabv3_resnet50 deeplabv3plus_resnet50',
    'segsyn.denseaspp': 'denseaspp121 denseaspp161 load_official_denseaspp',
    'segsyn.spade': 'spade_options SPADEGenerator MultiscaleDiscriminator ConvEncoder preprocess_labels load_official_spade',
    'segsyn.cgan': 'UNetGenerator PatchDiscriminator', 'segsyn.evaluation': 'frechet_distance', 'segsyn.cli': 'main'}

@pytest.mark.parametrize('mod', sorted(PUBLIC))
def test_public_entry_points(mod):
    "Every public entry point imports from the module that defines it, as DESIGN.md lists them (no re-exports, no aliases)"
    import importlib
    m = importlib.import_module(mod)
    missing = [n for n in PUBLIC[mod].split() if not hasattr(m, n)]
    assert not missing, f"{mod} lost {missing}"
    if mod == 'segsyn.labels':
        from segsyn.labels import CITYSCAPES
        import torch
        assert CITYSCAPES.to_train(torch.tensor([[7, 26]])).tolist() == [[0, 13]] and CITYSCAPES.colorize(torch.tensor([[0]])).shape == (3, 1, 1)


def _browser():
    "(webdriver module, Chromium, ChromeDriver) for the studio's browser test, or the reason it cannot run here"
    import shutil
    try: import gradio, selenium.webdriver as webdriver
    except ImportError as e: return f"needs Gradio and Selenium (pip install -e '.[dev]'): {e}"
    chrome = next((shutil.which(n) for n in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(n)), None)
    driver = shutil.which('chromedriver')
    if not (chrome and driver): return "no Chromium and ChromeDriver here (Debian: apt install chromium chromium-driver)"
    return webdriver, chrome, driver

def drive_studio(url:str, shot:str|None=None, other_generator:str|None=None) -> dict:
    "Use the studio page as a person does in headless Chromium: choose a class, paint, upload a non-image, switch"
    import tempfile, time
    webdriver, chrome, driver = _browser()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait
    o = webdriver.ChromeOptions()
    for a in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1400,820',
              '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'):
        o.add_argument(a)
    o.binary_location = chrome
    d = webdriver.Chrome(service=webdriver.ChromeService(driver), options=o)
    try:
        d.get(url)
        wait, text = WebDriverWait(d, 60), lambda i: d.find_element(By.ID, i).text
        def settled(old=None):            # the scores line once the page has answered (each answer times itself)
            wait.until(lambda d: text('scores').startswith('consistency') and text('scores') != old)
            return text('scores')
        def choose(elem, value):
            box = d.find_element(By.CSS_SELECTOR, f'#{elem} input')
            box.click(); box.send_keys(Keys.CONTROL, 'a'); box.send_keys(value); time.sleep(0.5); box.send_keys(Keys.ENTER)
        shown = [settled()]
        idle = lambda: not {'processing', 'queue'} & set(text('canvas').replace(':', ' ').split())
        choose('cls', 'sky'); time.sleep(1); wait.until(lambda d: idle()); time.sleep(1)   # the brush is sky's
        d.find_element(By.CSS_SELECTOR, '#canvas button[aria-label=Brush]').click(); time.sleep(0.5)   # the brush tool
        canvas = d.find_elements(By.CSS_SELECTOR, '#canvas canvas')[-1]
        stroke = ActionChains(d).move_to_element_with_offset(canvas, -100, 40).click_and_hold()
        for _ in range(10): stroke.move_by_offset(20, 0)
        stroke.release().perform()
        shown.append(settled(shown[-1]))
        wait.until(lambda d: idle())
        if shot: time.sleep(1); d.save_screenshot(shot)
        bad = Path(tempfile.mkdtemp())/'holiday.png'
        bad.write_text('not an image')
        d.find_elements(By.CSS_SELECTOR, 'input[type=file]')[-1].send_keys(str(bad))
        said = lambda old: text('message').startswith('⚠️') and text('message') != old   # a new message, settled
        wait.until(lambda d: said('')); messages = [text('message')]
        if other_generator:
            choose('generator', other_generator)
            wait.until(lambda d: said(messages[0])); messages.append(text('message'))
        return dict(scores=shown, messages=messages, browser=d.capabilities.get('browserVersion'))
    except Exception:
        d.save_screenshot(str(Path(tempfile.gettempdir())/'segsyn-studio-failed.png')); raise   # what the page showed
    finally: d.quit()

def test_studio_in_browser(tmp_path):
    "The studio as a person uses it (10d_studio): `segsyn studio` served, then painted and fed bad input in Chromium"
    import socket, subprocess, sys, time
    if isinstance(b := _browser(), str): pytest.skip(b)
    from segsyn.spade import SPADEGenerator, spade_options
    from segsyn.spade_training import save_generator
    from segsyn.evaluation import build_segmenter, save_segmenter
    from segsyn.labels import CITYSCAPES_34
    small = dict(ngf=4, spade_hidden=8, crop_size=128, aspect_ratio=2., num_upsampling_layers='normal')
    demo = tmp_path/'demo'; demo.mkdir()                              # a demo-like folder: the pair, untrained
    save_generator(SPADEGenerator(spade_options('cityscapes', **small)), demo/'generator.pt', CITYSCAPES_34)
    save_segmenter(build_segmenter('unet', 19, base=4), demo/'segmenter.pt', train_size=(64, 128))
    save_generator(SPADEGenerator(spade_options('coco', **small)), tmp_path/'coco.pt')     # another label space
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    p = subprocess.Popen([sys.executable, '-m', 'segsyn.cli', 'studio', '--generator', str(demo), '--generator',
                          str(tmp_path/'coco.pt'), '--port', str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, env={**os.environ, 'SEGSYN_PROFILE': 'ci'})
    try:
        line = p.stdout.readline()
        assert line.startswith('segsyn studio: open http://127.0.0.1:'), line + p.stdout.read()
        r = drive_studio(line.split()[3], other_generator=str(tmp_path/'coco.pt'))
    finally: p.terminate(); p.wait(30)
    assert len(set(r['scores'])) == 2, r                            # the stroke was answered: drawn and read again
    assert r['messages'][0].startswith('⚠️ holiday.png is not an image'), r['messages']
    assert 'COCO-Stuff' in r['messages'][1] and 'Cityscapes' in r['messages'][1], r['messages']
    print(f"Chromium {r['browser']}: {r['scores']}")
