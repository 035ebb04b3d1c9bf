"""`extract_features` at scale: Dask equals local, a killed run resumes with nothing lost or duplicated, corrupt
samples are recorded. Multi-process mechanics, so plain pytest beside the notebook (nbs/03_features.ipynb)."""
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hpa_fastai.features import (FEATURE_NAMES, SYNTHETIC_CLASSES, extract_features, read_features, save_rgby,
                                 synthetic_cells)

ROOT = Path(__file__).resolve().parents[1]


def make_dataset(folder:Path, n:int) -> list[str]:
    "Write `n` synthetic samples and a train.csv into `folder`; return their Ids."
    ids = [f"s{i:03d}" for i in range(n)]
    for i, sid in enumerate(ids): save_rgby(synthetic_cells(SYNTHETIC_CLASSES[i % 3], i, size=256), folder/'train'/sid)
    pd.DataFrame({'Id': ids, 'Target': [('0', '25', '26')[i % 3] for i in range(n)]}).to_csv(folder/'train.csv', index=False)
    return ids


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp('hpa')
    return folder, make_dataset(folder, 12)


def test_dask_equals_local(dataset):
    distributed = pytest.importorskip('distributed')
    folder, ids = dataset
    local = extract_features(folder, n_workers=2, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            on_client = extract_features(folder, client=client, chunk=3, progress=False)
        by_address = extract_features(folder, client=cluster.scheduler_address, chunk=5, progress=False)
    assert list(local.index) == ids and list(local.columns) == list(FEATURE_NAMES)
    pd.testing.assert_frame_equal(on_client, local)
    pd.testing.assert_frame_equal(by_address, local)


def test_corrupt_sample_is_recorded(dataset, tmp_path):
    folder, ids = dataset
    img = tmp_path/'imgs'; img.mkdir()
    for sid in ids[:3]:
        for c in ('red', 'green', 'blue', 'yellow'): shutil.copy(folder/'train'/f"{sid}_{c}.png", img)
    (img/f"{ids[1]}_blue.png").write_bytes(b'\x89PNG garbage')
    out = tmp_path/'f.parquet'
    df = extract_features(img, out, n_workers=2, chunk=1, progress=False)
    assert list(df.index) == [ids[0], ids[2]]
    assert 'corrupt' in df.attrs['failed'][ids[1]]
    stored = read_features(out).set_index('Id')
    assert sorted(stored.index) == ids[:3]
    assert stored['error'].notna().tolist() == [i == ids[1] for i in stored.index]


def test_resume_after_kill(tmp_path):
    folder = tmp_path/'hpa'
    ids = make_dataset(folder, 40)
    out = tmp_path/'features.parquet'
    parts = out.with_name(out.name + '.parts')
    script = textwrap.dedent(f"""
        import time, hpa_fastai.features as F
        slow = F.features_chunk
        def chunk(stems, settings=None):
            time.sleep(0.05); return slow(stems, settings)
        F.features_chunk = chunk
        F.extract_features({str(folder)!r}, {str(out)!r}, n_workers=1, chunk=1, progress=False)
    """)
    env = {**os.environ, 'PYTHONPATH': f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, '-c', script], env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob('part-*.parquet'))) < 3 and proc.poll() is None: time.sleep(0.01)
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert not out.exists(), "the run finished before it could be killed"
    n_done = len(read_features(out))
    assert 3 <= n_done < len(ids)
    resumed = extract_features(folder, out, n_workers=2, chunk=4, progress=False)
    fresh = extract_features(folder, n_workers=2, progress=False)
    pd.testing.assert_frame_equal(resumed, fresh)
    stored = read_features(out)
    assert sorted(stored['Id']) == ids and stored['Id'].is_unique and not parts.exists()
    assert np.isfinite(stored[list(FEATURE_NAMES)].to_numpy()).all()
