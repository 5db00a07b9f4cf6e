"""Write pyproject.toml from settings.ini: `nbdev-migrate-config`, plus the optional extras it does not know.

nbdev 3 reads only pyproject.toml; this project keeps settings.ini as the file to edit. nbdev-migrate-config
writes one extra, `dev` (from `dev_requirements`); every name listed in settings.ini's `extras` gets its own
group here from `NAME_requirements` (e.g. `extras = video`, `video_requirements = av>=12` → `segsyn[video]`).
Run from anywhere: `python .ci/pyproject.py`; .ci/run runs it and fails when pyproject.toml changes.
"""
import configparser, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def extras(ini:Path) -> dict:
    "{name: [requirement, ...]} for every name in settings.ini's `extras`"
    cfg = configparser.ConfigParser(); cfg.read(ini); d = cfg['DEFAULT']
    missing = [n for n in d.get('extras', '').split() if f'{n}_requirements' not in d]
    if missing: sys.exit(f".ci/pyproject.py: settings.ini lists extras {missing} without their NAME_requirements line")
    return {n: d[f'{n}_requirements'].split() for n in d.get('extras', '').split()}

def main():
    subprocess.run(['nbdev-migrate-config', '--path', str(ROOT)], check=True, stdout=subprocess.DEVNULL)
    p = ROOT/'pyproject.toml'; txt = p.read_text()
    head = '[project.optional-dependencies]\n'
    if head not in txt: sys.exit(".ci/pyproject.py: nbdev-migrate-config wrote no [project.optional-dependencies] (is dev_requirements empty?)")
    start = txt.index(head) + len(head); end = txt.index('\n\n', start) + 1      # the table ends at its blank line
    p.write_text(txt[:end] + ''.join(f"{n} = {reqs!r}\n" for n, reqs in extras(ROOT/'settings.ini').items()) + txt[end:])

if __name__ == '__main__': main()
