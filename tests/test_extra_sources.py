"""Training on competition data plus HPA v18 external data (issue 13) with the real material in ../shared/data/hpa: a few
512 px competition samples are the main dataset, the two published v18 JPEG samples an extra source. Skips, saying so,
when the material is absent. Synthetic checks of the same mechanism are in nbs/09_run.ipynb."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hpa_fastai.core import find_hpa_data
from hpa_fastai.data import RGBYCache
from hpa_fastai.decode import open_rgby
from hpa_fastai.run import source_work, train_hpa

HPA = find_hpa_data(Path(__file__).resolve().parents[1])
pytestmark = pytest.mark.skipif(HPA is None, reason="real HPA material not found (../shared/data/hpa or $HPA_DATA): "
                                                    "training with a v18 extra source on real images not checked")


def link_dataset(folder:Path, images:Path, labels:pd.DataFrame) -> Path:
    "A dataset at `folder`: `train.csv` of `labels` and `train/` of symbolic links to their files in `images` (nothing copied)."
    (folder/'train').mkdir(parents=True)
    for sid in labels['Id']:
        for f in images.glob(f"{sid}_*"): (folder/'train'/f.name).symlink_to(f)
    labels[['Id', 'Target']].to_csv(folder/'train.csv', index=False)
    return folder


def test_train_with_v18_extra(tmp_path):
    torch.set_num_threads(1)
    main_labels = pd.read_csv(HPA/'train_sample.csv', dtype=str).head(12)
    main = link_dataset(tmp_path/'main', HPA/'train_sample', main_labels)
    v18_ids = sorted({f.name.rsplit('_', 1)[0] for f in (HPA/'hpav18_jpg').glob('*.jpg')})
    v18 = pd.read_csv(HPA/'HPAv18RBGY_wodpl.csv', dtype=str)
    extra = link_dataset(tmp_path/'hpav18', HPA/'hpav18_jpg', v18[v18['Id'].isin(v18_ids)])
    res = train_hpa(main, tmp_path/'model', extra=[extra], size=64, epochs=1, arch='resnet_tiny', pretrained=False, bs=8, lr=1e-3,
                    tta=False, workers=2, num_workers=0, progress=False, work=tmp_path/'work')
    assert len(v18_ids) == 2 and res.metrics['failed'] == []
    vp = pd.read_csv(tmp_path/'model'/'valid_preds.csv', dtype={'Id': str})
    assert set(vp['source']) == {'main'} and set(vp['Id']) <= set(main_labels['Id']) and len(vp) == res.metrics['n_valid'] > 0
    assert res.metrics['sources'] == {'main': dict(train=12 - len(vp), valid=len(vp)), 'hpav18': dict(train=2, valid=0)}
    assert set(v18_ids) <= set(res.learn.dls.train.items['Id'])
    assert json.loads((tmp_path/'model'/'run.json').read_text())['sources'] == {'main': str(main), 'hpav18': str(extra)}
    cache = RGBYCache(source_work(extra, tmp_path/'work')/'cache_64')  # the JPEGs' own planes reached the cache
    for sid in v18_ids: np.testing.assert_array_equal(cache[sid], open_rgby(extra/'train'/sid, 64))
    assert cache[v18_ids[0]].reshape(4, -1).max(1).min() > 0  # every channel carries signal
