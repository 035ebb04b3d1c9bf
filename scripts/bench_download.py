#!/usr/bin/env python
"""The costs of the v18 downloader that do not depend on the network: checking a JPEG, downloading from a local
server, converting to PNGs.

On the two real v18 samples in ../shared/data/hpa/hpav18_jpg (1728 and 2048 px), served under `--copies` Ids each:
(1) the check every downloaded file gets (`image_problem`: end marker + decoding at 1/8 scale) against a full decode;
(2) files/s of `download_v18` from a local `http.server` (loopback: this measures the downloader's own overhead, the
real site is far slower) with 1 and 4 threads; (3) samples/s of the PNG conversion (`v18_to_png`, 512 px) with 1 and 2
threads. Usage: python scripts/bench_download.py [--copies 8] [--size 512]"""
import argparse, functools, http.server, os, sys, tempfile, threading, time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from hpa_fastai.core import CHANNELS, find_hpa_data
from hpa_fastai.download import download_v18, image_problem, v18_parts, v18_to_png


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass

def serve(root:Path):
    "Serve `root` on a free loopback port in a background thread; return the server and its URL."
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_port}"

def mirror(root:Path, src:Path, real_ids:list, copies:int) -> list:
    "Link the real samples under `copies` Ids each, in the v18 layout; return the Ids."
    ids = [f"{90000 + k}_{real.split('_', 1)[1]}" for k in range(copies) for real in real_ids]
    for sid in ids:
        plate, rest = v18_parts(sid); real = next(r for r in real_ids if r.endswith(rest))
        (root/'images'/plate).mkdir(parents=True, exist_ok=True)
        for c in CHANNELS: (root/'images'/plate/f"{rest}_{c}.jpg").symlink_to(src/f"{real}_{c}.jpg")
    return ids

def ms_per(fn, items, reps:int=3) -> float:
    t0 = time.perf_counter()
    for _ in range(reps):
        for x in items: fn(x)
    return 1000 * (time.perf_counter() - t0) / (reps * len(items))

def bench_check(files:list):
    data = [f.read_bytes() for f in files]
    check = ms_per(image_problem, data)
    full = ms_per(lambda b: cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED), data)
    print(f"check one v18 JPEG ({len(files)} files, mean {np.mean([len(b) for b in data]) / 1e3:.0f} kB): "
          f"image_problem {check:.1f} ms, full decode {full:.1f} ms ({full / check:.1f}x)")

def bench_download(tmp:Path, base:str, ids:list):
    csv = tmp/'v18.csv'
    pd.DataFrame({'Id': ids, 'Target': '0'}).to_csv(csv, index=False)
    for jobs in (1, 4):
        t0 = time.perf_counter()
        res = download_v18(csv, tmp/f'out{jobs}', base, jobs=jobs, progress=False)
        s = time.perf_counter() - t0
        mb = sum(f.stat().st_size for f in (tmp/f'out{jobs}'/'train').glob('*.jpg')) / 1e6
        assert res.ok == len(ids), res
        print(f"download_v18 from loopback, {jobs} thread(s): {res.fetched / s:.1f} files/s, {mb / s:.1f} MB/s "
              f"({res.fetched} files in {s:.1f} s)")
    t0 = time.perf_counter(); res = download_v18(csv, tmp/'out4', base, jobs=4, progress=False)
    print(f"rerun with everything there: {res.skipped} files skipped in {time.perf_counter() - t0:.2f} s")
    return tmp/'out4'/'train'

def bench_png(folder:Path, ids:list, tmp:Path, size:int):
    for jobs in (1, 2):
        t0 = time.perf_counter()
        fails = v18_to_png(folder, ids, tmp/f'png{jobs}', size, jobs=jobs, progress=False)
        s = time.perf_counter() - t0
        assert not fails, fails
        print(f"v18_to_png at {size}px, {jobs} thread(s): {len(ids) / s:.2f} samples/s ({1000 * s / len(ids):.0f} ms/sample)")

def main(copies:int, size:int):
    hpa = find_hpa_data()
    if hpa is None or not (hpa/'hpav18_jpg').is_dir(): print("SKIP: ../shared/data/hpa/hpav18_jpg not found (set HPA_DATA)"); return 0
    src = hpa/'hpav18_jpg'
    real_ids = sorted({f.name.rsplit('_', 1)[0] for f in src.glob('*_red.jpg')})
    cv2.setNumThreads(1)
    print(f"{os.cpu_count()} CPUs; {len(real_ids)} real v18 samples, each served under {copies} Ids")
    bench_check(sorted(src.glob('*.jpg')))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d); ids = mirror(tmp/'mirror', src, real_ids, copies)
        srv, base = serve(tmp/'mirror')
        try: folder = bench_download(tmp, base, ids)
        finally: srv.shutdown(); srv.server_close()
        bench_png(folder, ids, tmp, size)
    return 0

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--copies', type=int, default=8); p.add_argument('--size', type=int, default=512)
    a = p.parse_args()
    sys.exit(main(a.copies, a.size))
