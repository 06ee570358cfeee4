"""Start-up: ``DetectorBank.prime`` in a fresh process, the forest table's typed lists built by
cached compiled functions against the lists' own Python-side methods.

``prime`` readies the one-call forest path (``ForestTable``) on a throwaway forest before the
first live batch. Each measurement is a new Python process (what a restart pays), after one
untimed process has filled Numba's on-disk cache; the peer, measured in the same run, builds and
refreshes the typed lists with ``typed.List``'s own methods, as the table did before. A refresh
(a forest whose point store was resized) is timed after the prime: the peer compiles it there, in
a live batch.

    python bench/pipeline_prime.py --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

_CHILD = """
import sys, time
import numpy as np
from numba import typed
from rushhour.detect.rcf import fleet
from rushhour.pipeline.detectors import DetectorBank, RCFDetector
from rushhour.settings import load_settings

if sys.argv[1] == "python":
    def _list_of(x):
        out = typed.List.empty_list(fleet.typeof(x))
        out.append(x)
        return out

    def _append(lst, x):
        lst.append(x)

    def _put(lst, i, x):
        lst[i] = x

    fleet._list_of, fleet._append, fleet._put = _list_of, _append, _put
bank = DetectorBank(load_settings(environ={}, overrides={"detect": {"rcf": True}}))
t0 = time.perf_counter()
bank.prime()
t1 = time.perf_counter()
det = RCFDetector(bank._config("refresh"))
det.forest.update(np.zeros(det.config.sub_sample_size))
table = fleet.ForestTable()
table.slots([det.forest])
t2 = time.perf_counter()
table._refresh(0, det.forest)
t3 = time.perf_counter()
print(t1 - t0, t3 - t2)
"""


def _run(mode: str) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode], check=True, capture_output=True, text=True
    )
    prime, refresh = out.stdout.split()
    return float(prime), float(refresh)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    _run("cached")  # fill the on-disk cache outside the timing
    times: dict[str, list[tuple[float, float]]] = {"cached": [], "python": []}
    for _ in range(args.runs):
        for mode in times:  # alternately, so both see the same load
            times[mode].append(_run(mode))
    med = {m: tuple(statistics.median(t[k] for t in v) for k in (0, 1)) for m, v in times.items()}
    for mode, label in (("cached", "cached compiled functions"), ("python", "typed.List methods")):
        print(f"{label}: prime {med[mode][0]:.3f} s, refresh {med[mode][1]:.3f} s (median)")
    print(
        f"prime: {med['python'][0] / med['cached'][0]:.1f}x faster; refresh: "
        f"{med['python'][1] / med['cached'][1]:.0f}x faster"
    )


if __name__ == "__main__":
    main()
