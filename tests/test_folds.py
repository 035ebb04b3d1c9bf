"""An ensemble folder (K-fold members) through `hpa-fastai predict`: `cli.main` loads it with `HPAPredictor.load`."""
import json, shutil

import numpy as np
import pandas as pd
import pytest
import torch

from hpa_fastai import cli
from hpa_fastai.artifact import WEIGHTS_FILE, export_ensemble, export_model
from hpa_fastai.core import CLASS_NAMES
from hpa_fastai.data import HPA_STATS
from hpa_fastai.features import FeatureNormaliser, extract_features
from hpa_fastai.model import hpa_model
from hpa_fastai.predict import EnsemblePredictor, HPAPredictor
from hpa_fastai.synth import make_synthetic_dataset

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "A synthetic test folder and an ensemble of two (untrained) fused members with different weights and normalisers."
    tmp = tmp_path_factory.mktemp('folds')
    data = make_synthetic_dataset(tmp/'synth', n=8, size=64, seed=1, n_test=5, progress=False)
    feats = extract_features(data, n_workers=1, progress=False)
    ens = tmp/'ensemble'
    for k in range(2):
        torch.manual_seed(k)
        norm = FeatureNormaliser.fit(feats.iloc[k * 4:(k + 1) * 4 + 2])
        export_model(ens/f'fold-{k}', hpa_model('resnet_tiny', pretrained=False), 32, HPA_STATS, normaliser=norm)
    export_ensemble(ens, ['fold-0', 'fold-1'], {'half': 0.5, 'low': 0.3}, default_threshold='low')
    return tmp, data, ens

def test_cli_predicts_with_the_ensemble(setup, capsys):
    tmp, data, ens = setup
    assert isinstance(HPAPredictor.load(ens), EnsemblePredictor)
    assert cli.main(['predict', str(ens), str(data/'test'), '--out', str(tmp/'ens.csv'), '--tta', '--quiet']) == 0
    assert 'wrote predictions for 5' in capsys.readouterr().out
    got = pd.read_csv(tmp/'ens.csv', index_col='Id', keep_default_na=False)
    for k in range(2):
        assert cli.main(['predict', str(ens/f'fold-{k}'), str(data/'test'), '--out', str(tmp/f'm{k}.csv'), '--tta', '--quiet']) == 0
    each = [pd.read_csv(tmp/f'm{k}.csv', index_col='Id').loc[got.index, list(CLASS_NAMES)].to_numpy() for k in range(2)]
    assert np.abs(each[0] - each[1]).max() > 1e-4
    np.testing.assert_allclose(got[list(CLASS_NAMES)].to_numpy(), np.mean(each, 0), atol=1e-6)
    want = [' '.join(map(str, np.flatnonzero(r > 0.3))) for r in got[list(CLASS_NAMES)].to_numpy()]
    assert got['Predicted'].astype(str).tolist() == want  # the ensemble's default set ('low')

def test_cli_refuses_a_damaged_member(setup, capsys):
    tmp, data, ens = setup
    bad = shutil.copytree(ens, tmp/'bad')
    w = bad/'fold-1'/WEIGHTS_FILE; b = bytearray(w.read_bytes()); b[-5] ^= 0xFF; w.write_bytes(bytes(b))
    assert cli.main(['predict', str(bad), str(data/'test'), '--out', str(tmp/'bad.csv'), '--quiet']) == 2
    assert f"fold-1/{WEIGHTS_FILE}" in capsys.readouterr().err and not (tmp/'bad.csv').exists()
    shutil.rmtree(bad/'fold-0')
    assert cli.main(['predict', str(bad), str(data/'test'), '--out', str(tmp/'bad.csv'), '--quiet']) == 2
    assert 'fold-0/config.json is missing' in capsys.readouterr().err

def test_ensemble_config_refuses_paths_out_of_the_folder(setup):
    tmp, data, ens = setup
    odd = shutil.copytree(ens, tmp/'odd')
    cfg = json.loads((odd/'config.json').read_text()); cfg['members'][1]['path'] = '../ensemble/fold-1'
    (odd/'config.json').write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match='sub-folder names'): HPAPredictor.load(odd)
