"""Benchmark cell segmentation (`cells.segment_cells`): milliseconds per sample on one core, and the match rate on synthetic truth.

Usage: python scripts/bench_cells.py [--n 60] [--n-full 8]
Targets (issue 14): at most 50 ms per 512-pixel sample and 1 s per 2048-pixel one; at least 90% of true cells matched
at IoU >= 0.6 on heterogeneous synthetic fields. Times are medians, by wall clock and by CPU time (steadier on a shared
machine); the real samples of `../shared/data/hpa` are timed too when present.
"""
import argparse, platform, time

import cv2
import numpy as np
import pandas as pd

from hpa_fastai.cells import label_ious, match_cells, segment_cells
from hpa_fastai.core import N_CLASSES, find_hpa_data
from hpa_fastai.data import open_rgby
from hpa_fastai.synth import synth_field


def _times(images) -> tuple[float, float]:
    "Median wall-clock and CPU milliseconds of `segment_cells` per image."
    wall, cpu = [], []
    for x in images:
        w, c = time.perf_counter(), time.process_time()
        segment_cells(x)
        wall.append(time.perf_counter() - w); cpu.append(time.process_time() - c)
    return 1000*np.median(wall), 1000*np.median(cpu)


def _fields(n:int, size:int, seed:int):
    "`n` held-out heterogeneous synthetic fields of `size` pixels: (image, truth) pairs."
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        img, truth, _ = synth_field(rng.choice(N_CLASSES, rng.integers(1, 3), replace=False), size, rng)
        out.append((img, truth))
    return out


def _match(fields) -> tuple[float, float, int]:
    "Share of true cells matched at IoU >= 0.6, mean IoU of the matches, number of true cells."
    hits, n = [], 0
    for img, truth in fields:
        ious = label_ious(segment_cells(img).cells, truth)
        hits += [ious[p, t] for p, t in match_cells(ious)]; n += int(truth.max())
    return len(hits)/n, float(np.mean(hits)), n


def _cpu_name() -> str:
    "The CPU's model name, from /proc/cpuinfo where there is one."
    try: return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): return platform.processor() or 'unknown CPU'


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=60, help='synthetic 512-pixel fields')
    p.add_argument('--n-full', type=int, default=8, help='synthetic 2048-pixel fields')
    a = p.parse_args()
    cv2.setNumThreads(1)  # one core
    print(f"{_cpu_name()}, OpenCV {cv2.__version__}, one thread")
    segment_cells(_fields(1, 512, 1)[0][0])  # warm up
    rows = []
    f512 = _fields(a.n, 512, 5150)
    m, iou, n = _match(f512)
    rows.append(('synthetic', 512, a.n, *_times([x for x, _ in f512]), f"{100*m:.1f}% of {n}", f"{iou:.3f}"))
    f2048 = _fields(a.n_full, 2048, 5151)
    m, iou, n = _match(f2048)
    rows.append(('synthetic', 2048, a.n_full, *_times([x for x, _ in f2048]), f"{100*m:.1f}% of {n}", f"{iou:.3f}"))
    hpa = find_hpa_data()
    if hpa is None: print("SKIP real samples: ../shared/data/hpa not found")
    else:
        real = [open_rgby(hpa/'train_sample'/i) for i in pd.read_csv(hpa/'train_sample.csv').Id]
        rows.append(('real', 512, len(real), *_times(real), '-', '-'))
        for f in sorted((hpa/'fullsize').glob('*_blue.png')):
            x = open_rgby(f.with_name(f.name[:-len('_blue.png')]))
            rows.append(('real full-size', x.shape[1], 1, *_times([x]*5), '-', '-'))
    df = pd.DataFrame(rows, columns=['data', 'side', 'samples', 'ms wall (median)', 'ms CPU (median)', 'matched at IoU 0.6', 'mean IoU'])
    print(df.to_string(index=False, float_format=lambda v: f"{v:.1f}"))


if __name__ == '__main__': main()
