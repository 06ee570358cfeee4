"""Plain series files (CSV, JSON lines, Parquet), format detection and the ledger."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

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
