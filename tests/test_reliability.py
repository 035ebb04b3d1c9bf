"""Attacks on the commands as a careless or hostile user would make them, through the installed CLI on tiny synthetic data."""
import hashlib, pickle, shutil, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from hpa_fastai.synth import make_synthetic_dataset

EXE = shutil.which('hpa-fastai') or str(Path(sys.executable).parent/'hpa-fastai')
TRAIN = ['--size', '32', '--arch', 'resnet_tiny', '--pretrained', 'none', '--lr', '3e-3', '--bs', '16', '--no-tta',
         '--workers', '1', '--precision', 'none']

def run(*args, timeout=600):
    "Run the `hpa-fastai` command with `args` in a fresh process."
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, timeout=timeout)

def sha(p:Path) -> str: return hashlib.sha256(p.read_bytes()).hexdigest()

class Payload:
    "A pickle that writes a marker file when unpickled."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (Path.write_text, (Path(self.marker), 'code ran'))

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "A tiny synthetic dataset with a test folder."
    return make_synthetic_dataset(tmp_path_factory.mktemp('rel')/'synth', n=48, size=32, seed=3, n_test=4, progress=False)

@pytest.fixture(scope='module')
def model(data):
    "A model folder trained for 2 epochs on `data`."
    out = data.parent/'model'
    r = run('train', data, '--epochs', '2', '--out', out, *TRAIN)
    assert r.returncode == 0, r.stderr
    return out

def test_planted_pickles_never_run(data, model, tmp_path):
    "Pickles planted under every checkpoint name, old and new, in a model folder are never unpickled by a resumed train."
    out, marker = Path(shutil.copytree(model, tmp_path/'model')), tmp_path/'pwned'
    ck = out/'checkpoints'
    names = [p.name for p in ck.iterdir()] + ['last.pth', 'last_state.pth', 'best.pth']
    for name in names: (ck/name).write_bytes(pickle.dumps(Payload(marker)))
    r = run('train', data, '--epochs', '3', '--out', out, *TRAIN)
    assert not marker.exists(), 'a planted pickle ran'
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr  # damaged checkpoints: refused, named
    assert 'error: no readable checkpoint' in r.stderr and 'last-0002.safetensors' in r.stderr
    r = run('train', data, '--epochs', '1', '--out', out, '--restart', *TRAIN)  # starting over writes good files
    assert r.returncode == 0 and not marker.exists(), r.stderr
    assert not any(p.suffix == '.pth' for p in ck.iterdir() if p.name not in names)

def test_predict_never_overwrites_its_input(data, model, tmp_path):
    "`--out X --submission X` and the default submission name beside the sample are refused; the sample is unchanged."
    out = model
    sample = tmp_path/'d'/'submission.csv'; sample.parent.mkdir()
    shutil.copy(data/'sample_submission.csv', sample); before = sha(sample)
    for args in (['--out', sample, '--submission', sample], ['--out', tmp_path/'d'/'preds.csv', '--submission', sample],
                 ['--out', tmp_path/'d'/'p.csv', '--submission', sample, '--submission-out', tmp_path/'d'/'p.csv']):
        r = run('predict', out, data/'test', *args)
        assert r.returncode == 2 and r.stderr.count('\n') == 1 and r.stderr.startswith('error:'), r.stderr
        assert sha(sample) == before
    r = run('predict', out, data/'test', '--out', tmp_path/'d'/'preds.csv', '--submission', sample,
            '--submission-out', tmp_path/'d'/'mine.csv', '--quiet')
    assert r.returncode == 0, r.stderr
    assert sha(sample) == before and len(pd.read_csv(tmp_path/'d'/'mine.csv')) == 4
