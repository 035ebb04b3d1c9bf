#!/usr/bin/env python
"""Full-size ingest: decode + resize to the cache size, per sample, with and without reduced JPEG decoding.

On the real full-size material in ../shared/data/hpa: the 2 Kaggle full-resolution samples (`fullsize/`, 2048 and
3072 px 8-bit PNGs) and the 2 HPA v18 samples (`hpav18_jpg/`, 1728 and 2048 px RGB JPEGs). For each: ms per sample of
`open_rgby(stem, size, reduced=False)` (full decode, then area resize: what the cache did before) and of
`open_rgby(stem, size)` (JPEGs decoded by libjpeg at 1/2, 1/4 or 1/8 scale, the coarsest keeping at least `size`, then
area resize); the speed-up; and the pixel agreement of the two (mean, 99.9th percentile and max absolute difference
in grey levels, over the 4 channels at `size`). For PNGs it also times OpenCV's IMREAD_REDUCED_GRAYSCALE flags (which
decode in full and then shrink) to show whether they gain anything. One OpenCV thread: figures are per core.
Last, the anonymous memory (RssAnon) of a fresh worker process that decodes one full-size sample, importing the
decoding from `hpa_fastai.decode` (what cache workers run now) or from `hpa_fastai.data` (before: torch and fastai too),
and of a Dask worker after a `build_cache(..., client=)` of the 80 real 512 px samples.
Usage: python scripts/bench_ingest.py [--size 512] [--reps 5]"""
import argparse, subprocess, sys, tempfile, time
from pathlib import Path

import cv2
import numpy as np

from hpa_fastai.core import CHANNELS, find_hpa_data
from hpa_fastai.decode import jpeg_reduction, open_rgby

def ms(fn, reps:int) -> float:
    "Best-of-`reps` milliseconds of `fn()` (the least disturbed by other load on a shared machine)."
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return 1000 * min(ts)

def agreement(a:np.ndarray, b:np.ndarray) -> str:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return f"|diff| mean {d.mean():.3f}, p99.9 {np.percentile(d, 99.9):.0f}, max {d.max()} grey levels"

def bench_sample(stem:str, size:int, reps:int):
    f = Path(f"{stem}_green{Path(stem + '_green.jpg').suffix if Path(stem + '_green.jpg').exists() else '.png'}")
    side = cv2.imread(str(f), cv2.IMREAD_REDUCED_GRAYSCALE_8).shape[0] * 8 if f.suffix == '.jpg' else cv2.imread(str(f), cv2.IMREAD_UNCHANGED).shape[0]
    full = ms(lambda: open_rgby(stem, size, reduced=False), reps)
    fast = ms(lambda: open_rgby(stem, size), reps)
    a, b = open_rgby(stem, size, reduced=False), open_rgby(stem, size)
    r = jpeg_reduction(f, size) if f.suffix == '.jpg' else 1
    print(f"{Path(stem).name} ({f.suffix[1:].upper()}, ~{side} px): full decode+resize {full:.0f} ms, "
          f"reduced (1/{r}) {fast:.0f} ms: {full / fast:.1f}x; {agreement(a, b)}")
    return f.suffix, full, fast

def bench_png_flags(stem:str, size:int, reps:int):
    "Time OpenCV's reduced flags on the PNG channels (full decode inside, then a shrink) against a plain decode."
    files = [f"{stem}_{c}.png" for c in CHANNELS]
    plain = ms(lambda: [cv2.imread(f, cv2.IMREAD_GRAYSCALE) for f in files], reps)
    red = ms(lambda: [cv2.imread(f, cv2.IMREAD_REDUCED_GRAYSCALE_4) for f in files], reps)
    print(f"  PNG {Path(stem).name}: 4 plain decodes {plain:.0f} ms, 4 with IMREAD_REDUCED_GRAYSCALE_4 {red:.0f} ms ({plain / red:.2f}x)")

def rss_anon_mb() -> float:
    "RssAnon of this process, in MB (Linux)."
    line = next(l for l in open('/proc/self/status') if l.startswith('RssAnon:'))
    return int(line.split()[1]) / 1024

def worker_rss(stem:str, size:int):
    "RssAnon of a fresh process decoding `stem` with `open_rgby` imported from each module, and of a Dask cache worker."
    for mod in ('hpa_fastai.decode', 'hpa_fastai.data'):
        code = (f"import sys; from {mod} import open_rgby; open_rgby({stem!r}, {size}); "
                "l = next(l for l in open('/proc/self/status') if l.startswith('RssAnon:')); "
                "print(int(l.split()[1]) / 1024, 'torch' in sys.modules)")
        mb, torch = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split()
        print(f"worker decoding with {mod}: RssAnon {float(mb):.0f} MB (torch imported: {torch})")
    try: import distributed
    except ImportError: return print("distributed not installed: no Dask worker figure")
    from hpa_fastai.core import find_hpa_data, read_labels
    from hpa_fastai.data import build_cache
    hpa = find_hpa_data(); ids = read_labels(hpa/'train_sample.csv')['Id']
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
         distributed.Client(cl) as client, tempfile.TemporaryDirectory() as t:
        build_cache(hpa/'train_sample', ids, Path(t)/'c', size=size, progress=False, client=client)
        (mb, torch), = client.run(lambda: (rss_anon_mb(), 'torch' in sys.modules)).values()
        print(f"Dask worker after caching {len(ids)} samples at {size} px: RssAnon {mb:.0f} MB (torch imported: {torch})")

def main(size:int, reps:int):
    hpa = find_hpa_data()
    if hpa is None: raise SystemExit("SKIP: the real HPA material (../shared/data/hpa) is absent")
    cv2.setNumThreads(1)
    pngs = sorted(str(f)[:-len('_red.png')] for f in (hpa/'fullsize').glob('*_red.png'))
    jpgs = sorted(str(f)[:-len('_red.jpg')] for f in (hpa/'hpav18_jpg').glob('*_red.jpg'))
    res = [bench_sample(s, size, reps) for s in pngs + jpgs]
    for s in pngs: bench_png_flags(s, size, reps)
    for ext in ('.png', '.jpg'):
        full, fast = [sum(x[i] for x in res if x[0] == ext) for i in (1, 2)]
        print(f"all {ext[1:].upper()} samples: {full / fast:.2f}x ({full:.0f} -> {fast:.0f} ms for {sum(x[0] == ext for x in res)} samples)")
    worker_rss(jpgs[-1], size)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--size', type=int, default=512); p.add_argument('--reps', type=int, default=5)
    main(**vars(p.parse_args()))
