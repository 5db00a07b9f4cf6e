#!/usr/bin/env python
"""Refresh what the notebooks show without being run: their committed outputs, their result files and the README.

Runs every notebook (or those named) top to bottom in the CI profile, as a reader on a CPU would, and saves its
outputs into the notebook; `#| slow` / `#| gpu` cells (full-size runs) are not run and keep no output. Each chapter
records the results it shows in `nbs/results/<chapter>.json` (`segsyn.core.record_results`); the index, run last,
builds its results tables from those files, and README.md is regenerated from the index.

Saved outputs are made reproducible: everything is seeded, progress bars are off (TQDM_DISABLE), figures are plain
PNG at 72 dpi, and temporary paths are written as `<tmp>`. A notebook's file must stay under 1.5 MB (checked here and
in .ci/run). Run from anywhere:

    python .ci/refresh.py                    # every notebook (about as long as the test suite), then the index and README
    python .ci/refresh.py 02_fcn 09_roundtrip  # only these (then the index and README)
    python .ci/refresh.py --readme           # only time the README's ⏱ examples (run one by one) and rebuild it

Shared models are built once under `$SEGSYN_CACHE` (set it to a folder to keep them between refreshes).
"""
import json, os, re, subprocess, sys, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/'nbs'
MAX_BYTES = 1_500_000
SKIP_FLAGS = {'slow', 'gpu'}

def _directives(src:str) -> set:
    "The words of a cell's leading `#|` lines, e.g. {'slow', 'hide', 'eval:', 'false'}"
    words = set()
    for line in src.splitlines():
        if not line.startswith('#|'): break
        words |= set(line[2:].replace(':', ': ').split())
    return words

def _skip(cell) -> bool:
    "Cells a reader's CPU run leaves alone: markdown, full-size (`slow`/`gpu`) and `eval: false` cells"
    if cell.cell_type != 'code': return True
    d = _directives(cell.source)
    return bool(d & SKIP_FLAGS) or {'eval:', 'false'} <= d

_TMP = re.compile(r'(/private)?(/tmp|/var/folders/[\w/]+?/T)/[\w.+-]+(/[\w.+-]+)*')

def _scrub(text:str) -> str:
    "Temporary paths become `<tmp>/name` (their last part), the repository's own path `.`"
    text = text.replace(str(ROOT.parent/'shared'), '../shared')           # the samples folder beside the repository
    text = text.replace(str(ROOT) + '/', '').replace(str(ROOT), '.')
    return _TMP.sub(lambda m: '<tmp>/' + m[0].rstrip('/').split('/')[-1], text)

def _clean_outputs(cell):
    for o in cell.get('outputs', []):
        if 'text' in o: o['text'] = _scrub(''.join(o['text']) if isinstance(o['text'], list) else o['text'])
        for k, v in o.get('data', {}).items():
            if k.startswith('text/'): o['data'][k] = _scrub(''.join(v) if isinstance(v, list) else v)

def _stamp_runtime(nb, secs:float, reused:int):
    "Write the chapter's measured run time on its opening paragraph's ⏱ line (and the fits it took from the cache)"
    from readme import duration                   # .ci/, this script's folder
    t = duration(secs)
    took = (f", reusing {reused} model{'s' * (reused > 1)} that earlier chapters trained (`$SEGSYN_CACHE`, as the tests "
            "do; run alone it trains them too, which takes longer)") if reused else ''
    for c in nb.cells[:4]:
        if c.cell_type == 'markdown':
            c.source = re.sub(r'^⏱.*$', f"⏱ *Runs in {t} on one CPU core in the CI profile{took} — measured by "
                              "`.ci/refresh.py`. On a GPU it picks the full profile: the papers' sizes.*", c.source, flags=re.M)

def run_one(path:Path):
    "Run one notebook in this process and write it back with its outputs (called in a fresh subprocess per notebook)"
    from fastcore.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    nb = read_nb(path)
    for c in nb.cells:
        if c.cell_type == 'code': c.outputs, c.execution_count = [], None
    sh = CaptureShell(path, mpl_format='png')
    sh.run_cell("import matplotlib as _mpl; _mpl.rcParams.update({'figure.dpi': 72, 'savefig.dpi': 72})")
    t0 = time.time()
    with working_directory(path.parent): sh.run_all(nb, exc_stop=True, preproc=_skip)
    import segsyn.core
    _stamp_runtime(nb, time.time() - t0, sum(n.startswith('fit-') for n in segsyn.core.REUSED))
    for c in nb.cells: _clean_outputs(c)
    write_nb(nb, path)

def refresh(path:Path, env:dict) -> tuple:
    "Run `path` in a subprocess; (name, ok, message)"
    r = subprocess.run([sys.executable, __file__, '--one', str(path)], env=env, capture_output=True, text=True)
    return path.stem, r.returncode == 0, (r.stdout + r.stderr).strip()[-3000:]

def time_readme(env:dict):
    "Run the index's ⏱ examples one after another in one folder (as a reader would) and write their measured times"
    sys.path.insert(0, str(ROOT/'.ci'))
    import readme
    from fastcore.nbio import read_nb, write_nb
    env = {k: v for k, v in env.items() if k not in ('SEGSYN_CACHE', 'SEGSYN_RESULTS', 'OMP_NUM_THREADS')}   # nothing reused
    nb, times = read_nb(NBS/'index.ipynb'), {}
    with tempfile.TemporaryDirectory(prefix='segsyn-readme.') as d:
        for c in nb.cells:
            if c.cell_type != 'markdown': continue
            for kind, code, _ in readme.timed_blocks(c.source):
                rc, secs, out = readme.run_block(kind, code, Path(d), env)
                if rc: sys.exit(f"refresh: a README example failed:\n{code}\n{out}")
                times[code] = readme.stated_time(secs)
                print(f"⏱ {times[code]:>20}  {code.strip().splitlines()[-1][:90]}", flush=True)
            c.source = readme.stamp(c.source, times)
    write_nb(nb, NBS/'index.ipynb')

def main(names:list, readme_only:bool=False):
    env = {**os.environ, 'SEGSYN_PROFILE': 'ci', 'SEGSYN_FLAGS': '', 'TQDM_DISABLE': '1', 'MPLBACKEND': 'Agg',
           'SEGSYN_RESULTS': str(NBS/'results'), 'PYTHONHASHSEED': '0'}
    if readme_only:
        time_readme(env)
        subprocess.run(['nbdev-clean'], cwd=ROOT, check=True)
        return subprocess.run([sys.executable, str(ROOT/'.ci/readme.py')], cwd=ROOT, check=True)
    tmp_cache = None
    if not env.get('SEGSYN_CACHE'): tmp_cache = tempfile.TemporaryDirectory(prefix='segsyn-refresh-cache.'); env['SEGSYN_CACHE'] = tmp_cache.name
    nbs = [NBS/f'{n.removesuffix(".ipynb")}.ipynb' for n in names] if names else sorted(NBS.glob('[0-9]*.ipynb'))
    missing = [str(p) for p in nbs if not p.exists()]
    if missing: sys.exit(f"refresh: no such notebook: {', '.join(missing)} (give names like 02_fcn)")
    (NBS/'results').mkdir(exist_ok=True)
    failed = []
    jobs = int(os.environ.get('SEGSYN_REFRESH_JOBS', '2'))
    if jobs > 1: env.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // jobs)))   # as the test suite: no two notebooks fight over the cores
    with ThreadPoolExecutor(jobs) as ex:
        for name, ok, msg in ex.map(lambda p: refresh(p, env), [p for p in nbs if p.stem != 'index']):
            print(f"{'ok    ' if ok else 'FAILED'} {name}", flush=True)
            if not ok: failed.append(name); print(msg, file=sys.stderr)
    if failed: sys.exit(f"refresh: {len(failed)} notebook(s) failed: {', '.join(failed)} (their files are unchanged)")
    if not names: time_readme(env)              # the README's examples, timed on cores nothing else uses
    name, ok, msg = refresh(NBS/'index.ipynb', env)                  # last: its tables read the result files
    if not ok: sys.exit(f"refresh: the index failed:\n{msg}")
    subprocess.run(['nbdev-clean'], cwd=ROOT, check=True)
    subprocess.run([sys.executable, str(ROOT/'.ci/readme.py')], cwd=ROOT, check=True)
    big = {p.name: p.stat().st_size for p in NBS.glob('*.ipynb') if p.stat().st_size > MAX_BYTES}
    if big: sys.exit(f"refresh: notebooks over {MAX_BYTES:,} bytes: {big}; make their figures smaller (figsize, fewer panels)")
    print("refreshed; review with `git diff --stat` and commit the notebooks, nbs/results/ and README.md together")

if __name__ == '__main__':
    if sys.argv[1:2] == ['--one']: run_one(Path(sys.argv[2]))
    else: main([a for a in sys.argv[1:] if not a.startswith('-')], readme_only='--readme' in sys.argv)
