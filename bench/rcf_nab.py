"""rushhour's RCF on the NAB development subset, with AWS's NAB settings, against AWS's published run.

Runs the streaming forest (100 trees, 256 samples, time decay 100,000, shingle 1, score / 8, as AWS's
Kinesis RANDOM_CUT_FOREST run for NAB) over every file of /work/shared/nab/data, writes NAB-format result
CSVs (timestamp,value,anomaly_score) to a temporary directory, and scores them and the published
reference results (reference/randomCutForest) with the same scorer and optimized thresholds.

The scorer is the evaluate area's (rushhour.evaluate.nab) when this checkout has it, else loaded by
path from the evaluate worktree when that exists (``--scorer PATH``); otherwise the minimal scorer below (same published rules,
but its optimizer only tries 2,000 threshold quantiles: it gives the reference 48.83 standard instead
of the published 49.53, so compare rushhour with the reference *as scored in the same run*).

    PYTHONPATH=src python bench/rcf_nab.py [--seeds 1,2,3] [--keep DIR]
        [--trees 100] [--time-decay 100000] [--shingle 1]   (the pipeline's: 50, 10080, 4)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

NAB = Path("/work/shared/nab")
EVALUATE = Path("/work/wt-evaluate/src/rushhour/evaluate/nab.py")
PROFILES = {
    "standard": (1.0, 0.11, 1.0),
    "reward_low_FP_rate": (1.0, 0.22, 1.0),
    "reward_low_FN_rate": (1.0, 0.11, 2.0),
}


def run_forest(
    data: Path,
    out: Path,
    seed: int,
    *,
    trees: int = 100,
    time_decay: int = 100_000,
    shingle: int = 1,
) -> float:
    from rushhour.detect.rcf import RandomCutForest, RCFConfig

    started = time.perf_counter()
    for csv in sorted(data.glob("*/*.csv")):
        frame = pd.read_csv(csv)
        forest = RandomCutForest(
            RCFConfig(
                number_of_trees=trees,
                sub_sample_size=256,
                time_decay=time_decay,
                shingle_size=shingle,
                seed=seed,
            )
        )
        scores = forest.process(frame[["value"]].to_numpy(dtype=float)).scores / 8.0
        target = out / csv.parent.name / f"rushhour_{csv.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(
            {"timestamp": frame["timestamp"], "value": frame["value"], "anomaly_score": scores}
        ).to_csv(target, index=False)
    return time.perf_counter() - started


# -- scoring ------------------------------------------------------------------------------------
def load_evaluate(path: Path) -> ModuleType | None:
    try:  # merged into this checkout
        return importlib.import_module("rushhour.evaluate.nab")
    except ImportError:
        pass
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("nab_scorer_from_evaluate", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _sigmoid(y: np.ndarray) -> np.ndarray:
    return np.where(y >= 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 3.0))) - 1.0)


def _rows(ts: np.ndarray, windows: list[list[str]]) -> tuple[np.ndarray, np.ndarray, int]:
    """Window number (-1 outside, -2 probation) and sigmoid term of each row."""
    n = len(ts)
    window = np.full(n, -1)
    sig = np.full(n, -1.0)
    idx = np.arange(n)
    ranges = []
    for a, b in windows:
        lo = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(a)), "left"))
        hi = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(b)), "right")) - 1
        if hi >= lo:
            ranges.append((lo, hi))
    max_tp = float(_sigmoid(np.array([-1.0]))[0])
    prev: tuple[int, float] | None = None
    cursor = 0
    for k, (lo, hi) in enumerate(ranges):
        if prev is not None:
            r, w = prev
            sig[cursor:lo] = _sigmoid((idx[cursor:lo] - r) / w)
        width = float(hi - lo + 1)
        window[lo : hi + 1] = k
        sig[lo : hi + 1] = _sigmoid(-(hi - idx[lo : hi + 1] + 1) / width) / max_tp
        prev, cursor = (hi, width), hi + 1
    if prev is not None:
        r, w = prev
        sig[cursor:] = _sigmoid((idx[cursor:] - r) / w)
    window[: min(math.floor(0.15 * n), 750)] = -2
    inside = window >= 0
    kept, dense = np.unique(window[inside], return_inverse=True)
    window[inside] = dense
    return window, sig, len(kept)


def minimal_score(
    files: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]], weights: tuple[float, float, float]
) -> float:
    """NAB's normalized score with the best global threshold (sweep over candidate thresholds)."""
    tp_w, fp_w, fn_w = weights
    n_windows = sum(f[2] for f in files)
    null = -fn_w * n_windows
    perfect = tp_w * n_windows
    candidates = np.unique(np.concatenate([f[3][f[0] != -2] for f in files]))
    if len(candidates) > 2000:
        candidates = np.unique(np.quantile(candidates, np.linspace(0, 1, 2000)))
    best = -math.inf
    for th in np.r_[candidates, np.inf]:
        raw = 0.0
        for window, sig, nw, scores in files:
            det = (window != -2) & (scores >= th)
            raw += fp_w * sig[det & (window == -1)].sum()
            for k in range(nw):
                hits = np.flatnonzero(det & (window == k))
                raw += tp_w * sig[hits[0]] if hits.size else -fn_w
        best = max(best, raw)
    return 100.0 * (best - null) / (perfect - null)


def score_dir(results: Path, prefix: str, scorer: ModuleType | None) -> dict[str, float]:
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    prepared: list[Any] = []
    minimal: list[tuple[np.ndarray, np.ndarray, int, np.ndarray]] = []
    for key, windows in sorted(labels.items()):
        category, name = key.split("/")
        path = results / category / f"{prefix}_{name}"
        frame = pd.read_csv(path)
        ts = pd.to_datetime(frame["timestamp"]).to_numpy()
        scores = frame["anomaly_score"].to_numpy(dtype=float)
        if scorer is not None:
            wins = [
                (np.datetime64(pd.Timestamp(a)), np.datetime64(pd.Timestamp(b))) for a, b in windows
            ]
            prepared.append(scorer.prepare_file(key, ts, scores, wins))
        else:
            window, sig, nw = _rows(ts, windows)
            minimal.append((window, sig, nw, scores))
    out = {}
    for profile, weights in PROFILES.items():
        if scorer is not None:
            prof = next(p for p in scorer.PROFILES if p.name == profile)
            out[profile] = float(scorer.optimize(prepared, prof).normalized)
        else:
            out[profile] = minimal_score(minimal, weights)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1")
    parser.add_argument("--scorer", type=Path, default=EVALUATE)
    parser.add_argument("--minimal", action="store_true", help="use the minimal scorer")
    parser.add_argument("--keep", type=Path, help="write result CSVs here instead of a temp dir")
    parser.add_argument("--trees", type=int, default=100, help="trees per forest (AWS's NAB: 100)")
    parser.add_argument(
        "--time-decay", type=int, default=100_000, help="time decay in records (AWS's NAB: 100,000)"
    )
    parser.add_argument("--shingle", type=int, default=1, help="shingle size (AWS's NAB: 1)")
    args = parser.parse_args()
    print(f"forest: {args.trees} trees, time decay {args.time_decay:,}, shingle {args.shingle}")
    scorer = None if args.minimal else load_evaluate(args.scorer)
    print(f"scorer: {scorer.__file__ if scorer else 'minimal (this script)'}")
    reference = score_dir(NAB / "reference" / "randomCutForest", "randomCutForest", scorer)
    print("AWS reference (published): " + ", ".join(f"{k} {v:.2f}" for k, v in reference.items()))
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            out = args.keep or Path(tmp)
            secs = run_forest(
                NAB / "data",
                out,
                seed,
                trees=args.trees,
                time_decay=args.time_decay,
                shingle=args.shingle,
            )
            ours = score_dir(out, "rushhour", scorer)
        runs.append(ours)
        print(
            f"rushhour seed {seed} ({secs:.1f}s): "
            + ", ".join(f"{k} {v:.2f} ({v - reference[k]:+.2f})" for k, v in ours.items())
        )
    if len(runs) > 1:
        mean = {k: float(np.mean([r[k] for r in runs])) for k in PROFILES}
        print(
            "rushhour mean: "
            + ", ".join(f"{k} {v:.2f} ({v - reference[k]:+.2f})" for k, v in mean.items())
        )


if __name__ == "__main__":
    main()
