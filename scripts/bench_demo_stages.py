"""Where the main job's time goes besides its epochs: each stage of `hpa-fastai demo`, timed in order, in one process.

    python scripts/bench_demo_stages.py                     # the demo's 5,000 + 300 samples, 1 epoch
    python scripts/bench_demo_stages.py --epochs 2 --n 1000

The stages are the demo's, called as it calls them (with its settings, on a fresh synthetic dataset in a temporary
folder): generating the samples, caching them with the ten features, the summary and gallery, the epoch plan (timed
batches), `train_hpa` split by a callback into its setup (data, learner), its epochs and what follows them (TTA on the
validation set, thresholds, tables, export), then predicting the test folder with TTA, scoring it and the report.
Everything but the epochs is the job's fixed cost: the budget's epochs are what remains of `--minutes` after it.
"""
import argparse, os, sys, tempfile, time, warnings
from pathlib import Path

warnings.filterwarnings('ignore')
import torch
from fastai.callback.core import Callback

from hpa_fastai.cli import DEMO_EPOCHS, DEMO_FIXED_AFTER, class_summary, demo_settings, predict
from hpa_fastai.data import class_gallery
from hpa_fastai.metrics import score_submission
from hpa_fastai.report import write_report
from hpa_fastai.run import plan_epochs, prepare_data, train_hpa
from hpa_fastai.synth import make_synthetic_dataset
from hpa_fastai.train import cpu_model


class FitTimes(Callback):
    "Wall-clock times at the start and the end of the fit."
    order = 0
    def before_fit(self): self.start = time.time()
    def after_fit(self): self.end = time.time()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--n', type=int, default=5000, help='labelled samples (the demo: 5000)')
    p.add_argument('--n-test', type=int, default=300, help='held-out test samples (the demo: 300)')
    p.add_argument('--epochs', type=int, default=1, help='epochs to train (their time is reported apart)')
    p.add_argument('--workers', type=int, default=os.cpu_count() or 1, help='processes and torch threads (the demo: all cores)')
    a = p.parse_args(argv)
    rows, t = [], [time.time()]
    def lap(name, note=''):
        now = time.time(); rows.append((name, now - t[0], note)); t[0] = now
    with tempfile.TemporaryDirectory() as d:
        out = Path(d); data = out/'synth'
        make_synthetic_dataset(out=data, n=a.n, size=256, seed=0, n_test=a.n_test, n_workers=a.workers, progress=False)
        lap('generate the samples at 256 px')
        prep = prepare_data(data, 128, features=True, workers=a.workers, progress=False)
        lap('cache at 128 px and the ten features')
        class_summary(prep['labels']).to_csv(out/'class_summary.csv')
        class_gallery(prep['layout'].train_dir, prep['labels'], cache=prep['cache'], fname=out/'gallery.png')
        lap('summary and gallery')
        torch.set_num_threads(a.workers)
        s = demo_settings(epochs=a.epochs, workers=a.workers)
        plan = plan_epochs(prep, s, 600, DEMO_EPOCHS, n_test=a.n_test, fixed_after=DEMO_FIXED_AFTER)
        lap('the epoch plan (timed batches)', f'{plan.epoch_seconds:.1f} s an epoch, {plan.after_seconds:.0f} s after training estimated')
        fit = FitTimes()
        t_train = time.time()
        train_hpa(data, out/'model', s, progress=False, cbs=[fit])
        end = time.time()
        rows.append(('train_hpa before its first epoch', fit.start - t_train, 'data, learner'))
        rows.append((f'{a.epochs} epoch(s)', fit.end - fit.start, f'{(fit.end - fit.start) / a.epochs:.1f} s an epoch'))
        rows.append(('after the epochs: TTA on valid, thresholds, outputs', end - fit.end, ''))
        t[0] = end
        predict(out/'model', data/'test', out/'test_preds.csv', submission=data/'sample_submission.csv',
                submission_out=out/'submission.csv', tta=True, quiet=True)
        score_submission(out/'submission.csv', data/'test_solution.csv')
        lap('predict the test folder with TTA and score it')
        write_report(out/'model', data)
        lap('report')
    fixed = sum(sec for name, sec, _ in rows if 'epoch(s)' not in name)
    print(f"CPU: {cpu_model()}, {a.workers} processes / torch threads; {a.n} + {a.n_test} samples\n")
    for name, sec, note in rows: print(f"{name:55s} {sec:7.1f} s  {note}")
    print(f"\n{'fixed cost (everything but the epochs)':55s} {fixed:7.1f} s")
    return 0


if __name__ == '__main__': sys.exit(main())
