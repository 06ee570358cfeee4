"""Raw flow-log ingest through the live path: read -> points -> bucketizer -> scores -> one commit.

Peer measured in the same run, for the ratio: a bare polars scan plus group-by of the same file into
1-minute counts per action (what any ingest must at least do).

    POLARS_MAX_THREADS=1 python bench/live_ingest.py --minutes 1440 --per-minute 2000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from rushhour.ingest.synthesize import flowlog_blocks
from rushhour.pipeline.clock import SystemClock
from rushhour.pipeline.detectors import DetectorBank
from rushhour.pipeline.processor import Batch, Processor
from rushhour.pipeline.readers import read_points_file
from rushhour.settings import load_settings
from rushhour.store import open_store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=int, default=1440)
    ap.add_argument("--per-minute", type=int, default=2000)
    ap.add_argument("--rcf", action="store_true", help="also run the per-series forests")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "flow.log"
    starts = 1_772_409_600 + 60 * np.arange(args.minutes, dtype=np.int64)
    counts = np.full(args.minutes, args.per_minute, dtype=np.int64)
    with path.open("wb") as fh:
        for block in flowlog_blocks(starts, counts, 60, seed=1):
            fh.write(block)
    records = int(counts.sum())
    size = path.stat().st_size

    t0, c0 = time.perf_counter(), time.process_time()
    frame = (
        pl.scan_csv(path, separator=" ", has_header=False, new_columns=[f"f{i}" for i in range(14)])
        .filter(pl.col("f13") == "OK")
        .select((pl.col("f10") // 60).alias("minute"), pl.col("f12").alias("action"))
        .group_by(["minute", "action"])
        .len()
        .collect()
    )
    peer_wall, peer_cpu = time.perf_counter() - t0, time.process_time() - c0

    settings = load_settings(
        environ={}, overrides={"data_dir": str(tmp), "detect": {"rcf": args.rcf}}
    )
    store = open_store(settings.store_url())
    processor = Processor(settings, store, DetectorBank(settings), SystemClock())
    processor.restore()
    t0, c0 = time.perf_counter(), time.process_time()
    points = read_points_file(path, "auto", path.name)
    t_read = time.process_time() - c0
    outcome = processor.process(Batch(source="bench", points=points, dedupe="bench"))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    stored = sum(r["total"] for r in store.series_summary())
    print(
        f"flow log: {records:,} records, {size / 1e6:.0f} MB, {frame.height:,} (minute, action) groups"
    )
    print(
        f"polars scan + group-by: {peer_wall:.2f} s wall, {peer_cpu:.2f} s cpu -> {records / peer_cpu / 1e6:.2f} M records/s"
    )
    print(
        f"rushhour live path:     {wall:.2f} s wall, {cpu:.2f} s cpu (read {t_read:.2f} s) -> "
        f"{records / cpu / 1e6:.2f} M records/s; {outcome.closed:,} buckets closed"
    )
    print(
        f"ratio to polars (cpu): {cpu / peer_cpu:.2f}x; stored total {stored:,.0f} == records: {stored == records}"
    )


if __name__ == "__main__":
    main()
