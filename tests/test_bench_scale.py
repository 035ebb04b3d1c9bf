"The memory sampler of `scripts/bench_scale.py` sees the anonymous memory of a process and its children."
import importlib.util, sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1]/'scripts'/'bench_scale.py'

def _bench():
    spec = importlib.util.spec_from_file_location('bench_scale', SCRIPT)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

CHILD = """
import os, subprocess, sys, time
b = bytearray({mb} << 20)  # anonymous, touched
for i in range(0, len(b), 4096): b[i] = 1
if {spawn}: subprocess.run([sys.executable, '-c', {grand!r}])
else: time.sleep(1.5)
"""

@pytest.mark.skipif(not Path('/proc/self/smaps_rollup').exists(), reason='needs Linux /proc')
def test_sampler_sums_the_process_tree(tmp_path):
    b = _bench()
    grand = CHILD.format(mb=120, spawn=False, grand='')
    r = b.run_step('probe', [sys.executable, '-c', CHILD.format(mb=60, spawn=True, grand=grand)], [tmp_path], n=1)
    assert r['rc'] == 0
    assert 60 + 120 <= r['tree_rss_anon_mb'] < 60 + 120 + 100, r  # both processes counted, each once
    assert 120 <= r['largest_mb'] < 120 + 50, r  # the grandchild alone
    assert r['n_workers_seen'] == 1 and r['workers_torch'] == [False], r
    assert r['cpu_s'] > 0

def test_du_counts_written_bytes(tmp_path):
    (tmp_path/'f').write_bytes(b'x' * (1 << 20))
    assert (1 << 20) <= _bench()._du_bytes(tmp_path) < (1 << 20) + 65536
