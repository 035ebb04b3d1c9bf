"""Levers on the CPU main job's training speed, measured A/B in one run, interleaved (the machine may be shared).

    python scripts/bench_speed.py                 # 1,000 synthetic samples, the demo's model and settings at 128 px
    python scripts/bench_speed.py --rounds 5 --n 2000

The main job (`hpa-fastai demo`): `resnet_tiny` at 128 px, bs 64, fused with the ten features, dihedral augmentation,
float32 on a CPU without bf16. Each lever is a learner built by `run.run_dataloaders`/`run.run_learner` from a
`TrainSettings` like the demo's, timed for one epoch per round (training img/s from the batches' wall-clock intervals,
loading included, and the validation pass); rounds cycle through the levers so a change in the machine's load hits
them all. Rows: the baseline (per-item fastai loader, channels-last, 2 threads), channels-last off, the batch loader
(`TrainSettings(batch_loader=True)`, i.e. `hpa_dataloaders(fast=True)`), 1 thread, `torch.compile` (its compile
seconds apart), 64/96 px epochs, and 64 px epochs shrunk from the 128 px batches as `ProgressiveResize` trains them; then what a
progressive run (the first `small_pct` of its epochs at 64 px) costs against 128 px throughout. The loader alone is timed too (batches/s over a training epoch, with the batch transforms).
"""
import argparse, os, subprocess, sys, tempfile, time, warnings
from dataclasses import replace
from pathlib import Path

warnings.filterwarnings('ignore')
import numpy as np
import torch
from fastai.callback.core import Callback

from hpa_fastai.run import TrainSettings, prepare_data, run_dataloaders, run_learner
from hpa_fastai.synth import make_synthetic_dataset
from hpa_fastai.train import ProgressiveResize, cpu_model, small_epochs, speed_callbacks

DEMO = TrainSettings(size=128, epochs=1, arch='resnet_tiny', pretrained=False, lr=1e-2, bs=64, ps=0.2, hidden=256,
                     aug='dihedral', num_workers=0, precision=None, monitor='valid_loss')


class EpochTimer(Callback):
    "Wall-clock of the training batches (interval between consecutive ends, loading included) and of validation."
    order = 100
    def before_fit(self): self.ends, self.valid = [], 0.
    def after_batch(self):
        if self.training: self.ends.append(time.perf_counter())
    def before_validate(self): self.tv = time.perf_counter()
    def after_validate(self): self.valid = time.perf_counter() - self.tv


class Lever:
    "One row: a learner and its settings, timed one epoch per round."
    def __init__(self, name, prep, s, fast=False, channels_last=True, threads=2, compile=False, cbs=()):
        self.name, self.s, self.cl, self.threads, self.cbs = name, replace(s, batch_loader=fast), channels_last, threads, list(cbs)
        dls, split = run_dataloaders(prep, self.s)
        self.learn = run_learner(dls, prep['labels'].iloc[split[0]], s, Path(tempfile.mkdtemp()))
        self.learn.metrics = []
        if compile: self.learn.model.compile()
        self.img_s, self.valid_s, self.first = [], [], None

    def round(self):
        torch.set_num_threads(self.threads)
        timer = EpochTimer()
        t0 = time.perf_counter()
        with self.learn.no_bar(), self.learn.no_logging():
            self.learn.fit(1, 1e-3, cbs=[timer, *speed_callbacks(None, self.cl), *self.cbs])
        e = np.array(timer.ends)
        if self.first is None: self.first = time.perf_counter() - t0; return  # warm-up (and compile) round, not counted
        self.img_s.append(self.s.bs * (len(e) - 1) / (e[-1] - e[0]))
        self.valid_s.append(timer.valid)
        self.epoch_s = len(self.learn.dls.train) * self.s.bs / np.median(self.img_s) + np.median(self.valid_s)


def loader_rate(dl, n_epochs=2):
    "Batches/s of iterating `dl` (one training epoch: gather, collate, batch transforms)."
    t, n = time.perf_counter(), 0
    for _ in range(n_epochs):
        for _ in dl: n += 1
    return n / (time.perf_counter() - t)


def interop_rate(interop, size=128, bs=64, steps=8):
    "Model-only img/s of a training step with `interop` inter-op threads (set once per process: measured in a child)."
    code = (f"import torch,time; torch.set_num_interop_threads({interop}); torch.set_num_threads(2)\n"
            "from hpa_fastai.model import hpa_model\n"
            f"m=hpa_model('resnet_tiny', pretrained=False, ps=0.2, hidden=256).to(memory_format=torch.channels_last); o=torch.optim.AdamW(m.parameters())\n"
            f"x,f,y=torch.randn({bs},4,{size},{size}),torch.rand({bs},10),torch.rand({bs},28).round()\n"
            "def st():\n l=torch.nn.functional.binary_cross_entropy_with_logits(m(x,f),y); o.zero_grad(); l.backward(); o.step()\n"
            f"[st() for _ in range(2)]; t=time.perf_counter(); [st() for _ in range({steps})]; print({bs}*{steps}/(time.perf_counter()-t))")
    return float(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=1000, help='synthetic samples (256 px, cached at each size)')
    p.add_argument('--rounds', type=int, default=3, help='timed rounds per lever (after one warm-up round)')
    p.add_argument('--no-compile', action='store_true', help='skip the torch.compile row')
    a = p.parse_args()
    torch.set_num_threads(2)
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; torch {torch.__version__}; load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as d:
        data = make_synthetic_dataset(Path(d)/'synth', n=a.n, size=256, seed=0, n_workers=2, progress=False)
        preps = {sz: prepare_data(data, sz, workers=2, progress=False) for sz in (128, 96, 64)}
        p128 = preps[128]
        base = Lever('baseline: per-item loader, fp32, channels-last, 2 threads', p128, DEMO)
        levers = [base,
                  Lever('channels-last off', p128, DEMO, channels_last=False),
                  Lever('batch loader (batch_loader=True)', p128, DEMO, fast=True),
                  Lever('1 thread', p128, DEMO, threads=1),
                  Lever('batch loader, 1 thread', p128, DEMO, fast=True, threads=1),
                  Lever('96 px (per-item loader)', preps[96], replace(DEMO, size=96)),
                  Lever('64 px (per-item loader)', preps[64], replace(DEMO, size=64)),
                  Lever('64 px, batch loader', preps[64], replace(DEMO, size=64), fast=True),
                  Lever('64 px shrunk from 128 (ProgressiveResize), batch loader', p128, DEMO, fast=True,
                        cbs=[ProgressiveResize(64, 2**31)])]
        if not a.no_compile: levers.append(Lever('torch.compile (inductor), batch loader', p128, DEMO, fast=True, compile=True))
        torch.set_num_threads(2)
        slow_dl, fast_dl = base.learn.dls.train, levers[2].learn.dls.train
        rates = {'per-item': [], 'batch': []}
        for r in range(a.rounds + 1):
            for lv in levers: lv.round()
            rates['per-item'].append(loader_rate(slow_dl)); rates['batch'].append(loader_rate(fast_dl))
            print(f"round {r} done, load average {os.getloadavg()[0]:.2f}", flush=True)
        interop = {k: interop_rate(k) for k in (1, 2, 1, 2)}
        b = np.median(base.img_s)
        print(f"\n{len(base.learn.dls.train)} training batches of {DEMO.bs} ({a.n} samples, 20% validation); medians of {a.rounds} rounds\n")
        print(f"{'lever':<48} {'train img/s':>11} {'ratio':>6} {'valid s':>8} {'epoch s':>8} {'first epoch s':>13}")
        for lv in levers:
            print(f"{lv.name:<48} {np.median(lv.img_s):>11.1f} {np.median(lv.img_s) / b:>6.2f} {np.median(lv.valid_s):>8.2f} "
                  f"{lv.epoch_s:>8.1f} {lv.first:>13.1f}")
        fast128, shrunk = levers[2], levers[9]
        for n in (30, 32, 36):
            k = small_epochs(n, DEMO.small_pct)
            run = k * shrunk.epoch_s + (n - k) * fast128.epoch_s
            print(f"progressive run of {n} epochs ({k} at 64 px, batch loader): {run / 60:.1f} min, {n * base.epoch_s / run:.2f}x the "
                  f"epochs of the baseline and {n * fast128.epoch_s / run:.2f}x those of the batch loader at 128 px in that time")
        comp = levers[-1] if not a.no_compile else None
        if comp: print(f"\ntorch.compile: first epoch {comp.first:.0f} s against {levers[2].first:.0f} s uncompiled: "
                       f"about {comp.first - levers[2].first:.0f} s of compilation")
        ps, pb = np.median(rates['per-item']), np.median(rates['batch'])
        print(f"\nloader alone (training epoch, batch transforms included): per-item {ps:.2f} batches/s "
              f"({1000 / ps / DEMO.bs:.2f} ms/sample), batch loader {pb:.1f} batches/s ({1000 / pb / DEMO.bs:.3f} ms/sample): {pb / ps:.1f}x")
        print(f"model-only step, 2 intra-op threads: inter-op 1 thread {interop[1]:.1f} img/s, 2 threads {interop[2]:.1f} img/s")
        print(f"load average after: {os.getloadavg()}")


if __name__ == '__main__': main()
