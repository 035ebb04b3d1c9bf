"""Shared test helpers: `cli` runs `hpa-fastai` in this process (no fresh torch/fastai import per command), `exe` in a
fresh one. Keep a subprocess only where the guarantee needs a process: the installed entry point, a kill, another holder."""
import shutil, subprocess, sys
from pathlib import Path

import pytest

EXE = shutil.which('hpa-fastai') or str(Path(sys.executable).parent/'hpa-fastai')

def run_exe(*args, timeout:int=600, **kwargs) -> subprocess.CompletedProcess:
    "Run the installed `hpa-fastai` command with `args` in a fresh process."
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs)

def run_main(capsys, *args) -> subprocess.CompletedProcess:
    "Run `hpa_fastai.cli.main(args)` in this process; its exit status (argparse's too) and captured output, as `run_exe` gives them."
    from hpa_fastai.cli import main
    capsys.readouterr()  # earlier output is not this command's
    try: rc = main([str(a) for a in args])
    except SystemExit as e: rc = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(['hpa-fastai', *map(str, args)], rc, out, err)

@pytest.fixture
def cli(capsys):
    "`cli(*args)`: the `hpa-fastai` command run in this process, returning a `CompletedProcess` (returncode, stdout, stderr)."
    return lambda *args: run_main(capsys, *args)

@pytest.fixture
def exe():
    "`exe(*args)`: the installed `hpa-fastai` command run in a fresh process."
    return run_exe
