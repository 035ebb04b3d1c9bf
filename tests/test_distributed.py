"Data-parallel training on 2 CPU processes (gloo) through `accelerate launch`, as `scripts/ddp_demo.py` does it."
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_two_cpu_processes(tmp_path):
    accelerate = Path(sys.executable).with_name('accelerate')
    # `--multi_gpu` selects Accelerate's torchrun launcher; on a machine without CUDA the processes join over gloo.
    cmd = [str(accelerate), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1',
           '--mixed_precision', 'no', '--dynamo_backend', 'no', str(ROOT/'scripts'/'ddp_demo.py'), str(tmp_path)]
    env = {**os.environ, 'CUDA_VISIBLE_DEVICES': '', 'OMP_NUM_THREADS': '1'}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    recs = [json.loads((tmp_path/f'rank{r}.json').read_text()) for r in (0, 1)]
    assert [r['rank'] for r in recs] == [0, 1] and all(r['world'] == 2 and r['backend'] == 'gloo' for r in recs)
    # each process trained on its own half of every epoch ...
    n_batches = len(recs[0]['batches'])
    assert n_batches == len(recs[1]['batches']) > 0
    assert not set(recs[0]['batches']) & set(recs[1]['batches'])
    # ... and gradients were averaged, so both end with the same weights
    assert abs(recs[0]['weights'] - recs[1]['weights']) < 1e-6 * abs(recs[0]['weights'])
    # both followed rank 0's time budget: 2 epochs (rank 1's own clock would have planned 4)
    assert [r['epochs'] for r in recs] == [2, 2]
    # only rank 0 wrote the history and the checkpoints: one header, one row per epoch
    hist = (tmp_path/'model'/'history.csv').read_text().splitlines()
    assert hist[0].startswith('epoch,train_loss,train_macro_f1') and len(hist) == 3
    ck = tmp_path/'model'/'checkpoints'
    assert (ck/'best.safetensors').exists() and (ck/'last-0002.safetensors').exists() and not list(ck.glob('*.pth'))


def test_train_command_two_processes(tmp_path):
    "The README's data-parallel command: `accelerate launch -m hpa_fastai.cli train` on 2 CPU processes, end to end."
    from hpa_fastai.synth import make_synthetic_dataset
    make_synthetic_dataset(out=tmp_path/'data', n=48, size=64, seed=0, n_workers=1, progress=False)
    accelerate = Path(sys.executable).with_name('accelerate')
    cmd = [str(accelerate), 'launch', '--multi_gpu', '--num_processes', '2', '--num_machines', '1', '--mixed_precision', 'no',
           '--dynamo_backend', 'no', '-m', 'hpa_fastai.cli', 'train', str(tmp_path/'data'), '--out', str(tmp_path/'model'),
           '--epochs', '2', '--size', '32', '--arch', 'resnet_tiny', '--pretrained', 'none', '--workers', '1', '--quiet']
    env = {**os.environ, 'CUDA_VISIBLE_DEVICES': '', 'OMP_NUM_THREADS': '1'}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # one process prepared the data while the other waited, the first found the rate and both trained at it ...
    run = json.loads((tmp_path/'model'/'run.json').read_text())
    assert run['lr'] > 0 and (tmp_path/'model'/'lr_find.png').exists()
    assert (tmp_path/'data'/'features.parquet').exists() and (tmp_path/'data'/'cache_32').is_dir()
    # ... and the first evaluated and exported alone
    metrics = json.loads((tmp_path/'model'/'metrics.json').read_text())
    assert metrics['epochs'] == 2 and 0 <= metrics['valid_macro_f1'] <= 1
    assert len((tmp_path/'model'/'history.csv').read_text().splitlines()) == 3
    assert (tmp_path/'model'/'model.safetensors').exists() and 'valid_macro_f1' in res.stdout
