"""The `hpa-fastai` command, run as a user would: help, synth, cache with a corrupt sample, demo. The installed entry point
runs in a fresh process (help, one synth); the rest through `cli.main` in this process (the `cli` fixture)."""
import numpy as np
import pandas as pd

from conftest import run_exe

def ok(r):
    "`r` when its exit status is 0, else an error with its output."
    if r.returncode: raise AssertionError(f"exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r

def test_help_lists_subcommands(cli):
    r = ok(run_exe('--help'))  # the installed command starts and lists its subcommands
    for sub in ('synth', 'cache', 'features', 'train', 'predict', 'experiment', 'demo'): assert sub in r.stderr
    assert '--size' in ok(cli('synth', '--help')).stdout
    assert cli('nonsense').returncode == 2

def test_synth_is_deterministic(tmp_path, cli):
    "One dataset written by the installed command in a fresh process, one in this process: the same bytes."
    ok(run_exe('synth', '--out', tmp_path/'a', '--n', 6, '--size', 64, '--seed', 3))
    ok(cli('synth', '--out', tmp_path/'b', '--n', 6, '--size', 64, '--seed', 3))
    la, lb = (pd.read_csv(tmp_path/d/'train.csv') for d in ('a', 'b'))
    pd.testing.assert_frame_equal(la, lb)
    for f in sorted((tmp_path/'a'/'train').iterdir()): assert f.read_bytes() == (tmp_path/'b'/'train'/f.name).read_bytes()

def test_cache_keeps_going_and_reports_failures(tmp_path, cli):
    ok(cli('synth', '--out', tmp_path/'s', '--n', 10, '--size', 64, '--seed', 0))
    ids = pd.read_csv(tmp_path/'s'/'train.csv')['Id']
    (tmp_path/'s'/'train'/f"{ids[2]}_yellow.png").write_bytes(b'\x89PNG broken')
    (tmp_path/'s'/'train'/f"{ids[5]}_blue.png").unlink()
    r = cli('cache', tmp_path/'s', '--size', 32, '--workers', 2)
    assert r.returncode == 1
    assert ids[2] in r.stderr and f"{ids[2]}_yellow.png" in r.stderr and ids[5] in r.stderr and 'missing blue' in r.stderr
    done = np.load(tmp_path/'s'/'cache_32'/'done.npy')
    assert done.sum() == 8 and not done[2] and not done[5]
    failed = pd.read_csv(tmp_path/'s'/'cache_32'/'failed.csv')
    assert sorted(failed['Id']) == sorted([ids[2], ids[5]])

def test_bad_labels_name_the_problem(tmp_path, cli):
    ok(cli('synth', '--out', tmp_path/'s', '--n', 4, '--size', 32, '--seed', 0))
    df = pd.read_csv(tmp_path/'s'/'train.csv'); df.loc[1, 'Target'] = '3 31'
    df.to_csv(tmp_path/'s'/'train.csv', index=False)
    r = cli('cache', tmp_path/'s', '--size', 16)
    assert r.returncode == 2 and 'Class id 31' in r.stderr and df['Id'][1] in r.stderr

def test_demo_main_job(tmp_path, cli):
    args = ('--out', tmp_path/'run', '--n', 48, '--n-test', 8, '--size', 32, '--epochs', 2, '--workers', 2)
    r = ok(cli('demo', *args))
    assert 'Nucleoplasm' in r.stdout and 'gallery' in r.stdout and 'valid macro-F1' in r.stdout
    assert (tmp_path/'run'/'gallery.png').stat().st_size > 10_000
    summ = pd.read_csv(tmp_path/'run'/'class_summary.csv')
    assert len(summ) == 28 and summ['all'].sum() >= 48
    for f in ('config.json', 'model.safetensors', 'history.csv', 'curves.png'): assert (tmp_path/'run'/'model'/f).exists()
    assert 'report:' in r.stdout and (tmp_path/'run'/'model'/'report'/'report.html').exists()
    sub = pd.read_csv(tmp_path/'run'/'submission.csv', keep_default_na=False)
    assert list(sub.columns) == ['Id', 'Predicted'] and len(sub) == 8
    assert list(sub['Id']) == list(pd.read_csv(tmp_path/'run'/'synth'/'sample_submission.csv')['Id'])
    r2 = ok(cli('demo', *args))
    assert 'reusing' in r2.stdout

def test_demo_plans_to_its_budget(tmp_path, cli):
    "Without --epochs the demo plans its epochs to --minutes and re-plans them as it trains; a rerun of the finished run trains no more."
    from hpa_fastai.train import find_checkpoint
    args = ('--out', tmp_path/'run', '--n', 48, '--n-test', 8, '--size', 32, '--minutes', 1, '--workers', 2)
    r = ok(cli('demo', *args))
    assert 'plan:' in r.stdout and '(budget 1 min)' in r.stdout
    n = len(pd.read_csv(tmp_path/'run'/'model'/'history.csv'))
    assert 3 <= n <= 32  # at least the minimum, at most the demo's epochs
    state = find_checkpoint(tmp_path/'run'/'model'/'checkpoints', 'last')[1]
    assert state['epoch'] == state['n_epoch'] == n  # the checkpoint says the budgeted run ended there
    ok(cli('demo', *args))
    assert len(pd.read_csv(tmp_path/'run'/'model'/'history.csv')) == n

TINY = ['--size', '32', '--epochs', '1', '--arch', 'resnet_tiny', '--pretrained', 'none', '--bs', '8', '--workers', '1',
        '--num-workers', '0', '--lr', '0.001', '--quiet']

def test_train_folds_resumes_and_predicts(tmp_path, cli):
    "`train --folds 2` trains both folds and exports the ensemble; a rerun trains nothing; `predict` uses the ensemble."
    from hpa_fastai.synth import make_synthetic_dataset
    data = make_synthetic_dataset(tmp_path/'s', n=24, size=64, seed=3, n_test=4, progress=False)
    r = cli('train', data, '--out', tmp_path/'ens', '--folds', '2', '--no-tta', *TINY)
    assert r.returncode == 0, r.stderr
    assert 'folds trained: [0, 1]' in r.stdout and (tmp_path/'ens'/'config.json').is_file() and (tmp_path/'ens'/'oof_preds.csv').is_file()
    assert len(pd.read_csv(tmp_path/'ens'/'oof_preds.csv')) == 24  # every sample once, out of fold
    r = cli('train', data, '--out', tmp_path/'ens', '--folds', '2', '--no-tta', *TINY)
    assert r.returncode == 0 and 'already finished: [0, 1]' in r.stdout, r.stdout + r.stderr
    r = cli('predict', tmp_path/'ens', data/'test', '--out', tmp_path/'preds.csv')
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp_path/'preds.csv')) == 4

def test_train_cells(tmp_path, cli):
    "`train --cells` cuts the cells into a crop dataset and trains the cell-level model on it, split by image."
    from hpa_fastai.synth import make_synthetic_dataset
    data = make_synthetic_dataset(tmp_path/'s', n=10, size=128, seed=4, progress=False)
    r = cli('train', data, '--out', tmp_path/'cm', '--cells', '--crops', tmp_path/'crops', '--image-only', '--no-tta', *TINY)
    assert r.returncode == 0, r.stderr
    assert 'cell crops:' in r.stdout and (tmp_path/'cm'/'config.json').is_file()
    crops = pd.read_csv(tmp_path/'crops'/'train.csv')
    assert crops['Source'].nunique() == 10 and len(crops) > 10
    r = cli('train', data, '--folds', '2', '--cells', *TINY)
    assert r.returncode == 2 and 'cannot be combined' in r.stderr
