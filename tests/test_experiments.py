"""`hpa-fastai experiment` run as a user would (through `cli.main`, in this process): a tiny grid from a TOML file,
resumed, with a failing run."""
import pandas as pd
import pytest

from hpa_fastai import cli

CONFIG = '''
name = "tiny"
[data]
source = "synthetic"
n = 48
size = 64
seed = 2
[base]
size = 32
epochs = 2
arch = "resnet_tiny"
pretrained = false
lr = 1e-2
bs = 16
workers = 1
num_workers = 0
progress = false
[[runs]]
name = "baseline"
label = "the base settings"
[[runs]]
name = "image_only"
features = false
tta = false
[[runs]]
name = "broken"
stem_colour = "teal"
'''

needs_command = pytest.mark.skipif('experiment' not in cli.COMMANDS, reason="`hpa-fastai experiment` is not registered in the CLI yet")

@pytest.fixture
def run(capsys):
    "`run(*args)`: `hpa-fastai experiment ARGS` in this process, on one torch thread (as the fresh process had OMP_NUM_THREADS=1)."
    import torch
    from conftest import run_main
    threads = torch.get_num_threads(); torch.set_num_threads(1)
    yield lambda *args: run_main(capsys, 'experiment', *args)
    torch.set_num_threads(threads)

@needs_command
def test_experiment_grid_resumes_and_records_failures(tmp_path, run):
    (tmp_path/'tiny.toml').write_text(CONFIG)
    out = tmp_path/'out'
    r = run(tmp_path/'tiny.toml', '--out', out)
    assert r.returncode == 1, r.stdout + r.stderr  # one run fails, the grid goes on
    res = pd.read_csv(out/'results.csv').set_index('run')
    assert res['status'].to_dict() == {'baseline': 'ok', 'image_only': 'ok', 'broken': 'failed'}
    assert "no option(s) ['stem_colour']" in res.loc['broken', 'error']
    assert res.loc['baseline', ['valid_f1', 'valid_f1_thr', 'valid_f1_tta', 'valid_f1_tta_thr']].notna().all()
    assert pd.isna(res.loc['image_only', 'valid_f1_tta']) and pd.notna(res.loc['image_only', 'valid_f1_thr'])
    for f in ('table1.csv', 'table1.html', 'curves.png'): assert (out/f).is_file()
    assert 'FAILED broken' in r.stderr and 'baseline' in r.stdout
    stamp = (out/'runs'/'baseline'/'model.safetensors').stat().st_mtime_ns
    r2 = run(tmp_path/'tiny.toml', '--out', out, '--runs', 'baseline,image_only')
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert r2.stdout.count('done before, skipped') == 2
    assert (out/'runs'/'baseline'/'model.safetensors').stat().st_mtime_ns == stamp

@needs_command
def test_experiment_bad_config_exits_2(tmp_path, run):
    (tmp_path/'bad.toml').write_text(CONFIG.replace('epochs = 2', 'epoch = 2'))
    r = run(tmp_path/'bad.toml', '--out', tmp_path/'out')
    assert r.returncode == 2 and "unknown train_hpa option(s) ['epoch']" in r.stderr
    assert run(tmp_path/'missing.toml').returncode == 2
