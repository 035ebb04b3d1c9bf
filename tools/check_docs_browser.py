#!/usr/bin/env python
"""Open the built docs and a training report in headless Chromium, as a reader would, and check each page.

Every page of `_docs/` (built first when absent) and a `report.html` must load with all their images decoded, their
stylesheets applied, and no console error, uncaught exception or failed request. A screenshot of the report's first
screen (≤ 300 KB) is written where `--shot` says: `--shot nbs/images/report_first_screen.png` refreshes the one the
docs' index shows (the default writes none, so that a test run leaves the tree as it was).

Chromium is driven through its DevTools protocol over `--remote-debugging-pipe` (JSON messages on file descriptors 3
and 4): no extra package, no port, and it reports what `--dump-dom`/`--screenshot` cannot (console errors, failed
loads, which images did not decode). Chromium comes from Debian's packages (`apt-get install -y chromium`); where no
Chromium is found the script prints SKIP and exits 0.

`python tools/check_docs_browser.py [--docs _docs] [--report REPORT.html] [--shot PATH]`: without `--report`, a
tiny model is trained on synthetic data (about a minute on one core) and its report written to a temporary folder."""
import argparse, base64, fcntl, json, os, select, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOT = ROOT/'nbs'/'images'/'report_first_screen.png'
MAX_SHOT = 300_000
_BROWSERS = ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')

# What a page shows once loaded: images that did not decode, images in all, stylesheets, body text length
_PAGE_STATE = """(() => ({
  broken: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.currentSrc.slice(0, 120) || i.outerHTML.slice(0, 120)),
  images: document.images.length,
  sheets: document.styleSheets.length,
  text: document.body ? document.body.innerText.length : 0,
  title: document.title }))()"""

def find_chromium() -> str|None:
    "Path of a Chromium (or Chrome) executable, or None"
    return next((p for p in map(shutil.which, _BROWSERS) if p), None)

class Chromium:
    "A headless Chromium driven over `--remote-debugging-pipe`: `call` sends a DevTools command, events are collected"
    def __init__(self, exe:str, width:int=1280, height:int=800):
        self.profile = tempfile.mkdtemp(prefix='chromium-profile-')
        to_b, self._w = os.pipe()   # we write commands, the browser reads fd 3
        self._r, from_b = os.pipe() # the browser writes fd 4, we read
        def fds():  # in the child: the pipe ends onto fds 3 and 4, through fds above 9 so neither overwrites the other
            a, c = fcntl.fcntl(to_b, fcntl.F_DUPFD, 10), fcntl.fcntl(from_b, fcntl.F_DUPFD, 10)
            os.dup2(a, 3); os.dup2(c, 4)
        args = [exe, '--headless', '--remote-debugging-pipe', '--no-first-run', '--no-default-browser-check',
                '--disable-gpu', '--disable-extensions', '--hide-scrollbars', '--mute-audio', f'--user-data-dir={self.profile}',
                f'--window-size={width},{height}',
                '--no-sandbox']  # only our own local files are opened; as root, and on CI runners, the sandbox fails to start
        self.proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_b); os.close(from_b)
        self._buf, self._id, self.events = b'', 0, []

    def _read(self, timeout:float) -> dict|None:
        while b'\0' not in self._buf:
            if not select.select([self._r], [], [], timeout)[0]: return None
            chunk = os.read(self._r, 1 << 20)
            if not chunk: raise RuntimeError('Chromium closed the DevTools pipe (did it crash?)')
            self._buf += chunk
        msg, self._buf = self._buf.split(b'\0', 1)
        return json.loads(msg)

    def call(self, method:str, session:str|None=None, timeout:float=30, **params) -> dict:
        "Send a DevTools command and return its result (events that arrive meanwhile go to `events`)"
        self._id += 1
        msg = {'id': self._id, 'method': method, 'params': params} | ({'sessionId': session} if session else {})
        os.write(self._w, json.dumps(msg).encode() + b'\0')
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            m = self._read(left)
            if m is None: break
            if m.get('id') == self._id:
                if 'error' in m: raise RuntimeError(f"{method}: {m['error'].get('message')}")
                return m.get('result', {})
            self.events.append(m)
        raise TimeoutError(f'{method}: no answer from Chromium in {timeout} s')

    def wait_event(self, method:str, session:str, timeout:float=30) -> bool:
        "Wait for event `method` of `session`; False on timeout"
        end, seen = time.monotonic() + timeout, 0
        while True:
            for m in self.events[seen:]:
                if m.get('method') == method and m.get('sessionId') == session: return True
            seen = len(self.events)
            left = end - time.monotonic()
            m = self._read(left) if left > 0 else None
            if m is None: return False
            self.events.append(m)

    def close(self):
        try: self.call('Browser.close', timeout=5)
        except Exception: pass
        try: self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        os.close(self._w); os.close(self._r)
        shutil.rmtree(self.profile, ignore_errors=True)

def _problems(events:list, session:str) -> list:
    "Console errors, uncaught exceptions and failed requests among a page's DevTools `events`"
    res = []
    for m in (e for e in events if e.get('sessionId') == session):
        p = m.get('params', {})
        if m['method'] == 'Runtime.exceptionThrown':
            d = p['exceptionDetails']; res.append(f"uncaught exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif m['method'] == 'Runtime.consoleAPICalled' and p.get('type') in ('error', 'assert'):
            res.append('console.error: ' + ' '.join(str(a.get('value', a.get('description', ''))) for a in p.get('args', [])))
        elif m['method'] == 'Log.entryAdded' and p['entry'].get('level') == 'error':
            res.append(f"console: {p['entry'].get('text')} {p['entry'].get('url', '')}".strip())
        elif m['method'] == 'Network.loadingFailed' and not p.get('canceled'):
            res.append(f"request failed: {p.get('errorText')} ({p.get('type')})")
    return res

def check_page(b:Chromium, url:str, shot:Path|None=None) -> tuple:
    "Load `url` in a fresh tab: (problems, page state); a PNG of the first screen goes to `shot` when given"
    target = b.call('Target.createTarget', url='about:blank')['targetId']
    s = b.call('Target.attachToTarget', targetId=target, flatten=True)['sessionId']
    try:
        for dom in ('Page', 'Runtime', 'Log', 'Network'): b.call(f'{dom}.enable', session=s)
        b.call('Page.navigate', session=s, url=url)
        loaded = b.wait_event('Page.loadEventFired', s, timeout=60)
        state = b.call('Runtime.evaluate', session=s, expression=_PAGE_STATE, returnByValue=True)['result']['value']
        problems = _problems(b.events, s) + ([] if loaded else ['no load event within 60 s'])
        problems += [f'image not loaded: {src}' for src in state['broken']]
        if not state['sheets']: problems.append('no stylesheet applied')
        if state['text'] < 50: problems.append(f"page nearly empty ({state['text']} characters of text)")
        if shot is not None: save_screenshot(b, s, shot)
        return problems, state
    finally:
        b.call('Target.closeTarget', targetId=target)

def save_screenshot(b:Chromium, session:str, path:Path, limit:int=MAX_SHOT):
    "PNG of the viewport at `path`, scaled down until it is at most `limit` bytes; written atomically"
    png = b''
    for scale in (1.0, 0.85, 0.7, 0.6, 0.5):
        clip = {'x': 0, 'y': 0, 'width': 1280, 'height': 800, 'scale': scale}
        png = base64.b64decode(b.call('Page.captureScreenshot', session=session, format='png', clip=clip)['data'])
        if len(png) <= limit: break
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_bytes(png); os.replace(tmp, path)

def make_report(folder:Path) -> Path:
    "Train a tiny model on synthetic data in `folder` and write its report; returns `report.html`'s path"
    import torch
    from hpa_fastai.synth import make_synthetic_dataset
    from hpa_fastai.run import train_hpa
    from hpa_fastai.report import write_report
    torch.set_num_threads(1)
    data = make_synthetic_dataset(folder/'data', n=300, size=64, seed=0, progress=False)
    train_hpa(data, folder/'model', size=64, epochs=3, arch='resnet_tiny', pretrained=False, progress=False, precision=None)
    return write_report(folder/'model')

def check_all(exe:str, pages:list, report:Path, shot:Path|None) -> list:
    "Problems of each page of `pages` and of `report` (screenshot of its first screen to `shot`), as 'name: problem'"
    b, errs = Chromium(exe), []
    try:
        b.call('Target.setDiscoverTargets', discover=False)
        for p in [*pages, report]:
            problems, state = check_page(b, Path(p).resolve().as_uri(), shot if p == report else None)
            print(f"{'ok  ' if not problems else 'FAIL'} {p} ({state['images']} images, title {state['title']!r})")
            errs += [f'{p}: {e}' for e in problems]
    finally:
        b.close()
    return errs

def main(argv=None) -> int:
    a = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    a.add_argument('--docs', type=Path, default=ROOT/'_docs', help='built docs (built with tools/build_docs.py when absent)')
    a.add_argument('--report', type=Path, help='a report.html to check (default: train a tiny model and write one)')
    a.add_argument('--shot', type=Path, help=f"write a PNG of the report's first screen here (the docs show {SHOT.relative_to(ROOT)})")
    args = a.parse_args(argv)
    exe = find_chromium()
    if exe is None:
        print(f"SKIP: no Chromium found ({', '.join(_BROWSERS)}); install it with `apt-get install -y chromium`"); return 0
    if not (args.docs/'index.html').exists():
        sys.path.insert(0, str(ROOT/'tools')); import build_docs; build_docs.build(out=args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        report = args.report or make_report(Path(tmp))
        if not Path(report).is_file(): print(f"FAIL: no report at {report}"); return 1
        shot = args.shot
        errs = check_all(exe, sorted(args.docs.glob('*.html')), Path(report), shot)
    for e in errs: print(f'BROKEN: {e}')
    if shot and shot.exists(): print(f"report's first screen: {shot} ({shot.stat().st_size/1e3:.0f} KB)")
    print(f"FAIL: {len(errs)} problem(s)" if errs else 'browser check: every page loaded with its images and no console error')
    return 1 if errs else 0

if __name__ == '__main__': sys.exit(main())
