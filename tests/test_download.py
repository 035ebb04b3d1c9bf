"""`download_v18` against a real HTTP server (pytest-httpserver) serving the shared HPA v18 JPEGs in the v18 URL
layout, with faults injected per file: 404, 500s, truncated and cut-off bodies, an HTML page with status 200, a reply
slower than the timeout, 429 with Retry-After, and a SIGKILL mid-run followed by a rerun."""
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

import hpa_fastai
from hpa_fastai.core import CHANNELS, HPALayout, find_hpa_data
from hpa_fastai.data import open_rgby
from hpa_fastai.download import download_v18

HPA = find_hpa_data(Path(__file__).parent)
V18 = HPA/'hpav18_jpg' if HPA else Path('/nonexistent')
pytestmark = pytest.mark.skipif(not V18.is_dir(), reason=f"the shared HPA v18 samples are absent ({V18}): see DEVELOPERS.md")
REAL = ['11088_89_B5_1', '30741_800_A6_1']  # The two shared v18 samples, served under many Ids
TIMEOUT = 1.5
FAST = dict(timeout=TIMEOUT, retries=3, backoff=0.01, max_wait=2., progress=False)
HTML = '<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>'


def _streamed(data:bytes, cut:bool=False, chunks:int=1, pause:float=0.):
    "A 200 reply streaming `data` in `chunks` with `pause` seconds between them; `cut`: drop the connection halfway."
    def body():
        end = len(data) // 2 if cut else len(data)
        part = -(-end // chunks)
        for i in range(0, end, part):
            if pause and i: time.sleep(pause)
            yield data[i:min(i + part, end)]
        if cut: raise ConnectionResetError('injected: connection dropped mid-body')
    return Response(body(), 200, headers={'Content-Length': str(len(data))}, content_type='image/jpeg')

ACTIONS = {
    'ok': lambda d: Response(d, 200, content_type='image/jpeg'),
    '404': lambda d: Response('<html>Not Found</html>', 404, content_type='text/html'),
    '500': lambda d: Response('Internal Server Error', 500),
    'truncated': lambda d: Response(d[:len(d) // 2], 200, content_type='image/jpeg'),  # a whole reply, half a file
    'cut': lambda d: _streamed(d, cut=True),  # Content-Length promises more than arrives
    'html': lambda d: Response(HTML, 200, content_type='text/html'),
    'slow': lambda d: (time.sleep(TIMEOUT + 0.5), Response(d, 200, content_type='image/jpeg'))[1],
    '429': lambda d: Response('Too Many Requests', 429, headers={'Retry-After': '1'}),
    '429-long': lambda d: Response('Too Many Requests', 429, headers={'Retry-After': '3600'}),
    'drip': lambda d: _streamed(d, chunks=6, pause=0.04),  # slow enough for a kill to land mid-run
}


class FaultyV18:
    "Serve the shared v18 JPEGs of `samples` ({Id: real Id}) as the v18 server does, with per-request `faults`."
    def __init__(self, server:HTTPServer, samples:dict, faults:dict|None=None, default:str='ok'):
        self.samples, self.faults, self.default = samples, faults or {}, default
        self.hits, self.lock = defaultdict(list), threading.Lock()  # (Id, colour): request times
        self.paths = []
        server.clear()
        server.expect_request(re.compile('.*')).respond_with_handler(self)

    def __call__(self, request):
        with self.lock: self.paths.append(request.path)
        m = re.fullmatch(r'/images/([0-9]+)/([A-Za-z0-9_]+)_(red|green|blue|yellow)\.jpg', request.path)
        if m is None: return Response('bad path', 400)
        key = (f"{m[1]}_{m[2]}", m[3])
        with self.lock:
            self.hits[key].append(time.monotonic()); n = len(self.hits[key]) - 1
        if key[0] not in self.samples: return ACTIONS['404'](b'')
        acts = self.faults.get(key, [])
        data = (V18/f"{self.samples[key[0]]}_{key[1]}.jpg").read_bytes()
        return ACTIONS[acts[n] if n < len(acts) else self.default](data)


@pytest.fixture(scope='module')
def server():
    s = HTTPServer(threaded=True)
    s.start()
    yield s
    s.clear(); s.stop()


def _labels_csv(path:Path, ids) -> Path:
    pd.DataFrame({'Id': list(ids), 'Target': [str(i % 28) for i in range(len(ids))]}).to_csv(path, index=False)
    return path

def _manifest(out:Path) -> pd.DataFrame:
    return pd.read_csv(out/'manifest.csv', keep_default_na=False).set_index('Id')

def _source(samples:dict, sid:str, c:str) -> bytes: return (V18/f"{samples[sid]}_{c}.jpg").read_bytes()


FAULTY = {  # Id: (real sample served, {colour: successive actions}, expected status, expected missing)
    '10000_1_A1_1': (REAL[0], {}, 'ok', ''),
    '10000_1_A1_2': (REAL[1], {'green': ['404']}, 'partial', 'green'),
    '10000_1_A1_3': (REAL[0], {'red': ['500', '500']}, 'ok', ''),
    '10000_1_A1_4': (REAL[1], {'blue': ['truncated'], 'red': ['cut']}, 'ok', ''),
    '10000_1_A1_5': (REAL[0], {'yellow': ['html'] * 9}, 'partial', 'yellow'),
    '10000_1_A1_6': (REAL[1], {'green': ['slow']}, 'ok', ''),
    '10000_1_A1_7': (REAL[0], {'red': ['429']}, 'ok', ''),
    '10000_1_A1_8': (REAL[1], {'blue': ['500'] * 9}, 'partial', 'blue'),
    '10000_1_A1_9': (REAL[0], {'green': ['429-long']}, 'ok', ''),
    '20000_7_B2_1_cr5abc': (REAL[1], {}, 'ok', ''),
}
ABSENT, BAD = '10000_1_A1_10', ['../10000_1', '10000_1/../../x', '/etc/passwd', '10000_1_A1.jpg']


@pytest.fixture(scope='module')
def faulty_run(server, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('faults')
    samples = {sid: real for sid, (real, *_) in FAULTY.items()}
    faults = {(sid, c): acts for sid, (_, f, *_) in FAULTY.items() for c, acts in f.items()}
    srv = FaultyV18(server, samples, faults)
    csv = _labels_csv(tmp/'v18.csv', [*FAULTY, ABSENT, *BAD])
    t0 = time.monotonic()
    res = download_v18(csv, tmp/'out', server.url_for('/'), jobs=8, **FAST)
    return res, srv, samples, csv, tmp/'out', time.monotonic() - t0


def test_statuses_and_manifest(faulty_run):
    res, srv, samples, csv, out, _ = faulty_run
    man = _manifest(out)
    test = {sid: (st, miss) for sid, (_, _, st, miss) in FAULTY.items()}
    assert {sid: (man.loc[sid, 'status'], man.loc[sid, 'missing']) for sid in FAULTY} == test
    assert (man.loc[ABSENT, 'status'], man.loc[ABSENT, 'missing']) == ('failed', 'red green blue yellow')
    assert man.loc[ABSENT, 'reason'].count('HTTP 404') == 4
    for b in BAD: assert man.loc[b, 'status'] == 'failed' and 'Invalid HPA v18 Id' in man.loc[b, 'reason']
    assert list(man.index) == pd.read_csv(csv)['Id'].tolist()  # every requested Id, in order
    n_ok = sum(st == 'ok' for _, _, st, _ in FAULTY.values())
    assert (res.ok, res.partial, res.failed) == (n_ok, 3, 1 + len(BAD)) and not res.complete
    assert set(res.failures) == {sid for sid, (*_, st, _) in FAULTY.items() if st != 'ok'} | {ABSENT, *BAD}
    assert res.fetched == 4 * len(FAULTY) - 3 and res.skipped == 0


def test_train_csv_holds_complete_samples_only(faulty_run):
    res, _, _, csv, out, _ = faulty_run
    src, train = pd.read_csv(csv, dtype=str), pd.read_csv(out/'train.csv', dtype=str)
    ok = [sid for sid, (*_, st, _) in FAULTY.items() if st == 'ok']
    assert train['Id'].tolist() == ok and train.merge(src, on='Id', suffixes=('', '_src')).eval('Target == Target_src').all()
    assert HPALayout(out).labels['Id'].tolist() == ok  # a dataset folder as it is


def test_files_are_whole_and_identical(faulty_run):
    _, _, samples, _, out, _ = faulty_run
    for sid, (_, _, st, miss) in FAULTY.items():
        for c in CHANNELS:
            f = out/'train'/f"{sid}_{c}.jpg"
            if c in miss.split(): assert not f.exists(), f
            else: assert f.read_bytes() == _source(samples, sid, c), f
    names = [p.name for p in (out/'train').iterdir()]
    assert not [n for n in names if n.startswith('.') or not n.endswith('.jpg')]  # no temporary file left
    assert not list(out.parent.glob('**/passwd*'))


def test_retries_and_final_failures(faulty_run):
    _, srv, _, _, out, _ = faulty_run
    man, hits = _manifest(out), srv.hits
    assert len(hits['10000_1_A1_2', 'green']) == 1 and man.loc['10000_1_A1_2', 'reason'] == 'green: HTTP 404'  # final
    assert len(hits['10000_1_A1_3', 'red']) == 3  # 500, 500, 200
    assert len(hits['10000_1_A1_4', 'blue']) == 2 and len(hits['10000_1_A1_4', 'red']) == 2  # truncated, cut: retried
    assert len(hits['10000_1_A1_5', 'yellow']) == 1  # an HTML page is final
    assert re.fullmatch(r"yellow: not an image \(starts b'<!DOCTYPE html>.*'\), Content-Type text/html.*",
                        man.loc['10000_1_A1_5', 'reason'])
    assert len(hits['10000_1_A1_6', 'green']) == 2  # timed out once
    assert len(hits['10000_1_A1_8', 'blue']) == 4 and man.loc['10000_1_A1_8', 'reason'] == 'blue: HTTP 500 (4 attempts)'


def test_retry_after(faulty_run):
    _, srv, _, _, _, elapsed = faulty_run
    h = srv.hits['10000_1_A1_7', 'red']
    assert len(h) == 2 and h[1] - h[0] >= 0.95  # Retry-After: 1, not the 0.01 s backoff
    h = srv.hits['10000_1_A1_9', 'green']
    assert len(h) == 2 and 1.9 <= h[1] - h[0] < 10  # Retry-After: 3600, capped at max_wait
    assert elapsed < 20


def test_bad_ids_never_requested(faulty_run):
    _, srv, _, _, _, _ = faulty_run
    assert srv.paths and all(p.startswith('/images/') and '..' not in p and 'passwd' not in p for p in srv.paths)
    assert len(srv.paths) == sum(len(v) for v in srv.hits.values())


def test_rerun_skips_and_png(server, faulty_run):
    _, _, samples, csv, out, _ = faulty_run
    FaultyV18(server, samples)  # the same server, now without faults
    (out/'train'/'.10000_1_A1_1_red.jpg.999-1.part').write_bytes(b'\xff\xd8\xff left by a killed run')
    damaged = out/'train'/'10000_1_A1_3_green.jpg'
    damaged.write_bytes(damaged.read_bytes()[:5000])  # cut short since (by a copy, a full disk ...): fetched again
    res = download_v18(csv, out, server.url_for('/'), jobs=4, size=128, **FAST)
    assert (res.ok, res.partial, res.failed, res.fetched) == (len(FAULTY), 0, 1 + len(BAD), 4)
    assert res.skipped == 4 * len(FAULTY) - 4 and not list((out/'train').glob('.*'))
    assert damaged.read_bytes() == _source(samples, '10000_1_A1_3', 'green')
    man = _manifest(out)
    assert (man.loc[list(FAULTY), 'png'] == 'ok').all() and (man.loc[[ABSENT, *BAD], 'png'] == '').all()
    lay = HPALayout(res.png_dir)
    assert res.png_dir == out/'train_128' and lay.train_dir == res.png_dir and lay.labels['Id'].tolist() == list(FAULTY)
    for sid in ['10000_1_A1_1', '10000_1_A1_2']:
        assert np.array_equal(open_rgby(res.png_dir/sid), open_rgby(V18/samples[sid], 128))


def _run_killable(csv:Path, out:Path, base:str) -> subprocess.Popen:
    "Start `download_v18` in a child process."
    root = str(Path(hpa_fastai.__file__).parent.parent)
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([root, os.environ.get('PYTHONPATH', '')])}
    code = (f"from hpa_fastai.download import download_v18; "
            f"download_v18({str(csv)!r}, {str(out)!r}, {base!r}, jobs=4, timeout=5, retries=2, backoff=0.01, progress=False)")
    return subprocess.Popen([sys.executable, '-c', code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_then_rerun(server, tmp_path):
    ids = [f"30000_{i}_C3_1" for i in range(12)]
    samples = {sid: REAL[i % 2] for i, sid in enumerate(ids)}
    csv = _labels_csv(tmp_path/'v18.csv', ids)
    FaultyV18(server, samples)
    whole = download_v18(csv, tmp_path/'whole', server.url_for('/'), jobs=4, **FAST)  # uninterrupted reference
    assert whole.ok == len(ids)

    srv = FaultyV18(server, samples, default='drip')
    p, out, t0 = _run_killable(csv, tmp_path/'out', server.url_for('/')), tmp_path/'out', time.monotonic()
    while len(list((out/'train').glob('*.jpg'))) < 6:
        assert p.poll() is None, p.stderr.read().decode()[-2000:]
        assert time.monotonic() - t0 < 120, 'the child never got going'
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL); p.wait()
    assert p.returncode == -signal.SIGKILL
    done = sorted(f.name for f in (out/'train').glob('*.jpg'))
    assert 6 <= len(done) < 4 * len(ids) and not (out/'manifest.csv').exists()  # the kill landed mid-run
    for f in done: assert (out/'train'/f).read_bytes() == (tmp_path/'whole'/'train'/f).read_bytes(), f
    (out/'train'/f'.{ids[-1]}_red.jpg.{p.pid}-1.part').write_bytes(b'\xff\xd8\xff' + b'\0' * 1000)  # as if cut there

    FaultyV18(server, samples)
    res = download_v18(csv, out, server.url_for('/'), jobs=4, **FAST)
    assert (res.ok, res.skipped, res.fetched) == (len(ids), len(done), 4 * len(ids) - len(done))
    names = sorted(f.name for f in (out/'train').iterdir())
    assert names == sorted(f.name for f in (tmp_path/'whole'/'train').iterdir())  # no leftover temporary file
    for n in names: assert (out/'train'/n).read_bytes() == (tmp_path/'whole'/'train'/n).read_bytes(), n
    for f in ['manifest.csv', 'train.csv']: assert (out/f).read_bytes() == (tmp_path/'whole'/f).read_bytes(), f
