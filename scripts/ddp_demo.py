"""Data-parallel training of the fused model on 2 CPU processes (gloo) through Hugging Face Accelerate.

    accelerate launch --cpu --num_processes 2 --num_machines 1 --mixed_precision no --dynamo_backend no \\
        scripts/ddp_demo.py OUT

Rank 0 writes a tiny synthetic dataset and its features; every rank then trains the same fused model inside
`hpa_fastai.train.distributed` on its half of each epoch, to a time budget (`EpochBudget`) on a fake clock that runs
at a different speed on each rank: left to itself rank 1 would plan 4 epochs and rank 0 2, so both training 2 shows that
the first rank's plan holds for all. Each rank writes OUT/rank{r}.json with what it saw.
"""
import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')
import torch
from accelerate import PartialState
from fastai.callback.core import Callback

from hpa_fastai.data import hpa_dataloaders, hpa_split
from hpa_fastai.core import read_labels
from hpa_fastai.features import BioFeatureBlock, FeatureNormaliser, extract_features, read_features
from hpa_fastai.model import hpa_learner
from hpa_fastai.synth import make_synthetic_dataset
from hpa_fastai.train import EpochBudget, distributed, fit_resumable, hpa_metrics


class FakeClock:
    "Seconds that pass only when `Tick` says so."
    t = 0.
    def __call__(self) -> float: return self.t


class Tick(Callback):
    "Let `seconds` pass on `clock` in each epoch's training."
    def __init__(self, clock:FakeClock, seconds:float): self.clock, self.seconds = clock, seconds
    def after_train(self): self.clock.t += self.seconds


class SeenBatches(Callback):
    "Record a checksum of every training batch this process trains on."
    def before_fit(self): self.sums = []
    def before_batch(self):
        if self.training: self.sums.append(float(self.xb[0].double().sum()))


def main(out:Path):
    torch.set_num_threads(1)
    state = PartialState(cpu=True)  # joins the process group (gloo) that `accelerate launch` set up
    data = out/'data'
    if state.is_main_process:
        make_synthetic_dataset(out=data, n=32, size=64, seed=0, progress=False)
        extract_features(data, out=data/'features.parquet', n_workers=1, progress=False)
    state.wait_for_everyone()
    labels = read_labels(data/'train.csv')
    tr, va = hpa_split(labels, 0.25)
    feats = read_features(data/'features.parquet').set_index('Id')
    norm = FeatureNormaliser.fit(feats.loc[labels['Id'].iloc[tr]])
    torch.manual_seed(0)
    dls = hpa_dataloaders(data/'train', labels, size=32, bs=4, valid_idx=va, aug=False, num_workers=0,
                          feature_block=BioFeatureBlock(feats, norm))
    learn = hpa_learner(dls, 'resnet18', pretrained=False, metrics=hpa_metrics())
    learn.path, learn.model_dir = out/'model', 'checkpoints'
    seen = SeenBatches()
    clock = FakeClock()  # epochs of 10 s on rank 0 (2 fit in 25 s) and of 4 s on rank 1 (which would fit 4)
    cbs = [seen, Tick(clock, 10. if state.is_main_process else 4.), EpochBudget(25., 10., verbose=False, clock=clock)]
    with distributed(learn): fit_resumable(learn, 4, 1e-3, cbs=cbs, resume=False)
    weights = sum(float(p.double().sum()) for p in learn.model.parameters())
    rec = dict(rank=state.process_index, world=state.num_processes, backend=str(torch.distributed.get_backend()),
               batches=seen.sums, n_train=len(dls.train_ds), weights=weights, epochs=int(learn.n_epoch))
    (out/f'rank{state.process_index}.json').write_text(json.dumps(rec))
    print(f"rank {rec['rank']}/{rec['world']} ({rec['backend']}): {len(seen.sums)} training batches, weight sum {weights:.6f}")


if __name__ == '__main__': main(Path(sys.argv[1] if len(sys.argv) > 1 else 'ddp_demo'))
