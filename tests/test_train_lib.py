"""Training helpers called from the installed library, outside the notebooks (whose hidden cells import more)."""
import pandas as pd

from hpa_fastai.core import HPALayout
from hpa_fastai.data import hpa_dataloaders
from hpa_fastai.model import hpa_learner
from hpa_fastai.synth import make_synthetic_dataset
from hpa_fastai.train import StopAfter, checkpoint_files, fit_resumable, hpa_metrics

def test_stop_after_interrupts_a_fit(tmp_path):
    "`StopAfter` cancels the fit after its epoch: one history row, one checkpoint, and a rerun finishes the run."
    data = make_synthetic_dataset(tmp_path/'synth', n=24, size=32, seed=0, progress=False)
    def learner():
        dls = hpa_dataloaders(data/'train', HPALayout(data).labels, size=32, bs=8, num_workers=0)
        learn = hpa_learner(dls, 'resnet_tiny', pretrained=False, metrics=hpa_metrics())
        learn.path, learn.model_dir = tmp_path/'run', 'checkpoints'
        return learn
    fit_resumable(learner(), 3, 1e-3, cbs=StopAfter(0), verbose=False)
    assert pd.read_csv(tmp_path/'run'/'history.csv')['epoch'].tolist() == [0]
    assert [p.name for p in checkpoint_files(tmp_path/'run'/'checkpoints')] == ['last-0001.safetensors']
    fit_resumable(learner(), 3, 1e-3, verbose=False)
    assert pd.read_csv(tmp_path/'run'/'history.csv')['epoch'].tolist() == [0, 1, 2]
