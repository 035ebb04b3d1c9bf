#!/usr/bin/env python
"""Samples/s through the DataLoader item pipeline: decoding PNGs vs reading the memory-mapped cache.

Both paths run in this one process on the same samples of ../shared/data/hpa/train_sample at 512x512, so
the ratio compares like with like. "Item pipeline" is what a fastai `TfmdDL` does per item (`do_item`:
fetch, `OpenRGBY` -> `TensorRGBY`, after_item); the batch figures add collation into (16, 4, 512, 512)
uint8 batches, all in one process with one torch thread, as PyTorch runs each DataLoader worker (two
intra-op threads contend with any other load and make collation erratic). Usage: python scripts/bench_cache.py [--size 512] [--epochs 3]"""
import argparse, sys, tempfile, time

import torch
from pathlib import Path

from fastai.data.core import Datasets, TfmdDL

from hpa_fastai.core import find_hpa_data, read_labels
from hpa_fastai.data import OpenRGBY, build_cache

def _dl(items, tfm, bs:int=16) -> TfmdDL:
    return TfmdDL(Datasets(items, [[tfm]]), bs=bs, num_workers=0)

def item_samples_per_s(items, tfm, epochs:int) -> float:
    "Samples/s of `epochs` passes of a `TfmdDL`'s item pipeline (`do_item`) over `items` opened by `tfm`."
    dl = _dl(items, tfm); dl.do_item(0)  # warm up
    t0 = time.perf_counter()
    for _ in range(epochs):
        for i in range(len(items)): dl.do_item(i)
    return epochs * len(items) / (time.perf_counter() - t0)

def batch_samples_per_s(items, tfm, epochs:int) -> float:
    "Samples/s of `epochs` passes of a `TfmdDL` (items and collation) over `items` opened by `tfm`."
    dl = _dl(items, tfm); next(iter(dl))  # warm up
    t0, n = time.perf_counter(), 0
    for _ in range(epochs):
        for (xb,) in dl: n += len(xb)
    return n / (time.perf_counter() - t0)

def main(size:int, epochs:int):
    torch.set_num_threads(1)
    hpa = find_hpa_data()
    if hpa is None: print("SKIP: ../shared/data/hpa not found (set HPA_DATA)"); return 0
    folder, ids = hpa/'train_sample', read_labels(hpa/'train_sample.csv')['Id'].tolist()
    items = [folder/i for i in ids]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cache = build_cache(folder, ids, Path(tmp)/'cache', size=size, progress=False)
        build_s = time.perf_counter() - t0
        png, cached = OpenRGBY(size), OpenRGBY(size, cache)
        res = {'item pipeline': (item_samples_per_s(items, png, epochs), item_samples_per_s(items, cached, epochs * 20)),
               'batches (bs 16)': (batch_samples_per_s(items, png, epochs), batch_samples_per_s(items, cached, epochs * 20))}
    print(f"{len(ids)} real samples at {size}x{size}; cache built in {build_s:.1f} s with all cores")
    print(f"{'':16s} {'PNG samples/s':>14s} {'cache samples/s':>16s} {'speed-up':>9s}")
    for k, (p, c) in res.items(): print(f"{k:16s} {p:14.1f} {c:16.1f} {c / p:8.1f}x")
    return 0

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--size', type=int, default=512); p.add_argument('--epochs', type=int, default=3)
    a = p.parse_args()
    sys.exit(main(a.size, a.epochs))
