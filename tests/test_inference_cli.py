"""The `predict` command run as a user would: partial failure, Kaggle output, refused pickles, no nbdev. In this process
where that shows the same (the `cli` fixture, `predict` itself); in a fresh one for a pickle refused there and for
a predictor that must work without nbdev."""
import hashlib, json, pickle, shutil, subprocess, sys
from pathlib import Path

import pandas as pd
import pytest

from hpa_fastai import cli
from hpa_fastai.core import CLASS_NAMES
from hpa_fastai.data import HPA_STATS
from hpa_fastai.features import FeatureNormaliser, extract_features
from hpa_fastai.artifact import CONFIG_FILE, WEIGHTS_FILE, export_model
from hpa_fastai.cli import predict
from hpa_fastai.model import hpa_model
from hpa_fastai.synth import make_synthetic_dataset
from conftest import run_main

@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "A synthetic dataset with a test folder, and an (untrained) fused model exported beside it."
    tmp = tmp_path_factory.mktemp('inference')
    data = make_synthetic_dataset(tmp/'synth', n=6, size=64, seed=1, n_test=6, progress=False)
    norm = FeatureNormaliser.fit(extract_features(data, n_workers=1, progress=False))
    model = hpa_model('resnet18', pretrained=False)
    art = export_model(tmp/'model', model, 32, HPA_STATS, normaliser=norm, thresholds={'half': 0.5, 'low': 0.2}, default_threshold='low')
    return tmp, data, art

def py(code:str, *args):
    "Run `code` in a fresh Python with `args` as sys.argv[1:]."
    return subprocess.run([sys.executable, '-c', code, *map(str, args)], capture_output=True, text=True, timeout=600)

PREDICT = "import sys; from hpa_fastai.cli import predict; from pathlib import Path; a = sys.argv[1:]; " \
          "sys.exit(predict(Path(a[0]), Path(a[1]), Path(a[2]), submission=Path(a[3]) if len(a) > 3 else None))"

def test_partial_failure(setup, capsys):
    tmp, data, art = setup
    broken = Path(shutil.copytree(data/'test', tmp/'broken'))
    ids = pd.read_csv(data/'sample_submission.csv')['Id'].tolist()
    (broken/f"{ids[1]}_green.png").write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)  # a header, then nothing
    (broken/f"{ids[4]}_red.png").unlink()
    capsys.readouterr()
    rc, err = predict(art, broken, tmp/'out'/'preds.csv', submission=data/'sample_submission.csv'), capsys.readouterr().err
    assert rc == 1, err
    assert f"FAILED {ids[1]}" in err and f"{ids[1]}_green.png" in err
    assert f"FAILED {ids[4]}" in err and 'missing red' in err
    assert '2 sample(s) failed' in err and 'predicting' in err  # summary and progress bar
    preds = pd.read_csv(tmp/'out'/'preds.csv', dtype={'Predicted': str}, keep_default_na=False)
    assert sorted(preds['Id']) == sorted(set(ids) - {ids[1], ids[4]})
    assert list(preds.columns) == ['Id', 'Predicted', 'names', *CLASS_NAMES]
    sub = pd.read_csv(tmp/'out'/'submission.csv', dtype=str, keep_default_na=False)
    assert sub['Id'].tolist() == ids and sub['Predicted'][1] == sub['Predicted'][4] == ''
    assert (sub.set_index('Id').loc[preds['Id'], 'Predicted'].to_numpy() == preds['Predicted'].to_numpy()).all()

def test_clean_run_and_errors(setup, capsys):
    tmp, data, art = setup
    assert predict(art, data/'test', tmp/'clean.csv', tta=True, threshold='0.3') == 0
    assert len(pd.read_csv(tmp/'clean.csv')) == 6 and 'wrote predictions for 6' in capsys.readouterr().out
    assert predict(art, tmp/'nowhere', tmp/'x.csv') == 2
    assert 'Image folder not found' in capsys.readouterr().err
    assert predict(art, data/'test', tmp/'x.csv', submission=tmp/'no_sample.csv') == 2
    assert 'Sample submission not found' in capsys.readouterr().err
    assert predict(art, data/'test', tmp/'x.csv', threshold='best') == 2
    assert "Unknown threshold set 'best'" in capsys.readouterr().err

class _Payload:
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))

def test_pickled_artifact_never_runs(setup, capsys):
    "Pickles in the artifact's place are refused, in this process and in a fresh one, and their code never runs."
    tmp, data, art = setup
    marker = tmp/'marker'
    bad = Path(shutil.copytree(art, tmp/'evil'))
    (bad/WEIGHTS_FILE).write_bytes(pickle.dumps(_Payload(marker)))
    assert predict(bad, data/'test', tmp/'x.csv') == 2 and 'SHA-256' in capsys.readouterr().err
    cfg = json.loads((bad/CONFIG_FILE).read_text())
    cfg['weights']['sha256'] = hashlib.sha256((bad/WEIGHTS_FILE).read_bytes()).hexdigest()
    (bad/CONFIG_FILE).write_text(json.dumps(cfg))
    r = py(PREDICT, bad, data/'test', tmp/'x.csv')
    assert r.returncode == 2 and 'not a safetensors file' in r.stderr
    (bad/CONFIG_FILE).unlink(); (bad/WEIGHTS_FILE).rename(bad/'export.pkl')
    assert predict(bad, data/'test', tmp/'x.csv') == 2 and 'export.pkl' in capsys.readouterr().err
    assert predict(bad/'export.pkl', data/'test', tmp/'x.csv') == 2 and 'runs code' in capsys.readouterr().err
    assert not marker.exists()

def test_predictor_needs_no_nbdev(setup):
    "The predictor imports and runs with nbdev, execnb and IPython made unimportable."
    tmp, data, art = setup
    code = ("import sys; sys.modules.update(nbdev=None, execnb=None, IPython=None); "
            "from hpa_fastai.predict import HPAPredictor; p = HPAPredictor.load(sys.argv[1]); "
            "df = p.predict_folder(sys.argv[2], tta=True); print(len(df), p.default_threshold, "
            "sorted(m for m, v in sys.modules.items() if v is not None and m.split('.')[0] in ('nbdev', 'execnb', 'IPython')))")
    r = py(code, art, data/'test')
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ['6', 'low', '[]']

def test_command_line_parsing(setup):
    "The parser that `hpa-fastai predict` builds from `predict`'s signature and docments."
    from fastcore.script import anno_parser
    tmp, data, art = setup
    p = anno_parser(predict, prog='hpa-fastai predict')
    a = vars(p.parse_args([str(art), str(data/'test'), '--out', 'p.csv', '--tta', '--submission', 's.csv', '--threshold', 'global']))
    assert a['tta'] is True and a['at_least_one'] is False and a['submission'] == Path('s.csv') and a['threshold'] == 'global'
    assert 'Average over the 8 dihedral views' in p.format_help()

@pytest.mark.skipif('predict' not in getattr(cli, 'COMMANDS', {}), reason='predict is not registered in hpa_fastai.cli yet')
def test_predict_command(setup, capsys):
    "`hpa-fastai predict` as registered in `cli.COMMANDS` (the installed entry point itself: test_cli.py)."
    tmp, data, art = setup
    r = run_main(capsys, 'predict', art, data/'test', '--out', tmp/'cmd.csv', '--tta', '--threshold', 'half',
                '--submission', data/'sample_submission.csv', '--submission-out', tmp/'cmd_sub.csv')
    assert r.returncode == 0, r.stderr
    assert len(pd.read_csv(tmp/'cmd.csv')) == 6 and 'predicting' in r.stderr
    assert pd.read_csv(tmp/'cmd_sub.csv')['Id'].tolist() == pd.read_csv(data/'sample_submission.csv')['Id'].tolist()

def test_main_dispatch(setup, monkeypatch, capsys):
    "`hpa-fastai predict` through `cli.main`, with `predict` registered as the lead registers it."
    tmp, data, art = setup
    monkeypatch.setitem(cli.COMMANDS, 'predict', predict)
    assert cli.main(['predict', str(art), str(data/'test'), '--out', str(tmp/'main.csv'), '--at-least-one', '--quiet']) == 0
    assert pd.read_csv(tmp/'main.csv', dtype={'Predicted': str}, keep_default_na=False)['Predicted'].str.len().min() > 0
    assert cli.main(['predict', str(tmp/'nowhere'), str(data/'test')]) == 2
    assert 'Model folder not found' in capsys.readouterr().err
