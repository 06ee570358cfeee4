"""Where a pipeline forest's time goes per series and bucket, and the one-call table path.

For forests of the pipeline's configuration warmed with 300 and 10,000 buckets: CPU per forest of
score + attribution, score alone and the update, one forest at a time; then score + attribution of
all forests in one call (ForestTable, ``--workers`` threads) against one call per forest.

    python bench/rcf_fleet.py --forests 100 --workers 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rushhour.pipeline.detectors import DetectorBank
from rushhour.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--forests", type=int, default=100)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    settings = load_settings(
        environ={}, overrides={"detect": {"rcf": True}, "pipeline": {"workers": args.workers}}
    )
    bank = DetectorBank(settings)
    bank.prime()
    rng = np.random.default_rng(1)
    for warm in (300, 10_000):
        keys = [f"k{warm}_{i}" for i in range(args.forests)]
        history = rng.poisson(1000, size=warm).astype(float)
        for key in keys:
            bank.warm_forest(key, history)
        dets = [bank.forests[k] for k in keys]
        n = len(dets)
        for _ in range(2):
            x = rng.poisson(1000, size=n).astype(float)
            c0 = time.process_time()
            for det, v in zip(dets, x.tolist(), strict=True):
                det.forest.score_and_explain([v])
            c1 = time.process_time()
            bank._judge_many(dets, x.tolist())
            c2 = time.process_time()
            for det, v in zip(dets, x.tolist(), strict=True):
                det.forest.score([v])
            c3 = time.process_time()
            for det, v in zip(dets, x.tolist(), strict=True):
                det.forest.update([v])
            c4 = time.process_time()
            us = 1e6 / n
            print(
                f"warm {warm}: score+attribution {(c1 - c0) * us:.0f} us, in one call "
                f"{(c2 - c1) * us:.0f} us; score alone {(c3 - c2) * us:.0f} us; "
                f"update {(c4 - c3) * us:.0f} us (CPU per forest)"
            )


if __name__ == "__main__":
    main()
