"""Benchmark the biological features: `hpa_fastai.features.bio_features` against a re-implementation of the study's
pipeline (NL-means denoising of every channel, scikit-image SSIM, scikit-image watershed and regionprops).

Both run in this one process, pinned to one core (OpenCV and numba on one thread), from decoded arrays, on the real
samples in ../shared/data/hpa/train_sample (or $HPA_DATA/train_sample). `bio_features` is warmed up first (its numba
kernels compile, or load from their on-disk cache, on the first call), then timed in `--rounds` passes over the
samples, each sample `--reps` times (the best counts). Wall time is what a core spends when it has the CPU to itself;
the thread's CPU time is also printed, since other processes on a shared machine stretch wall time but not CPU time.
Prints ms/sample for each pipeline, the speed-up, the load average and whether the 10 ms target is met.

    .venv/bin/python scripts/bench_features.py [--n N] [--study-n N] [--reps R] [--rounds R] [--cpu C]
"""
import argparse
import os
import platform
import sys
import time

for v in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMBA_NUM_THREADS'): os.environ.setdefault(v, '1')

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.measure import label, regionprops
from skimage.metrics import structural_similarity
from skimage.morphology import remove_small_objects
from skimage.segmentation import watershed

from hpa_fastai.core import find_hpa_data, read_labels
from hpa_fastai.data import open_rgby
from hpa_fastai.features import bio_features, green_ssims, segment_rgby


def study_features(rgby:np.ndarray) -> dict:
    "The study's pipeline, done right: NL-means on each channel, skimage SSIM, Otsu + watershed nuclei, regionprops."
    r, g, b, y = (cv2.fastNlMeansDenoising(c, None, h=10, templateWindowSize=7, searchWindowSize=21) for c in rgby)
    ssim = [structural_similarity(g, o, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
            for o in (r, y, b)]
    nuc = remove_small_objects(ndi.binary_fill_holes(b > threshold_otsu(b)), max_size=199)
    dist = ndi.distance_transform_edt(nuc)
    peaks = peak_local_max(dist, min_distance=20, labels=label(nuc))
    markers = np.zeros(nuc.shape, np.int32); markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    nuclei = watershed(-dist, markers, mask=nuc)
    fg = remove_small_objects(g > threshold_otsu(g), max_size=15)
    segs = regionprops(label(fg))
    to_nuc = ndi.distance_transform_edt(~nuc)
    sig = np.clip(g.astype(np.float64) - threshold_otsu(g), 0, None)
    nuc_area = np.mean([p.area for p in regionprops(nuclei)]) if nuclei.max() else nuc.size
    return dict(green_in_nucleus=sig[nuc].sum() / max(sig.sum(), 1e-9), ssim=ssim, ratio=g.sum() / max(y.sum(), y.size),
                green_area=fg.mean(),
                compactness=np.mean([p.perimeter ** 2 / (4 * np.pi * p.area) for p in segs]) if segs else 1.,
                axis_ratio=np.mean([p.axis_major_length / max(p.axis_minor_length, 1e-9) for p in segs]) if segs else 1.,
                area_ratio=np.mean([p.area for p in segs]) / nuc_area if segs else 0.,
                distance=np.mean([to_nuc[tuple(np.round(p.centroid).astype(int))] for p in segs]) if segs else 0.)


TARGET_MS = 10.  # issue 3: at most 10 ms per 512x512 sample per core


def ms_per_sample(f, arrs, reps:int=1) -> tuple[float, float]:
    "Means over `arrs` of the best of `reps` wall and thread-CPU timings of `f`, in milliseconds."
    wall, cpu = [], []
    for a in arrs:
        ws, cs = [], []
        for _ in range(reps):
            t, c = time.perf_counter(), time.thread_time(); f(a)
            ws.append(time.perf_counter() - t); cs.append(time.thread_time() - c)
        wall.append(min(ws)); cpu.append(min(cs))
    return 1e3 * float(np.mean(wall)), 1e3 * float(np.mean(cpu))


def load() -> str:
    "The 1, 5 and 15 minute load averages."
    return ' / '.join(f"{l:.2f}" for l in os.getloadavg())


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=80, help='samples for bio_features (all 80 by default)')
    p.add_argument('--study-n', type=int, default=16, help="samples for the study's pipeline (~1 s each)")
    p.add_argument('--reps', type=int, default=3, help='timings per sample for bio_features; the best counts')
    p.add_argument('--rounds', type=int, default=5, help='passes over the samples for bio_features; the best is reported')
    p.add_argument('--cpu', type=int, default=0, help='the core to pin this process to (-1: no pinning)')
    a = p.parse_args()
    hpa = find_hpa_data()
    if hpa is None or not (hpa/'train_sample').is_dir():
        print("SKIP: real HPA data not found (../shared/data/hpa/train_sample or $HPA_DATA): nothing to benchmark")
        return 0
    pinned = a.cpu >= 0 and hasattr(os, 'sched_setaffinity')
    if pinned: os.sched_setaffinity(0, {a.cpu})
    cv2.setNumThreads(1)
    ids = read_labels(hpa/'train_sample.csv')['Id'].tolist()
    arrs = [open_rgby(hpa/'train_sample'/i) for i in ids[:max(a.n, a.study_n)]]
    t = time.perf_counter(); bio_features(arrs[0]); first = time.perf_counter() - t  # warm-up: numba compiles or loads
    study_features(arrs[0])
    load_before = load()
    rounds = [ms_per_sample(bio_features, arrs[:a.n], a.reps) for _ in range(a.rounds)]
    (ours, ours_cpu), median = min(rounds), float(np.median([w for w, _ in rounds]))
    ssims, segs = (min(ms_per_sample(f, arrs[:a.n], a.reps)[0] for _ in range(2)) for f in (green_ssims, segment_rgby))
    study, study_cpu = ms_per_sample(study_features, arrs[:a.study_n])
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{f'pinned to CPU {a.cpu}' if pinned else 'not pinned'}, OpenCV and numba on one thread")
    print(f"load average (1/5/15 min): {load_before} at the start, {load()} at the end")
    print(f"samples: {len(arrs[:a.n])} x {arrs[0].shape[1]}x{arrs[0].shape[2]} from {hpa/'train_sample'}, timed from decoded arrays")
    print(f"bio_features first call (compile or load the kernels, warm-up, not counted): {first:.2f} s")
    print(f"bio_features:                 {ours:8.2f} ms/sample wall, {ours_cpu:.2f} ms CPU (best of {a.rounds} rounds of "
          f"{a.n} samples x best of {a.reps}; median round {median:.2f} ms)")
    print(f"  of which: green_ssims {ssims:.2f} ms, segment_rgby {segs:.2f} ms, the measures on top {ours - ssims - segs:.2f} ms")
    print(f"study pipeline (NLM+skimage): {study:8.2f} ms/sample wall, {study_cpu:.2f} ms CPU ({a.study_n} samples, once each)")
    print(f"speed-up: {study / ours:.0f}x (wall), {study_cpu / ours_cpu:.0f}x (CPU)")
    print(f"target (<= {TARGET_MS:g} ms/sample on one core): {'met' if ours <= TARGET_MS else 'NOT met'}")
    return 0


if __name__ == '__main__': sys.exit(main())
