"""Training throughput of the fused model, in images per second, measured in one run.

    python scripts/bench_train.py                      # CPU: resnet_tiny, resnet18, resnet34 at 128 px
    python scripts/bench_train.py --archs resnet_tiny --bs 64 --aug dihedral --steps 30   # the CPU main job's setting
    python scripts/bench_train.py --size 512 --archs resnet34 --bs 128 --steps 30   # on a GPU: bf16 + channels_last
    python scripts/bench_train.py --size 512 --archs resnet34 --bs 128 --steps 30 --loaders item,batch --compile  # both loaders, compiled too

Two figures per backbone: the model alone (forward, backward and optimiser step on batches already in memory) and
the whole pipeline (fastai `Learner.fit` reading a memory-mapped cache of synthetic samples through
`hpa_dataloaders`, with augmentation and the ten features), once per loader of `--loaders`: fastai's per-item
`TfmdDL` ('item') and `data.CachedBatchDL` ('batch', whole batches gathered from the cache in one step). `--compile`
adds the model alone under `torch.compile`, its compile time printed apart. 'loader alone' is the pipeline's train
loader without the model: its batches on the device, after the batch transforms. Each backbone is timed in each precision
mode that `train.speed_callbacks` offers on the device: on a GPU bf16 mixed precision with channels_last (and the GPU's
utilisation when `nvidia-smi` is there); on the CPU float32, channels_last, and bf16 autocast with channels_last
where the CPU has native bf16 (`train.cpu_bf16_native`).
"""
import argparse, os, subprocess, tempfile, threading, time, warnings
from pathlib import Path

warnings.filterwarnings('ignore')
import torch
from fastai.callback.core import Callback, CancelFitException

from hpa_fastai.core import read_labels
from hpa_fastai.data import build_cache, hpa_dataloaders
from hpa_fastai.features import BioFeatureBlock, FeatureNormaliser, extract_features
from hpa_fastai.model import hpa_model, hpa_learner
from hpa_fastai.synth import make_synthetic_dataset
from hpa_fastai.train import cpu_bf16_native, speed_callbacks


class Timer(Callback):
    "Time `steps` training batches after `warmup` ones, then stop the fit."
    def __init__(self, warmup, steps): self.warmup, self.steps, self.n = warmup, steps, 0
    def after_batch(self):
        if not self.training: return
        self.n += 1
        if self.n == self.warmup: self._sync(); self.t0 = time.perf_counter()
        if self.n == self.warmup + self.steps: self._sync(); self.elapsed = time.perf_counter() - self.t0; raise CancelFitException()
    def _sync(self):
        if torch.cuda.is_available(): torch.cuda.synchronize()


def model_only(arch, size, bs, steps, device, precision, channels_last, compile=False):
    "Images/s of forward+backward+step of the fused model on random batches in memory, and the seconds of the warm-up steps."
    m = hpa_model(arch, pretrained=False).to(device)
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    x, f, y = torch.randn(bs, 4, size, size, device=device), torch.rand(bs, 10, device=device), torch.rand(bs, 28, device=device).round()
    cuda = device.type == 'cuda'
    if channels_last: m, x = m.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    fwd = torch.compile(m) if compile else m
    def step():
        with torch.autocast(device.type, torch.bfloat16, enabled=precision == 'bf16'):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(fwd(x, f).float(), y)
        opt.zero_grad(); loss.backward(); opt.step()
    t = time.perf_counter()
    for _ in range(3): step()
    if cuda: torch.cuda.synchronize()
    warm = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps): step()
    if cuda: torch.cuda.synchronize()
    return bs * steps / (time.perf_counter() - t), warm


def gpu_util(stop, samples):
    "Sample the GPU's utilisation (%) every 0.2 s until `stop` is set."
    while not stop.is_set():
        try: samples.append(float(subprocess.run(['nvidia-smi', '--query-gpu=utilization.gpu', '--format=csv,noheader,nounits'],
                                                 capture_output=True, text=True, timeout=5).stdout.split()[0]))
        except Exception: return
        time.sleep(0.2)


def pipeline(arch, data, labels, cache, feats, size, bs, steps, num_workers, aug, precision, channels_last, fast=False):
    "Images/s of `Learner.fit` from the cache with augmentation and features, and the mean GPU utilisation."
    norm = FeatureNormaliser.fit(feats)
    dls = hpa_dataloaders(data/'train', labels, size=size, bs=bs, cache=cache, num_workers=num_workers, aug=aug,
                          feature_block=BioFeatureBlock(feats, norm), valid_pct=0.1, fast=fast)
    feed = loader_only(dls.train, 3, steps)
    learn = hpa_learner(dls, arch, pretrained=False, metrics=[])
    timer, stop, util = Timer(3, steps), threading.Event(), []
    th = threading.Thread(target=gpu_util, args=(stop, util), daemon=True)
    if torch.cuda.is_available(): th.start()
    with learn.no_bar(), learn.no_logging(): learn.fit(10_000, 1e-3, cbs=[timer, *speed_callbacks(precision, channels_last)])
    stop.set()
    return bs * steps / timer.elapsed, (sum(util) / len(util) if util else None), feed


def loader_only(dl, warmup, steps):
    "Images/s of `dl` alone: its batches on the device with their batch transforms (augmentation, normalisation), no model."
    it, n = iter(dl), 0
    for _ in range(warmup): next(it)
    if torch.cuda.is_available(): torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps): b = next(it); n += len(b[0])
    if torch.cuda.is_available(): torch.cuda.synchronize()
    del it
    return n / (time.perf_counter() - t)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--archs', default='resnet_tiny,resnet18,resnet34'); p.add_argument('--size', type=int, default=128)
    p.add_argument('--bs', type=int, default=32); p.add_argument('--steps', type=int, default=10)
    p.add_argument('--n', type=int, default=None, help='synthetic samples in the cache (default enough for the steps)')
    p.add_argument('--num-workers', type=int, default=None); p.add_argument('--threads', type=int, default=None)
    p.add_argument('--aug', default='full', choices=['full', 'dihedral', 'none'], help='training augmentation (hpa_dataloaders)')
    p.add_argument('--loaders', default='item', help="comma-separated pipeline loaders: 'item' (fastai per-item TfmdDL), 'batch' (CachedBatchDL)")
    p.add_argument('--compile', action='store_true', help='also time the model alone under torch.compile')
    a = p.parse_args()
    loaders = a.loaders.split(',')
    if not set(loaders) <= {'item', 'batch'}: raise SystemExit(f"--loaders takes item and/or batch, got {a.loaders!r}")
    cuda = torch.cuda.is_available()
    device = torch.device('cuda' if cuda else 'cpu')
    if a.threads: torch.set_num_threads(a.threads)
    nw = a.num_workers if a.num_workers is not None else (min(16, os.cpu_count()) if cuda else 0)
    n = a.n or max(64, -(-a.bs * (a.steps + 5) * 10 // 9))  # the timed batches within one epoch of the 90% trained on: no validation or worker restart in them
    tmp = Path(tempfile.mkdtemp())
    t = time.time()
    make_synthetic_dataset(out=tmp, n=n, size=a.size, seed=0, n_workers=os.cpu_count(), progress=False)
    labels = read_labels(tmp/'train.csv')
    cache = build_cache(tmp/'train', labels['Id'], tmp/f'cache_{a.size}', size=a.size, progress=False)
    feats = extract_features(tmp, progress=False)
    print(f"device: {torch.cuda.get_device_name() if cuda else 'CPU'} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads); "
          f"{a.size}x{a.size}, batch {a.bs}, augmentation {a.aug}; data ready in {time.time()-t:.0f} s")
    modes = [('bf16', True)] if cuda else [(None, False), (None, True)] + ([('bf16', True)] if cpu_bf16_native() else [])
    print(f"pipeline loaders: {', '.join(loaders)}; {nw} DataLoader workers")
    print(f"{'backbone':12s} {'mode':20s} {'loader':7s} {'model only img/s':>17s} {'pipeline img/s':>15s} {'GPU util %':>11s} {'loader alone img/s':>19s}")
    for arch in a.archs.split(','):
        for prec, cl in modes:
            mode = '+'.join([prec or 'float32'] + (['channels_last'] if cl else []))
            mo, _ = model_only(arch, a.size, a.bs, a.steps, device, prec, cl)
            for ld in loaders:
                pl, util, feed = pipeline(arch, tmp, labels, cache, feats, a.size, a.bs, a.steps, nw, a.aug, prec, cl, fast=ld == 'batch')
                print(f"{arch:12s} {mode:20s} {ld:7s} {mo:17.1f} {pl:15.1f} {('%.0f' % util) if util is not None else '-':>11s} {feed:19.1f}", flush=True)
            if a.compile:
                mc, warm = model_only(arch, a.size, a.bs, a.steps, device, prec, cl, compile=True)
                print(f"{arch:12s} {mode + '+compile':20s} {'-':7s} {mc:17.1f} {'-':>15s} {'-':>11s}   (compile + 3 warm-up steps: {warm:.0f} s)", flush=True)


if __name__ == '__main__': main()
