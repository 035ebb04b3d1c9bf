"""`build_cache` on a Dask cluster: a `LocalCluster` build equals the local one bit for bit (failures recorded the same),
its workers import neither torch nor fastai, and a build resumed on the cluster finishes what a local one left.
Multi-process mechanics, so plain pytest beside the notebook (nbs/01_data.ipynb)."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from hpa_fastai.core import CHANNELS
from hpa_fastai.data import build_cache, open_rgby, write_rgby

distributed = pytest.importorskip('distributed')


def make_folder(folder:Path) -> list[str]:
    "PNG samples at 64 px, one RGB-JPEG sample at 96 px (decoded reduced), one corrupt and one missing a channel."
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(7)]
    for sid in ids: write_rgby(folder, sid, rng.integers(0, 256, (4, 64, 64), dtype=np.uint8))
    blur = cv2.GaussianBlur(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), (7, 7), 2)
    for c in CHANNELS: cv2.imwrite(str(folder/f"j0_{c}.jpg"), blur, [cv2.IMWRITE_JPEG_QUALITY, 90])
    write_rgby(folder, 'bad', rng.integers(0, 256, (4, 64, 64), dtype=np.uint8))
    (folder/'bad_green.png').write_bytes(b'\x89PNG not really')
    write_rgby(folder, 'gone', rng.integers(0, 256, (4, 64, 64), dtype=np.uint8))
    (folder/'gone_yellow.png').unlink()
    return ids[:3] + ['bad', 'j0'] + ids[3:] + ['gone']


def same_cache(a:Path, b:Path):
    "Assert caches `a` and `b` hold the same bytes, flags, Ids and failures."
    for f in ('images.npy', 'done.npy', 'ids.txt'): assert (a/f).read_bytes() == (b/f).read_bytes(), f
    fa, fb = (pd.read_csv(p/'failed.csv').sort_values('Id', ignore_index=True) for p in (a, b))
    pd.testing.assert_frame_equal(fa, fb)


@pytest.fixture(scope='module')
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c: yield c


def test_dask_equals_local(tmp_path, cluster):
    src = tmp_path/'src'; src.mkdir(); ids = make_folder(src)
    local = build_cache(src, ids, tmp_path/'local', size=32, n_workers=1, chunk=3, progress=False)
    with distributed.Client(cluster) as client:
        build_cache(src, ids, tmp_path/'client', size=32, chunk=2, progress=False, client=client)
        in_workers = client.run(lambda: sorted({'torch', 'fastai', 'fastcore'} & set(sys.modules)))
    build_cache(src, ids, tmp_path/'address', size=32, chunk=4, progress=False, client=cluster.scheduler_address)
    assert local.done.tolist() == [i not in ('bad', 'gone') for i in ids]
    assert set(local.failed) == {'bad', 'gone'} and 'bad_green.png' in local.failed['bad'] and 'yellow' in local.failed['gone']
    assert local['j0'].shape == (4, 32, 32) and np.array_equal(local['j0'], open_rgby(src/'j0', 32))
    same_cache(tmp_path/'local', tmp_path/'client'); same_cache(tmp_path/'local', tmp_path/'address')
    assert list(in_workers.values()) == [[], []], in_workers  # the workers only decoded: no torch, no fastai


def test_resume_on_cluster(tmp_path, cluster):
    src = tmp_path/'src'; src.mkdir(); ids = make_folder(src)
    build_cache(src, ids, tmp_path/'ref', size=32, n_workers=1, progress=False)
    build_cache(src, ids, tmp_path/'part', size=32, n_workers=1, progress=False)
    d = np.load(tmp_path/'part'/'done.npy', mmap_mode='r+'); d[[0, 4, 6]] = False; d.flush(); del d  # as after an interrupt
    im = np.load(tmp_path/'part'/'images.npy', mmap_mode='r+'); im[[0, 4, 6]] = 0; im.flush(); del im
    with distributed.Client(cluster) as client:
        build_cache(src, ids, tmp_path/'part', size=32, chunk=1, progress=False, client=client)
    same_cache(tmp_path/'ref', tmp_path/'part')
