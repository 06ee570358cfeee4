"""Start-up: rebuilding a series' forest from its stored buckets, one pass against one call per bucket.

The live pipeline rebuilds each series' Random Cut Forest at start from its newest 1,024 closed buckets
(``DetectorBank.warm_forest``: one pass over the trees per series). The peer, measured in the same run,
is what the start-up did before: ``learn_one`` per bucket. Both end in the same forest and threshold.

    python bench/pipeline_warmup.py --series 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from rushhour.pipeline.detectors import _EPOCH, RCF_HISTORY, DetectorBank
from rushhour.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=20)
    args = ap.parse_args()
    settings = load_settings(environ={}, overrides={})
    x = np.random.default_rng(0).poisson(1000, RCF_HISTORY).astype(float)
    batched, per_bucket = DetectorBank(settings), DetectorBank(settings)
    batched.warm_forest("jit", x[:300])  # compile the kernels outside the timing
    c0 = time.process_time()
    for i in range(args.series):
        batched.warm_forest(f"s{i}", x)
    one_pass = (time.process_time() - c0) / args.series
    c0 = time.process_time()
    for i in range(args.series):
        det = per_bucket.forest(f"s{i}")
        assert det is not None
        for v in x:
            det.learn_one(_EPOCH, v)
    each = (time.process_time() - c0) / args.series
    a, b = batched.forests["s0"], per_bucket.forests["s0"]
    assert (a.n_, a.mean_, a.m2_) == (b.n_, b.mean_, b.m2_), "the two warm-ups disagree"
    print(
        f"forest warm-up from {RCF_HISTORY} buckets: one pass {one_pass * 1000:.1f} ms per series, "
        f"learn_one per bucket {each * 1000:.1f} ms ({each / one_pass:.1f}x); "
        f"10,000 series: {one_pass * 1e4:.0f} s against {each * 1e4:.0f} s of CPU"
    )


if __name__ == "__main__":
    main()
