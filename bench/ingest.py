"""Benchmark: v2 flow log -> 1-minute request counts per action, on one core.

Peers measured in the same run on the same file: a bare polars scan + group-by (the target is
rushhour <= 1.5x its time), DuckDB (if installed) and a plain Python loop (on a slice, scaled).
For gzip: rushhour on the .gz vs gzip decompression + the same polars query (target <= 1.3x).
Memory: peak RSS (VmHWM) of a fresh child process ingesting flow logs of growing size up to
``--big-gb`` (bounded means it does not grow with the size), the same as a multi-member .gz,
CSV / JSON lines / Parquet series files of two sizes (``--series-mb``), and a repr metrics dump
(``--metrics-days``).

The whole process (children included) is pinned to one CPU (``--cpu``; ``--cpu -1`` leaves it
free), so "one core" holds for every contender: polars otherwise overlaps its file reading with
parsing on a second core even with POLARS_MAX_THREADS=1. Every timing is printed as wall and CPU
time, with the load average before and after; each target gets a ``VERDICT`` line.

    POLARS_MAX_THREADS=1 python bench/ingest.py --lines 3000000 [--big-gb 10] [--series-mb 300]
        [--metrics-days 365]
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import gzip
import io
import json
import shutil
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


def peak_rss(path: Path | None, fmt: str = "auto") -> float:
    """Peak RSS (MiB, VmHWM of /proc/self/status) of a fresh process that ingests ``path`` into
    1-minute buckets (or only imports everything when ``path`` is None). VmHWM belongs to the new
    process image; getrusage's ru_maxrss would report the parent's peak, as Linux keeps it across
    fork and exec."""
    work = (
        f"r=bucketize(read_records({str(path)!r}, format={fmt!r}), 60);assert r.records > 0;"
        if path is not None
        else ""
    )
    code = (
        "import os;os.environ['POLARS_MAX_THREADS']='1';"
        "from rushhour.ingest import read_records;from rushhour.series.bucketing import bucketize;"
        + work
        + "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip()) / 1024


def concatenated(src: Path, dst: Path, target: int) -> Path:
    """``dst`` made of whole copies of ``src`` up to about ``target`` bytes (the same minutes
    repeated, so the buckets stay the same; a .gz becomes a multi-member gzip)."""
    if not dst.exists() or dst.stat().st_size < target:
        with dst.open("wb") as out:
            written = 0
            while written < target:
                with src.open("rb") as fh:
                    shutil.copyfileobj(fh, out, 16 << 20)
                written += src.stat().st_size
    return dst


def bounded(rss: dict[str, float]) -> tuple[bool, str]:
    """Bounded: the largest input's peak is within 25% of the smallest input's."""
    sizes = list(rss)
    lo, hi = rss[sizes[0]], rss[sizes[-1]]
    return hi <= 1.25 * lo, f"{hi:.0f} MiB at {sizes[-1]} vs {lo:.0f} MiB at {sizes[0]}"


def verdict(name: str, ok: bool, detail: str) -> None:
    print(f"VERDICT {name}: {'MET' if ok else 'NOT MET'} ({detail})")


def series_files(tmp: Path, mb: float) -> dict[str, list[Path]]:
    """CSV, JSON lines and Parquet series files: one row per second with an ISO time, a count and
    a status label, about ``mb / 8`` MB of CSV, and the same rows 8 times over (about ``mb`` MB),
    so that both have the same buckets and only the input grows."""
    out: dict[str, list[Path]] = {"csv": [], "jsonl": [], "parquet": []}
    rows = int(mb / 8 * 1e6 / 36)
    small, big = tmp / f"series-{rows}", tmp / f"series-{rows}-x8"
    if not big.with_suffix(".csv").exists():
        ts = pl.datetime_range(
            pl.datetime(2026, 1, 1, time_zone="UTC"),
            pl.datetime(2026, 1, 1, time_zone="UTC") + pl.duration(seconds=rows - 1),
            "1s",
            eager=True,
        )
        df = pl.DataFrame(
            {
                "timestamp": ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "value": np.random.default_rng(0).poisson(30, rows),
                "status": np.where(np.arange(rows) % 10 == 0, "failed", "ok"),
            }
        )
        for stem, frame in ((small, df), (big, pl.concat([df] * 8))):
            frame.write_csv(stem.with_suffix(".csv"))
            frame.write_ndjson(stem.with_suffix(".jsonl"))
            frame.write_parquet(stem.with_suffix(".parquet"), row_group_size=1 << 17)
    for fmt in out:
        out[fmt] = [small.with_suffix(f".{fmt}"), big.with_suffix(f".{fmt}")]
    return out


def metrics_memory(tmp: Path, days: int) -> None:
    """Peak RSS and time of ingesting the seed's repr dump (4-6 minute datapoints in 2xx/4xx/5xx
    series) over ``days`` days and over a tenth of that: the text is streamed, the datapoints are
    kept as (time, value) pairs."""
    from rushhour.ingest.synthesize import metrics_dump

    print("peak RSS of a fresh process ingesting a repr metrics dump into 1-minute buckets:")
    for d in (max(1, days // 10), days):
        f = tmp / f"metrics-{d}d.txt"
        if not f.exists():
            m = d * 1440
            f.write_text(metrics_dump(1767225600 + 60 * np.arange(m), np.full(m, 2000), 60))
        t = time.perf_counter()
        r = peak_rss(f, "metrics")
        print(
            f"  {d:4d} days, {f.stat().st_size / 1e6:5.1f} MB -> peak RSS {r:7.1f} MiB "
            f"({time.perf_counter() - t:.1f} s wall)"
        )


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def timings(path: Path, n: int, rounds: int, tmp: Path) -> None:
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
    c0 = time.process_time()
    t_py, _ = best(lambda: python_loop(path, limit), repeat=1)
    CPU["python loop (scaled)"] = (time.process_time() - c0) * n / limit
    results["python loop (scaled)"] = t_py * n / limit
    c_pl = CPU["polars scan+group-by"]
    print("  wall = best elapsed; cpu = best process CPU time (less disturbed by busy neighbours)")
    for name, t in results.items():
        c = CPU[name]
        print(
            f"  {name:24s} wall {t:7.3f} s {n / t / 1e6:6.2f} M/s ratio {t / t_pl:5.2f}x"
            f"   cpu {c:6.3f} s {n / c / 1e6:6.2f} M/s ratio {c / c_pl:5.2f}x"
        )
    t_rh, c_rh = res["rushhour"][0], CPU["rushhour"]
    verdict(
        ">= 3 M records/s on one core (wall)",
        n / t_rh >= 3e6,
        f"{n / t_rh / 1e6:.2f} M/s wall, {n / c_rh / 1e6:.2f} M/s cpu",
    )
    verdict(
        "<= 1.5x a bare polars scan + group-by (wall)",
        t_rh / t_pl <= 1.5,
        f"{t_rh / t_pl:.2f}x wall, {c_rh / c_pl:.2f}x cpu",
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
    t_gz = gres["rushhour .gz (streamed)"][0]
    verdict(
        "gzip <= 1.3x decompression + polars (wall)",
        t_gz / t_gzp <= 1.3,
        f"{t_gz / t_gzp:.2f}x wall, {CPU['rushhour .gz (streamed)'] / c_gzp:.2f}x cpu",
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


def memory(path: Path, tmp: Path, big_gb: float, keep: bool) -> None:
    print("peak RSS of a fresh process ingesting flow logs of growing size:")
    print(f"  imports only     -> peak RSS {peak_rss(None):7.1f} MiB")
    rss: dict[str, float] = {}
    made: list[Path] = []
    for frac in (0.0, 0.25, 1.0):
        big = path if frac == 0 else tmp / f"big-{big_gb * frac:g}GB.log"
        if frac:
            made.append(concatenated(path, big, int(big_gb * frac * 1e9)))
        size = f"{big.stat().st_size / 1e9:.2f} GB ({big.name})"
        t = time.perf_counter()
        rss[size] = peak_rss(big)
        print(f"  {size:24s} -> peak RSS {rss[size]:7.1f} MiB  ({time.perf_counter() - t:.0f} s)")
        if frac and not keep:
            big.unlink()
    ok, detail = bounded(rss)
    gz = tmp / "flow.log.gz"
    if gz.exists():  # gzip against gzip: the small .gz, then the same repeated to big_gb of text
        members = max(1, round(big_gb * 1e9 / path.stat().st_size))
        big = concatenated(gz, tmp / "big.log.gz", members * gz.stat().st_size)
        grss: dict[str, float] = {}
        for f, what in ((gz, "1 gzip member"), (big, f"{members} gzip members")):
            t = time.perf_counter()
            key = f"{f.stat().st_size / 1e9:.2f} GB .gz ({what})"
            grss[key] = peak_rss(f)
            print(
                f"  {key:24s} -> peak RSS {grss[key]:7.1f} MiB  ({time.perf_counter() - t:.0f} s)"
            )
        if not keep:
            big.unlink()
        gok, gdetail = bounded(grss)
        ok, detail = ok and gok, f"{detail}; gzip {gdetail}"
        rss.update(grss)
    verdict(f"memory bounded up to {big_gb:g} GB", ok, detail)
    print(json.dumps({"rss_mib": rss}))


def series_memory(tmp: Path, mb: float) -> None:
    print("peak RSS of a fresh process ingesting series files (the big one is the small one x8):")
    ok = True
    details = []
    for fmt, files in series_files(tmp, mb).items():
        rss = {}
        for f in files:
            t = time.perf_counter()
            rss[f"{f.stat().st_size / 1e6:.1f} MB ({f.name})"] = peak_rss(f, fmt)
            print(
                f"  {fmt:8s} {f.stat().st_size / 1e6:6.0f} MB -> peak RSS "
                f"{rss[next(reversed(rss))]:7.1f} MiB  ({time.perf_counter() - t:.0f} s)"
            )
        good, detail = bounded(rss)
        ok = ok and good
        details.append(f"{fmt} {detail}")
    verdict("series files streamed (memory bounded)", ok, "; ".join(details))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=3_000_000)
    ap.add_argument(
        "--big-gb", type=float, default=0.0, help="also measure RSS on flow logs up to this size"
    )
    ap.add_argument(
        "--series-mb", type=float, default=0.0, help="also measure RSS on series files this big"
    )
    ap.add_argument(
        "--metrics-days", type=int, default=0, help="also measure a repr metrics dump this long"
    )
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (-1: no pinning)")
    ap.add_argument("--keep", action="store_true", help="keep the big files")
    ap.add_argument("--only-rss", action="store_true", help="skip the timings")
    args = ap.parse_args()
    allowed = sorted(os.sched_getaffinity(0))
    if args.cpu != -1:
        cpu = allowed[-1] if args.cpu is None else args.cpu
        os.sched_setaffinity(0, {cpu})
        pinned = f"pinned to CPU {cpu} of {len(allowed)}"
    else:
        pinned = f"not pinned ({len(allowed)} CPUs)"
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="rushhour-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "flow.log"
    if not path.exists() or sum(1 for _ in path.open("rb")) != args.lines:
        make_file(path, args.lines)
    n = args.lines
    print(
        f"file: {n:,} v2 lines, {path.stat().st_size / 1e6:.0f} MB; "
        f"POLARS_MAX_THREADS={os.environ['POLARS_MAX_THREADS']}; {pinned}; {load()}"
    )
    if not args.only_rss:
        timings(path, n, args.rounds, tmp)
    if args.big_gb > 0:
        memory(path, tmp, args.big_gb, args.keep)
    if args.series_mb > 0:
        series_memory(tmp, args.series_mb)
    if args.metrics_days > 0:
        metrics_memory(tmp, args.metrics_days)
    print(f"done; {load()}")


if __name__ == "__main__":
    main()
