"""Benchmark the synthetic data generator: samples per second in one process, PNG writing included.

Usage: python scripts/bench_synth.py [--n 200] [--size 512]
Reports rates by wall clock and by CPU time (the latter is steadier on a shared machine).
"""
import argparse, shutil, tempfile, time
from pathlib import Path

import cv2

from hpa_fastai.synth import make_synthetic_dataset, synth_sample


def _rate(n, f):
    "Samples per second of `f()` over `n` samples, by wall clock and by CPU time."
    w, c = time.perf_counter(), time.process_time()
    f()
    return n/(time.perf_counter() - w), n/(time.process_time() - c)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=200, help='samples to write')
    p.add_argument('--size', type=int, default=512, help='side of each image, in pixels')
    a = p.parse_args()
    cv2.setNumThreads(1)  # one core: no OpenCV worker threads
    synth_sample([0], a.size, rng=0)  # warm up imports and caches
    out = Path(tempfile.mkdtemp(prefix='bench_synth_'))
    try:
        draw = _rate(a.n, lambda: [synth_sample([i % 28], a.size, rng=i) for i in range(a.n)])
        full = _rate(a.n, lambda: make_synthetic_dataset(out, n=a.n, size=a.size, seed=0, n_workers=0, progress=False))
    finally: shutil.rmtree(out, ignore_errors=True)
    print(f"size {a.size}, 1 process: drawing only {draw[0]:.1f} samples/s wall ({draw[1]:.1f} by CPU time); "
          f"drawing + writing PNGs {full[0]:.1f} samples/s wall ({full[1]:.1f} by CPU time)")


if __name__ == '__main__': main()
