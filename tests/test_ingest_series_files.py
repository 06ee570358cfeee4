"""Plain series files (CSV, JSON lines, Parquet), format detection and the ledger."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rushhour.errors import InputError, UsageError
from rushhour.ingest import detect_format, read_records
from rushhour.ingest.ledger import Ledger, content_hash
from rushhour.series.bucketing import bucketize

CSV = "timestamp,value,status\n2026-01-01T00:00:00Z,5,ok\n2026-01-01T00:00:30Z,2,failed\n2026-01-01T00:03:00Z,7,ok\n"


def test_csv_with_labels(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text(CSV)
    res = bucketize(read_records(p), 60)
    assert res["value{status=ok}"].values.tolist() == [5.0, 0.0, 0.0, 7.0]
    assert res["value{status=failed}"].values.tolist() == [2.0, 0.0, 0.0, 0.0]


def test_jsonl_and_parquet_and_epoch_times(tmp_path: Path) -> None:
    p = tmp_path / "s.jsonl"
    p.write_text('{"ts": 1767225600, "value": 3}\n{"ts": 1767225660000, "value": 4}\n')
    assert detect_format(p.read_bytes(), p.name) == "jsonl"
    assert bucketize(read_records(p), 60)["value"].values.tolist() == [3.0, 4.0]
    q = tmp_path / "s.parquet"
    pl.DataFrame(
        {"Timestamp": ["2026-01-01T00:00:00Z"], "Value": [9.0], "region": ["eu"]}
    ).write_parquet(q)
    res = bucketize(read_records(q), 300)
    assert res["value{region=eu}"].values.tolist() == [9.0]


def test_bad_rows_are_counted_with_line_numbers(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text("timestamp,value\n2026-01-01T00:00:00Z,1\nyesterday,4\n2026-01-01T00:01:00Z,-2\n")
    [b] = read_records(p)
    assert b.records == 1
    assert b.rejected.examples == {"unreadable time": [f"{p}:3"], "non-numeric value": [f"{p}:4"]}


def test_missing_columns_and_wrong_types_name_the_file(tmp_path: Path) -> None:
    p = tmp_path / "nocol.csv"
    p.write_text("when,count\n1,2\n")
    with pytest.raises(InputError, match=r"nocol.csv: no time column .*expected one of timestamp"):
        list(read_records(p))
    q = tmp_path / "fake.parquet"
    q.write_text("not parquet at all")
    with pytest.raises(InputError, match=r"fake.parquet: not a readable parquet file"):
        list(read_records(q))
    with pytest.raises(UsageError, match="unknown format 'xml'"):
        list(read_records(p, format="xml"))
    with pytest.raises(InputError, match="is a directory"):
        list(read_records(tmp_path))


def test_ledger_persists_hashes(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text(CSV)
    led = Ledger(tmp_path / "l.json")
    h = content_hash(p)
    assert h == content_hash(CSV.encode()) and led.seen(h) is None
    led.record(h, str(p), p.stat().st_size)
    assert Ledger(tmp_path / "l.json").seen(h) == str(p)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(InputError, match="ledger is not valid JSON"):
        Ledger(tmp_path / "broken.json")


def test_csv_epoch_times_and_mixed_iso_forms_are_each_read(tmp_path: Path) -> None:
    p = tmp_path / "mixed.csv"
    p.write_text(
        "ts,value\n1767225600,1\n1767225660000,2\n2026-01-01 00:02:00,3\n"
        "2026-01-01T01:03:00+01:00,4\n2026-01-01T00:04:00.5Z,5\n"
    )
    res = bucketize(read_records(p), 60)
    assert res["value"].values.tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert res.rejected.total == 0


def test_malformed_lines_are_counted_with_their_line_across_blocks(tmp_path: Path) -> None:
    rows = [f"2026-01-01T00:{i:02d}:00Z,{i}" for i in range(40)]
    rows[17] = "2026-01-01T00:17:00Z,1,extra,fields"
    rows[31] = '2026-01-01T00:31:00Z,"7'
    p = tmp_path / "s.csv"
    p.write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    batches = list(read_records(p, block_size=100))
    assert len(batches) > 5
    res = bucketize(batches, 60)
    assert res.rejected.examples == {"malformed line": [f"{p}:19", f"{p}:33"]}
    assert np.nansum(res["value"].values) == sum(range(40)) - 17 - 31
    q = tmp_path / "s.jsonl"
    q.write_text('{"ts": 1767225600, "value": 1}\n\n{"ts": 1767225660, value: 2}\n[]\n')
    res = bucketize(read_records(q, block_size=8), 60)
    assert res.rejected.examples == {"malformed line": [f"{q}:3", f"{q}:4"]}
    assert res.records == 1 and res.lines == 4


def test_parquet_is_read_by_record_batches(tmp_path: Path) -> None:
    q = tmp_path / "big.parquet"
    n = 5000
    pl.DataFrame(
        {
            "ts": pl.datetime_range(
                pl.datetime(2026, 1, 1, time_zone="UTC"),
                pl.datetime(2026, 1, 1, time_zone="UTC") + pl.duration(seconds=n - 1),
                "1s",
                eager=True,
            ),
            "count": np.arange(n, dtype=np.int64),
            "region": ["eu", "us"] * (n // 2),
        }
    ).write_parquet(q, row_group_size=700)
    batches = list(read_records(q, block_size=64 * 1000))
    assert [b.lines for b in batches][:2] == [1000, 1000] and sum(b.lines for b in batches) == n
    res = bucketize(batches, 60)
    assert sum(np.nansum(s.values) for s in res) == n * (n - 1) // 2
    assert {s.labels["region"] for s in res} == {"eu", "us"}


series_row = st.tuples(
    st.integers(0, 3000),
    st.sampled_from(["ok", "failed", ""]),
    st.sampled_from(["5", "2.5", "x", "-1", "", "7,9"]),
    st.sampled_from(["iso", "epoch", "ms", "bad", "blank"]),
)


def _series_text(rows: list[tuple[int, str, str, str]], jsonl: bool) -> bytes:
    out = [] if jsonl else ["timestamp,value,status"]
    for t, status, value, form in rows:
        when = {
            "iso": f"2026-01-01T00:{t // 60 % 60:02d}:{t % 60:02d}Z",
            "epoch": str(1767225600 + t),
            "ms": str((1767225600 + t) * 1000),
            "bad": "soon",
            "blank": "",
        }[form]
        if form == "blank" and t % 2:
            out.append("")
        elif jsonl:
            out.append(json.dumps({"timestamp": when, "value": value, "status": status}))
        else:
            out.append(f"{when},{value},{status}")
    return ("\n".join(out) + "\n").encode()


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(series_row, min_size=1, max_size=60),
    block=st.integers(1, 3000),
    jsonl=st.booleans(),
    gz=st.booleans(),
)
def test_any_block_size_gives_the_same_buckets_and_rejections(
    rows: list[tuple[int, str, str, str]], block: int, jsonl: bool, gz: bool
) -> None:
    """Streaming in blocks (cut at newlines, bad lines split out) is invisible in the result."""
    data = _series_text(rows, jsonl)
    if gz:
        data = gzip.compress(data)
    fmt = "jsonl" if jsonl else "csv"

    def run(size: int) -> tuple[dict[str, list[float]], dict[str, object], int, int]:
        res = bucketize(read_records(data, format=fmt, block_size=size), 60)
        values = {s.name: np.nan_to_num(s.values, nan=-1.0).tolist() for s in res}
        return values, res.rejected.to_json(), res.records, res.lines

    whole = run(1 << 30)
    assert run(block) == whole
    lines = len(rows)
    _, rejected, records, seen = whole
    assert seen == lines
    assert (
        records
        + sum(int(r["count"]) for r in rejected.values())
        + (sum(1 for t, *_, form in rows if form == "blank" and t % 2) if jsonl else 0)
        == lines
    )
