"""The pipeline forest's time decay: detection quality and memory on generated traffic (issue 6).

For each ``--time-decay`` (records), runs the live pipeline's forest (``DetectorBank.forest``: 50
trees x 256 samples, shingle 4, no cached boxes) over ``--weeks`` of generated one-minute traffic per
seed, with labelled anomalies (``rushhour.series.generate``, 2 a day), exactly as
``RCFDetector.score_and_learn`` does in the pipeline: score, then learn; a bucket is anomalous when its
score exceeds the running ``mean + k·std`` of the scores before it (``k`` = 3, the detector's). The
first week is warm-up and not counted. Per decay it prints:

* ROC AUC of the scores (labelled buckets against the others): how well the score ranks;
* event-level precision, recall and F1 of the live episodes opened from the flags (an episode opens
  at a flag and resolves after 3 quiet buckets, as the notifier does): what the flags would announce;
* the forest's arrays at the end, allocated (kB).

    PYTHONPATH=src python bench/rcf_horizon.py [--time-decay 2560,10080,100000] [--seeds 0,1,2]
        [--weeks 8]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np

from rushhour.evaluate.events import EventMetrics, episode_starts, event_metrics, total
from rushhour.pipeline.detectors import DetectorBank
from rushhour.series.generate import generate_traffic
from rushhour.settings import load_settings

START = datetime(2026, 3, 2, tzinfo=UTC)
WEEK = 7 * 1440


def running_flags(scores: np.ndarray, warm: int, k: float) -> np.ndarray:
    """``score > mean + k·std`` of the scores observed before it (from ``warm`` on, 30 at least)."""
    s = scores[warm:]
    n = np.arange(len(s), dtype=float)  # scores observed before each one
    c1 = np.concatenate([[0.0], np.cumsum(s)[:-1]])
    c2 = np.concatenate([[0.0], np.cumsum(s * s)[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = c1 / n
        std = np.sqrt(np.maximum(c2 / n - mean * mean, 0.0))
    limit = np.where(n >= 30, mean + k * std, np.inf)
    flags = np.zeros(len(scores), dtype=bool)
    flags[warm:] = s > limit
    return flags


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties counted half)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    p = int(positive.sum())
    q = len(scores) - p
    return float((ranks[positive].sum() - p * (p + 1) / 2) / (p * q))


def run(decay: int, seeds: list[int], weeks: int) -> dict[str, float]:
    settings = load_settings(
        environ={}, overrides={"detect": {"rcf": True, "rcf_time_decay": decay}}
    )
    bank = DetectorBank(settings)
    parts: list[EventMetrics] = []
    aucs, kbs = [], []
    cpu = 0.0
    for seed in seeds:
        traffic = generate_traffic(START, weeks=weeks, seed=seed, anomalies_per_day=2.0)
        frame = traffic.frame
        x = frame["value"].to_numpy(dtype=float)
        det = bank.forest(f"svc{seed}")
        assert det is not None
        forest = det.forest
        t = time.process_time()
        scores = forest.process(x.reshape(-1, 1)).scores
        cpu += time.process_time() - t
        flags = running_flags(scores, forest.config.sub_sample_size, det.k)
        windows = []
        labelled = np.zeros(len(x), dtype=bool)
        for w in traffic.anomalies:
            inside = np.flatnonzero((frame.index >= w.start) & (frame.index <= w.end))
            if inside.size:
                windows.append((int(inside[0]), int(inside[-1])))
                labelled[inside] = True
        parts.append(event_metrics(episode_starts(flags), windows, ignore_before=WEEK))
        aucs.append(auc(scores[WEEK:], labelled[WEEK:]))
        kbs.append(forest.memory_bytes(in_use=False) / 1e3)
    m = total(parts)
    return {
        "auc": float(np.mean(aucs)),
        "precision": m.precision,
        "recall": m.recall,
        "f1": m.f1,
        "tp": m.tp,
        "fp": m.fp,
        "fn": m.fn,
        "kb": float(np.mean(kbs)),
        "us": cpu / (len(seeds) * weeks * WEEK) * 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--time-decay", default="2560,10080,100000", help="decays to compare, records")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--weeks", type=int, default=8)
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"pipeline forest (50 trees x 256 samples, shingle 4), {args.weeks} weeks of 1-minute "
        f"traffic per seed, seeds {args.seeds}; the first week not counted"
    )
    print(
        "| time decay | ROC AUC | episodes: precision | recall | F1 | tp / fp / fn | forest kB | µs/bucket |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for decay in [int(d) for d in args.time_decay.split(",")]:
        r = run(decay, seeds, args.weeks)
        print(
            f"| {decay:,} | {r['auc']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | "
            f"{r['f1']:.3f} | {r['tp']:.0f} / {r['fp']:.0f} / {r['fn']:.0f} | {r['kb']:.0f} | "
            f"{r['us']:.1f} |"
        )


if __name__ == "__main__":
    main()
