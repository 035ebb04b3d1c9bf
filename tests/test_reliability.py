"""Attacks on the commands as a careless or hostile user would make them, on tiny synthetic data: through `cli.main` in
this process (the `cli` fixture), and through the installed command in a fresh process where the guarantee needs one
(a run killed mid-training, an error line as the user sees it, another process holding a lock)."""
import contextlib, hashlib, io, pickle, shutil, signal, subprocess, sys, time
from pathlib import Path

import pandas as pd
import pytest

from hpa_fastai.synth import make_synthetic_dataset
from hpa_fastai.train import checkpoint_files
from conftest import EXE, run_exe as run

TRAIN = ['--size', '32', '--arch', 'resnet_tiny', '--pretrained', 'none', '--lr', '3e-3', '--bs', '16', '--no-tta',
         '--workers', '1', '--precision', 'none']

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
    "A model folder trained for 2 epochs on `data` (in this process)."
    from hpa_fastai.cli import main
    out, err = data.parent/'model', io.StringIO()
    with contextlib.redirect_stderr(err): rc = main([str(a) for a in ('train', data, '--epochs', '2', '--out', out, '--quiet', *TRAIN)])
    assert rc == 0, err.getvalue()
    return out

def test_planted_pickles_never_run(data, model, tmp_path, cli):
    "Pickles planted under every checkpoint name, old and new, in a model folder are never unpickled by a resumed train."
    out, marker = Path(shutil.copytree(model, tmp_path/'model')), tmp_path/'pwned'
    ck = out/'checkpoints'
    names = [p.name for p in ck.iterdir()] + ['last.pth', 'last_state.pth', 'best.pth']
    for name in names: (ck/name).write_bytes(pickle.dumps(Payload(marker)))
    r = cli('train', data, '--epochs', '3', '--out', out, *TRAIN)
    assert not marker.exists(), 'a planted pickle ran'
    assert r.returncode == 2 and 'Traceback' not in r.stderr, r.stderr  # damaged checkpoints: refused, named
    assert 'error: no readable checkpoint' in r.stderr and 'last-0002.safetensors' in r.stderr
    r = cli('train', data, '--epochs', '1', '--out', out, '--restart', *TRAIN)  # starting over writes good files
    assert r.returncode == 0 and not marker.exists(), r.stderr
    assert not any(p.suffix == '.pth' for p in ck.iterdir() if p.name not in names)

def test_predict_never_overwrites_its_input(data, model, tmp_path, cli):
    "`--out X --submission X` and the default submission name beside the sample are refused; the sample is unchanged."
    out = model
    sample = tmp_path/'d'/'submission.csv'; sample.parent.mkdir()
    shutil.copy(data/'sample_submission.csv', sample); before = sha(sample)
    for args in (['--out', sample, '--submission', sample], ['--out', tmp_path/'d'/'preds.csv', '--submission', sample],
                 ['--out', tmp_path/'d'/'p.csv', '--submission', sample, '--submission-out', tmp_path/'d'/'p.csv']):
        r = cli('predict', out, data/'test', *args)
        assert r.returncode == 2 and r.stderr.count('\n') == 1 and r.stderr.startswith('error:'), r.stderr
        assert sha(sample) == before
    r = cli('predict', out, data/'test', '--out', tmp_path/'d'/'preds.csv', '--submission', sample,
            '--submission-out', tmp_path/'d'/'mine.csv', '--quiet')
    assert r.returncode == 0, r.stderr
    assert sha(sample) == before and len(pd.read_csv(tmp_path/'d'/'mine.csv')) == 4

def hist(out:Path) -> pd.DataFrame: return pd.read_csv(out/'history.csv').drop(columns='time')

def test_seeded_runs_repeat_and_a_killed_run_resumes_to_the_same_history(data, tmp_path, cli):
    "Two runs with one seed give one history; a run of the installed command killed (SIGKILL) mid-training and rerun ends with that history too."
    args = ['--epochs', '3', *TRAIN, '--seed', '7']  # killed once its first checkpoint is written: two epochs to spare
    a, b, k = tmp_path/'a', tmp_path/'b', tmp_path/'killed'
    assert cli('train', data, '--out', a, *args).returncode == 0
    assert cli('train', data, '--out', b, *args).returncode == 0
    pd.testing.assert_frame_equal(hist(a), hist(b))
    p = subprocess.Popen([EXE, 'train', str(data), '--out', str(k), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        try:
            if checkpoint_files(k/'checkpoints'): break  # written atomically, after the epoch's history row
        except OSError: pass  # not there yet
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert not (k/'metrics.json').exists(), 'the kill came too late to test anything'
    assert checkpoint_files(k/'checkpoints') and len(hist(k)) < 3, 'the rerun would not resume anything'
    r = cli('train', data, '--out', k, *args)  # the rerun, in this process, resumes the killed process's checkpoint
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(hist(k), hist(a))

def test_mismatched_resume_is_refused(data, model, tmp_path, cli):
    "Training into a model folder of another run (other size, other data) is refused, naming the difference; --restart starts over."
    out = Path(shutil.copytree(model, tmp_path/'model'))
    before = sha(out/'history.csv')
    r = cli('train', data, '--epochs', '3', '--out', out, *TRAIN[2:], '--size', '48')
    assert r.returncode == 2 and 'size 32 (now 48)' in r.stderr and '--restart' in r.stderr, r.stderr
    other = make_synthetic_dataset(tmp_path/'other', n=40, size=32, seed=9, progress=False)
    r = cli('train', other, '--epochs', '3', '--out', out, *TRAIN)
    assert r.returncode == 2 and 'other data' in r.stderr, r.stderr
    assert sha(out/'history.csv') == before
    r = cli('train', other, '--epochs', '1', '--out', out, *TRAIN, '--restart')
    assert r.returncode == 0 and len(pd.read_csv(out/'history.csv')) == 1, r.stderr

def test_failures_are_retried_once_fixed(tmp_path, cli):
    "A sample whose file was corrupt is reported by cache and features; once the file is replaced, both pick it up."
    d = make_synthetic_dataset(tmp_path/'s', n=6, size=32, seed=4, progress=False)
    sid = pd.read_csv(d/'train.csv')['Id'][2]; f = d/'train'/f'{sid}_blue.png'
    good = f.read_bytes(); f.write_bytes(b'not a png')
    for cmd in (['cache', d, '--size', '32', '--workers', '1'], ['features', d, '--out', d/'f.parquet', '--workers', '1']):
        r = cli(*cmd); assert r.returncode == 1 and f'FAILED {sid}' in r.stderr, r.stderr
    f.write_bytes(good)
    for cmd in (['cache', d, '--size', '32', '--workers', '1'], ['features', d, '--out', d/'f.parquet', '--workers', '1']):
        r = cli(*cmd); assert r.returncode == 0 and 'FAILED' not in r.stderr, r.stderr
    assert '6 samples' in r.stdout, r.stdout

def test_bad_label_files_and_ids(tmp_path, capsys):
    "Empty, header-only and path-like-Id label files are one error line naming the file or Id, exit 2, in every command."
    from hpa_fastai.cli import main
    d = make_synthetic_dataset(tmp_path/'s', n=4, size=32, seed=5, progress=False)
    cases = [('', 'is empty'), ('Id,Target\n', 'lists no samples'), ('Id,Target\n../../etc/x,0\n', "'../../etc/x'"),
             ('Id,Target\n/etc/passwd,0\n', "'/etc/passwd'")]
    (d/'train.csv').write_text(cases[2][0])  # one through the installed command, as a user runs it
    r = run('cache', d, '--size', '32')
    assert r.returncode == 2 and r.stderr.startswith('error: ') and r.stderr.count('\n') == 1 and cases[2][1] in r.stderr, r.stderr
    for body, msg in cases:  # every case and command through the same entry point, in this process
        (d/'train.csv').write_text(body)
        for cmd in (['cache', d, '--size', '32'], ['features', d, '--out', tmp_path/'f.parquet'], ['train', d, *TRAIN]):
            rc, err = main([str(a) for a in cmd]), capsys.readouterr().err
            assert rc == 2 and err.startswith('error: ') and msg in err and 'Traceback' not in err, (cmd, body, err)

def test_work_folder_leaves_the_data_untouched(data, tmp_path, monkeypatch, cli):
    "With --work the cache and features go there and the dataset folder gains nothing; a read-only dataset without it is named."
    d = Path(shutil.copytree(data, tmp_path/'ro'))
    before = sorted(p.relative_to(d) for p in d.rglob('*'))
    r = cli('train', d, '--epochs', '1', '--out', tmp_path/'m', '--work', tmp_path/'work', *TRAIN)
    assert r.returncode == 0, r.stderr
    assert sorted(p.relative_to(d) for p in d.rglob('*')) == before
    assert (tmp_path/'work'/'cache_32').is_dir() and (tmp_path/'work'/'features.parquet').is_file()
    from hpa_fastai import run as run_mod
    monkeypatch.setattr(run_mod.os, 'access', lambda p, mode: False)  # as a read-only copy of the data would answer
    with pytest.raises(Exception, match='read-only.*--work'): run_mod.work_folder(d)

def test_concurrent_runs_on_one_output(tmp_path, cli):
    "While another run holds an output, `features` and `cache` on it say so (exit 2); a killed holder's lock is taken over."
    d = make_synthetic_dataset(tmp_path/'s', n=6, size=32, seed=6, progress=False)
    hold = ("import sys, time; from hpa_fastai.core import OutputLock; "
            "[OutputLock(a).__enter__() for a in sys.argv[1:]]; print('locked', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, '-c', hold, str(d/'f.parquet'), str(d/'cache_32')], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'locked'
    for cmd in (['features', d, '--out', d/'f.parquet', '--workers', '1'], ['cache', d, '--size', '32', '--workers', '1']):
        r = cli(*cmd)
        assert r.returncode == 2 and f'another run (pid {holder.pid})' in r.stderr, r.stderr
    holder.kill(); holder.wait()  # its locks stay behind, stale
    for cmd in (['features', d, '--out', d/'f.parquet', '--workers', '1'], ['cache', d, '--size', '32', '--workers', '1']):
        r = cli(*cmd); assert r.returncode == 0, r.stderr
    assert not (d/'f.parquet.lock').exists() and not (d/'cache_32.lock').exists()
    holder = subprocess.Popen([sys.executable, '-c', hold, str(d/'f.parquet'), str(d/'cache_32')], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'locked'
    for cmd in (['features', d, '--out', d/'f.parquet', '--workers', '1'], ['cache', d, '--size', '32', '--workers', '1']):
        r = cli(*cmd); assert r.returncode == 0, r.stderr  # finished outputs are only read: no lock needed, two runs share them
    holder.kill(); holder.wait()

def test_sample_submission_ids_that_name_paths(data, model, tmp_path, capsys):
    "A sample submission whose Ids name paths is refused, naming them, before anything is read or written."
    from hpa_fastai.cli import main
    sample = tmp_path/'sample.csv'; sample.write_text('Id,Predicted\n../../etc/passwd,0\n')
    rc = main(['predict', str(model), str(data/'test'), '--out', str(tmp_path/'p.csv'), '--submission', str(sample), '--quiet'])
    err = capsys.readouterr().err
    assert rc == 2 and "'../../etc/passwd'" in err and err.count('\n') == 1, err
    assert not (tmp_path/'p.csv').exists()
