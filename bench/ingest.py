"""Benchmark: v2 flow log -> 1-minute request counts per action, single-threaded.

Peers measured in the same run on the same file: a bare polars scan + group-by (the target is
rushhour <= 1.5x its time), DuckDB (if installed) and a plain Python loop (on a slice, scaled).
For gzip: rushhour on the .gz vs gzip decompression + the same polars query (target <= 1.3x).
Memory: peak RSS of a child process ingesting files of growing size (bounded means it does not
grow with the size).

    POLARS_MAX_THREADS=1 python bench/ingest.py --lines 3000000 [--big-gb 2.5]
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import gzip
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from rushhour.ingest.flowlogs import V2_FIELDS, read_flowlog
from rushhour.ingest.synthesize import flowlog_blocks
from rushhour.series.bucketing import bucketize


def make_file(path: Path, lines: int, seed: int = 0) -> None:
    per_min = 2000
    minutes = lines // per_min
    starts = 1767225600 + 60 * np.arange(minutes, dtype=np.int64)
    counts = np.full(minutes, per_min)
    counts[-1] += lines - int(counts.sum())
    with path.open("wb") as fh:
        for block in flowlog_blocks(starts, counts, 60, seed=seed, chunk=240):
            fh.write(block)


def best(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def interleaved(
    fns: dict[str, Callable[[], object]], rounds: int
) -> dict[str, tuple[float, object]]:
    """Best time of each function over ``rounds`` rounds that alternate between them, so that a
    noisy neighbour slows every contender alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    results: dict[str, object] = {}
    for _ in range(rounds):
        for name, fn in fns.items():
            t, c = time.perf_counter(), time.process_time()
            results[name] = fn()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    CPU.update({k: min(v) for k, v in cpu.items()})
    return {k: (min(v), results[k]) for k, v in times.items()}


CPU: dict[str, float] = {}


def rushhour_counts(path: Path) -> int:
    res = bucketize(read_flowlog(path, labels=["action"]), 60)
    return int(sum(np.nansum(s.values) for s in res))


SCHEMA = {
    n: (pl.Int64 if n in ("start", "end", "packets", "bytes") else pl.String) for n in V2_FIELDS
}


def polars_query(src: Path | bytes) -> int:
    lf = pl.scan_csv(
        src if isinstance(src, Path) else io.BytesIO(src),
        separator=" ",
        has_header=False,
        schema=SCHEMA,
        null_values="-",
        quote_char=None,
    )
    out = (
        lf.filter(pl.col("log-status") == "OK")
        .group_by((pl.col("start") // 60).alias("bucket"), "action")
        .agg(pl.len().alias("n"))
        .collect()
    )
    return int(out["n"].sum())


def polars_counts(path: Path) -> int:
    return polars_query(path)


def gzip_polars(path: Path) -> int:
    return polars_query(gzip.decompress(path.read_bytes()))


def isal_polars(path: Path) -> int | None:
    try:
        from isal import igzip
    except ImportError:
        return None
    return polars_query(igzip.decompress(path.read_bytes()))


def dirty_copy(path: Path, every: int) -> Path:
    """The same file with one malformed line every ``every`` lines (exercises the careful path)."""
    out = path.with_name(f"dirty-{every}.log")
    if not out.exists():
        with path.open("rb") as src, out.open("wb") as dst:
            for i, line in enumerate(src):
                dst.write(line)
                if i % every == every - 1:
                    dst.write(b"2 123456789010 eni-broken line\n")
    return out


def duckdb_counts(path: Path) -> int | None:
    try:
        import duckdb
    except ImportError:
        return None
    con = duckdb.connect()
    con.execute("SET threads TO 1")
    cols = ", ".join(
        f"'{n}': '{'BIGINT' if n in ('start', 'end') else 'VARCHAR'}'" for n in V2_FIELDS
    )
    q = (
        f"SELECT start // 60 AS b, action, count(*) AS n FROM read_csv('{path}', delim=' ', "
        f"header=false, columns={{{cols}}}, nullstr='-') WHERE \"log-status\" = 'OK' GROUP BY 1, 2"
    )
    return int(sum(r[2] for r in con.execute(q).fetchall()))


def python_loop(path: Path, limit: int) -> int:
    counts: dict[tuple[int, str], int] = {}
    with path.open() as fh:
        for i, line in enumerate(fh):
            if i >= limit:
                break
            p = line.split()
            if p[13] == "OK":
                k = (int(p[10]) // 60, p[12])
                counts[k] = counts.get(k, 0) + 1
    return sum(counts.values())


def peak_rss(path: Path | None) -> float:
    """Peak RSS (MiB, VmHWM of /proc/self/status) of a fresh process that ingests ``path`` (or
    only imports everything when ``path`` is None). VmHWM belongs to the new process image;
    getrusage's ru_maxrss would report the parent's peak, as Linux keeps it across fork and exec."""
    work = (
        f"r=bucketize(read_flowlog({str(path)!r}, labels=['action']), 60);assert r.records > 0;"
        if path is not None
        else ""
    )
    code = (
        "import os;os.environ['POLARS_MAX_THREADS']='1';"
        "from rushhour.ingest.flowlogs import read_flowlog;from rushhour.series.bucketing import bucketize;"
        + work
        + "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip()) / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=3_000_000)
    ap.add_argument(
        "--big-gb", type=float, default=0.0, help="also measure RSS on files up to this size"
    )
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only-rss", action="store_true", help="skip the timings")
    args = ap.parse_args()
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="rushhour-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "flow.log"
    if not path.exists() or sum(1 for _ in path.open("rb")) != args.lines:
        make_file(path, args.lines)
    n = args.lines
    size_mb = path.stat().st_size / 1e6
    print(
        f"file: {n:,} v2 lines, {size_mb:.0f} MB; POLARS_MAX_THREADS={os.environ['POLARS_MAX_THREADS']}"
    )
    if not args.only_rss:
        rounds = args.rounds
        res = interleaved(
            {
                "rushhour": lambda: rushhour_counts(path),
                "polars scan+group-by": lambda: polars_counts(path),
                "duckdb (1 thread)": lambda: duckdb_counts(path),
            },
            rounds,
        )
        assert res["rushhour"][1] == res["polars scan+group-by"][1]
        t_pl = res["polars scan+group-by"][0]
        results = {k: t for k, (t, c) in res.items() if c is not None}
        limit = min(n, 500_000)
        t_py, _ = best(lambda: python_loop(path, limit), repeat=1)
        results["python loop (scaled)"] = t_py * n / limit
        c_pl = CPU["polars scan+group-by"]
        print(
            "  wall = best elapsed; cpu = best process CPU time (less disturbed by busy neighbours)"
        )
        for name, t in results.items():
            c = CPU.get(name)
            cpu_txt = (
                f"   cpu {c:6.3f} s {n / c / 1e6:6.2f} M/s ratio {c / c_pl:5.2f}x" if c else ""
            )
            print(
                f"  {name:24s} wall {t:7.3f} s {n / t / 1e6:6.2f} M/s ratio {t / t_pl:5.2f}x{cpu_txt}"
            )

        gz = tmp / "flow.log.gz"
        if not gz.exists():
            with path.open("rb") as src, gzip.open(gz, "wb", compresslevel=6) as dst:
                while chunk := src.read(16 << 20):
                    dst.write(chunk)
        gres = interleaved(
            {
                "rushhour .gz (streamed)": lambda: rushhour_counts(gz),
                "gzip.decompress + polars": lambda: gzip_polars(gz),
                "isal decompress + polars": lambda: isal_polars(gz),
            },
            rounds,
        )
        t_gzp = gres["gzip.decompress + polars"][0]
        print(f"gzip ({gz.stat().st_size / 1e6:.0f} MB, level 6):")
        c_gzp = CPU["gzip.decompress + polars"]
        for name, (t, c) in gres.items():
            if c is not None:
                print(
                    f"  {name:26s} wall {t:7.3f} s ratio {t / t_gzp:5.2f}x   "
                    f"cpu {CPU[name]:6.3f} s {n / CPU[name] / 1e6:6.2f} M/s ratio {CPU[name] / c_gzp:5.2f}x"
                )

        dirty = dirty_copy(path, 1_000_000)
        dres = interleaved(
            {"clean": lambda: rushhour_counts(path), "dirty": lambda: rushhour_counts(dirty)},
            rounds,
        )
        t_d, c_d = dres["dirty"]
        print(
            f"with 1 malformed line per 1M lines ({c_d:,} records counted): wall {t_d:7.3f} s "
            f"ratio vs clean {t_d / dres['clean'][0]:5.2f}x   cpu {CPU['dirty']:6.3f} s "
            f"ratio vs clean {CPU['dirty'] / CPU['clean']:5.2f}x"
        )

    if args.big_gb > 0:
        print("peak RSS of a fresh process ingesting files of growing size:")
        print(f"  imports only     -> peak RSS {peak_rss(None):7.1f} MiB")
        rss = {}
        for frac in (0.125, 0.5, 1.0):
            target = int(args.big_gb * frac * 1e9)
            big = tmp / f"big-{frac}.log"
            if not big.exists():
                with big.open("wb") as out:
                    data = path.read_bytes()
                    written = 0
                    while written < target:
                        out.write(data)
                        written += len(data)
            rss[big.stat().st_size] = peak_rss(big)
            print(
                f"  {big.stat().st_size / 1e9:5.2f} GB -> peak RSS {rss[big.stat().st_size]:7.1f} MiB"
            )
        print(json.dumps({"rss_mib_by_bytes": rss}))


if __name__ == "__main__":
    main()
