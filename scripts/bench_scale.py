#!/usr/bin/env python
"""Scale figures: generation, cache and features of N synthetic samples, run as the CLI commands, plus the loader.

Each step runs `hpa-fastai synth`, `hpa-fastai cache` or `hpa-fastai features` as a child process while a sampler
thread sums, every 0.2 s, the anonymous resident memory (RssAnon, and Pss_Anon, which splits pages shared after a
fork between the processes sharing them) of the command and all its descendants; it prints wall time, CPU time
(user+sys of the whole process tree, from getrusage of the reaped children), the load average, the peak of the
tree's memory, the largest single process and, per worker, whether torch is mapped into it (libtorch in
/proc/PID/maps), and the disk used by the step's outputs (du). `--steps loader` then times batches of `--bs` at the
cache's size from the memory-mapped cache: fastai's per-item loader and `data.CachedBatchDL`, with 0 and 2 DataLoader
workers, batch transforms left out (they run on the GPU in a training run).

Usage: python scripts/bench_scale.py --n 5000 --size 512 --cache-size 512 --workers 2 --out /work/scale_data/n5000
       [--steps synth,cache,features,loader]
       python scripts/bench_scale.py --n 31072 --cache-size 256 --steps cache,features --out /work/scale_data/n31072 \\
              --replicate-from /work/scale_data/n5000   # N samples hard-linked from a generated set: no pixels written"""
import argparse, os, resource, shutil, subprocess, sys, threading, time
from pathlib import Path

def _status_kb(pid:int, key:str) -> int:
    "The `key:` figure (kB) of /proc/PID/status, 0 when the process is gone."
    try:
        for line in open(f'/proc/{pid}/status'):
            if line.startswith(key + ':'): return int(line.split()[1])
    except OSError: pass
    return 0

def _rollup_kb(pid:int) -> tuple[int, int]:
    "(Pss_Anon, Private_Dirty) in kB of process `pid` from smaps_rollup, zeros when gone."
    d = {}
    try:
        for line in open(f'/proc/{pid}/smaps_rollup'):
            k = line.split(':')[0]
            if k in ('Pss_Anon', 'Private_Dirty'): d[k] = int(line.split()[1])
    except OSError: pass
    return d.get('Pss_Anon', 0), d.get('Private_Dirty', 0)

def _children(pid:int) -> list[int]:
    "Direct children of `pid`, from /proc/PID/task/*/children."
    out = []
    try:
        for t in os.listdir(f'/proc/{pid}/task'):
            try: out += [int(c) for c in open(f'/proc/{pid}/task/{t}/children').read().split()]
            except OSError: pass
    except OSError: pass
    return out

def process_tree(pid:int) -> list[int]:
    "`pid` and all its descendants."
    tree, todo = [], [pid]
    while todo:
        p = todo.pop(); tree.append(p); todo += _children(p)
    return tree

def _maps_torch(pid:int) -> bool:
    "Whether libtorch is mapped into process `pid` (it imported torch, or was forked from a process that did)."
    try: return 'libtorch' in open(f'/proc/{pid}/maps').read()
    except OSError: return False

class TreeSampler(threading.Thread):
    "Samples the memory of the process tree under `pid` every `every` seconds until `stop()`."
    def __init__(self, pid:int, every:float=0.2):
        super().__init__(daemon=True)
        self.pid, self.every, self._stop_ev = pid, every, threading.Event()
        self.peak_tree = self.peak_pss = self.peak_one = 0  # kB
        self.procs, self.loads = {}, []  # pid -> dict(peak RssAnon kB, torch mapped, command)
    def run(self):
        while not self._stop_ev.is_set():
            tree = process_tree(self.pid)
            anon = {p: _status_kb(p, 'RssAnon') for p in tree}
            self.peak_tree = max(self.peak_tree, sum(anon.values()))
            roll = {p: _rollup_kb(p) for p in tree}
            self.peak_pss = max(self.peak_pss, sum(v[0] for v in roll.values()))
            self.peak_one = max(self.peak_one, max(anon.values(), default=0))
            for p, a in anon.items():
                d = self.procs.setdefault(p, dict(peak=0, pss=0, priv=0, torch=None, checked=0.))
                d['peak'], d['pss'], d['priv'] = max(d['peak'], a), max(d['pss'], roll[p][0]), max(d['priv'], roll[p][1])
                if a and not d['torch'] and time.monotonic() - d['checked'] > 1:  # a process may import torch late
                    d['torch'], d['checked'] = _maps_torch(p), time.monotonic()
            self.loads.append(os.getloadavg()[0])
            self._stop_ev.wait(self.every)
    def stop(self): self._stop_ev.set(); self.join()

def _du_bytes(*paths) -> int:
    "Disk used (allocated blocks) by `paths`."
    return sum(int(subprocess.run(['du', '-sB1', str(p)], capture_output=True, text=True).stdout.split()[0])
               for p in paths if Path(p).exists())

def _free_gb(path) -> float: return shutil.disk_usage(path).free / 1e9

def run_step(name:str, cmd:list, outputs:list, n:int) -> dict:
    "Run `cmd`, sampling its process tree; the step's figures."
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    s = TreeSampler(proc.pid); s.start()
    log = proc.stdout.read(); rc = proc.wait()
    wall = time.perf_counter() - t0; s.stop()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if rc: print(f"{name}: `{' '.join(cmd)}` exited {rc}:\n{log[-3000:]}")
    workers = [d for p, d in s.procs.items() if p != proc.pid]
    main = s.procs.get(proc.pid, dict(peak=0, pss=0, priv=0, torch=None))
    res = dict(step=name, n=n, rc=rc, wall_s=wall, cpu_s=cpu, cpu_ms_per_sample=1e3 * cpu / n,
               load_start=load0, load_mean=sum(s.loads) / max(1, len(s.loads)),
               tree_rss_anon_mb=s.peak_tree / 1024, tree_pss_anon_mb=s.peak_pss / 1024, largest_mb=s.peak_one / 1024,
               main_mb=main['peak'] / 1024, main_torch=main['torch'],
               worker_mb=max((d['peak'] for d in workers), default=0) / 1024, n_workers_seen=len(workers),
               worker_pss_mb=max((d['pss'] for d in workers), default=0) / 1024,
               worker_private_mb=max((d['priv'] for d in workers), default=0) / 1024,
               workers_torch=sorted({d['torch'] for d in workers if d['torch'] is not None}),
               disk_bytes=_du_bytes(*outputs))
    res['disk_kb_per_sample'] = res['disk_bytes'] / 1024 / n
    return res

def print_step(r:dict):
    print(f"{r['step']:9s} N={r['n']:6d} rc={r['rc']} wall {r['wall_s']:7.1f} s  CPU {r['cpu_s']:7.1f} s "
          f"({r['cpu_ms_per_sample']:.1f} ms/sample)  load {r['load_start']:.1f}->{r['load_mean']:.1f} (mean)\n"
          f"          peak RssAnon tree {r['tree_rss_anon_mb']:.0f} MB (Pss_Anon {r['tree_pss_anon_mb']:.0f} MB), "
          f"largest process {r['largest_mb']:.0f} MB; main {r['main_mb']:.0f} MB (torch mapped: {r['main_torch']}), "
          f"per worker {r['worker_mb']:.0f} MB (Pss_Anon {r['worker_pss_mb']:.0f} MB, private {r['worker_private_mb']:.0f} MB) x {r['n_workers_seen']} (torch mapped: {r['workers_torch']})\n"
          f"          disk {r['disk_bytes'] / 1e9:.2f} GB ({r['disk_kb_per_sample']:.0f} kB/sample)", flush=True)

def loader_figures(data:Path, cache_dir:Path, bs:int, n_batches:int, workers=(0, 2)) -> list[tuple]:
    "(loader, workers, batches/s, img/s) of the train loader at the cache's size, batch transforms left out."
    import torch
    from fasttransform import Pipeline
    from hpa_fastai.core import read_labels
    from hpa_fastai.data import RGBYCache, hpa_dataloaders
    torch.set_num_threads(1)
    cache, df = RGBYCache(cache_dir), read_labels(data/'train.csv')
    out = []
    for fast in (False, True):
        for nw in workers:
            dls = hpa_dataloaders(data/'train', df, size=cache.size, bs=bs, cache=cache, aug=False, fast=fast,
                                  num_workers=nw, device='cpu')
            dl = dls.train
            dl.after_batch = Pipeline([])  # IntToFloat + Normalize run on the GPU in training: time the loader alone
            it = iter(dl); next(it)  # start the workers
            t0, k = time.perf_counter(), 0
            for xb, yb in it:
                k += 1
                if k >= n_batches: break
            dt = time.perf_counter() - t0
            del it
            name = 'CachedBatchDL' if fast else 'per-item TfmdDL'
            out.append((name, nw, k / dt, k * bs / dt))
            print(f"loader {name:16s} workers {nw}: {k / dt:6.2f} batches/s = {k * bs / dt:7.0f} img/s "
                  f"(bs {bs}, {cache.size}px, {k} batches, load {os.getloadavg()[0]:.1f})", flush=True)
    return out

def replicate(src:Path, out:Path, n:int):
    "Make an `n`-sample dataset in `out` by hard-linking the samples of the dataset `src` in turn (no pixels written)."
    import pandas as pd
    df = pd.read_csv(src/'train.csv', dtype=str)
    (out/'train').mkdir(parents=True, exist_ok=True)
    rows = []
    for k in range(n):
        sid, target = df.iloc[k % len(df)]
        new = f"{sid}-r{k // len(df)}"
        for c in ('red', 'green', 'blue', 'yellow'):
            dst = out/'train'/f"{new}_{c}.png"
            if not dst.exists(): os.link(src/'train'/f"{sid}_{c}.png", dst)
        rows.append((new, target))
    pd.DataFrame(rows, columns=['Id', 'Target']).to_csv(out/'train.csv', index=False)

def main(n:int, size:int, cache_size:int, workers:int, out:Path, steps:list, bs:int, n_batches:int, min_free_gb:float,
         replicate_from:Path|None=None, loader_workers=(0, 2)):
    out.mkdir(parents=True, exist_ok=True)
    if replicate_from is not None:
        t0 = time.perf_counter(); replicate(replicate_from, out, n)
        print(f"replicated the {replicate_from} samples into {n} hard-linked samples in {time.perf_counter() - t0:.0f} s", flush=True)
    cli = [sys.executable, '-m', 'hpa_fastai.cli'] if shutil.which('hpa-fastai') is None else ['hpa-fastai']
    cache_dir, feats = out/f'cache_{cache_size}', out/'features.parquet'
    need = dict(synth=n * 0.3e6 / 1e9 * size ** 2 / 512 ** 2, cache=n * 4 * cache_size ** 2 / 1e9, features=0.01, loader=0)
    print(f"bench_scale: N={n}, images {size}px, cache {cache_size}px, {workers} workers, into {out}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    results = []
    for st in steps:
        free = _free_gb(out)
        if free - need[st] < min_free_gb:
            print(f"SKIP {st}: {free:.1f} GB free, it needs about {need[st]:.1f} GB and {min_free_gb} GB must stay free"); continue
        if st == 'synth':
            r = run_step(st, cli + ['synth', '--out', str(out), '--n', str(n), '--size', str(size), '--workers', str(workers)],
                         [out/'train', out/'train.csv'], n)
        elif st == 'cache':
            r = run_step(st, cli + ['cache', str(out), '--size', str(cache_size), '--workers', str(workers), '--out', str(cache_dir)],
                         [cache_dir], n)
        elif st == 'features':
            r = run_step(st, cli + ['features', str(out), '--out', str(feats), '--workers', str(workers)], [feats], n)
        elif st == 'loader':
            loader_figures(out, cache_dir, bs, n_batches, loader_workers); continue
        else: raise SystemExit(f"Unknown step {st!r}: choose from synth, cache, features, loader")
        print_step(r); results.append(r)
        if r['rc']: return 1
    return 0

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=5000, help='samples')
    p.add_argument('--size', type=int, default=512, help='side of the generated images')
    p.add_argument('--cache-size', type=int, default=512, help='side of the cached images')
    p.add_argument('--workers', type=int, default=os.cpu_count(), help='processes of each command')
    p.add_argument('--out', type=Path, required=True, help='dataset folder (outside the repo)')
    p.add_argument('--steps', default='synth,cache,features,loader', help='comma-separated: synth, cache, features, loader')
    p.add_argument('--bs', type=int, default=64); p.add_argument('--batches', type=int, default=40, help='batches timed per loader')
    p.add_argument('--loader-workers', default='0,2', help='comma-separated DataLoader worker counts timed by the loader step')
    p.add_argument('--min-free-gb', type=float, default=8., help='skip a step that would leave less disk free')
    p.add_argument('--replicate-from', type=Path, default=None,
                   help='instead of generating, hard-link the samples of this dataset in turn up to N (for cache/features at large N)')
    a = p.parse_args()
    sys.exit(main(a.n, a.size, a.cache_size, a.workers, a.out, a.steps.split(','), a.bs, a.batches, a.min_free_gb, a.replicate_from,
                  tuple(int(w) for w in a.loader_workers.split(','))))
