"""Readers: timestamp,value CSV and the DeepAR JSON-lines export."""

from __future__ import annotations

import io
import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rushhour.errors import InputError
from rushhour.forecast.deepar_format import parse_record, read_deepar_jsonl
from rushhour.forecast.series_file import read_series


def test_nab_and_iso_timestamps_are_utc() -> None:
    s = read_series(
        io.StringIO(
            "timestamp,value\n2014-07-01 00:00:00,1\n2014-07-01T02:30:00+02:00,2\n2014-07-01T01:00:00Z,\n"
        )
    )
    assert [t.isoformat() for t in s.index] == [
        "2014-07-01T00:00:00+00:00",
        "2014-07-01T00:30:00+00:00",
        "2014-07-01T01:00:00+00:00",
    ]
    assert s.iloc[1] == 2.0 and math.isnan(s.iloc[2])


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.floats(-1e9, 1e9, allow_nan=False),
)
def test_round_trip(when: datetime, value: float) -> None:
    text = f"timestamp,value\n{when:%Y-%m-%d %H:%M:%S},{value!r}\n"
    s = read_series(io.StringIO(text))
    assert s.index[0].to_pydatetime() == when.replace(tzinfo=UTC) and s.iloc[0] == value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "time,count\n",
            r"<input>:1: header \['time', 'count'\] lacks a timestamp or value column",
        ),
        (
            "timestamp,value\n2014-07-01,1\nyesterday,2\n",
            "<input>:3: field 'timestamp': cannot read timestamp 'yesterday'",
        ),
        (
            "timestamp,value\n2014-07-01,lots\n",
            "<input>:2: field 'value': value 'lots' is not a number",
        ),
        ("timestamp,value\n", "no rows after the header"),
    ],
)
def test_bad_csv(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_series(io.StringIO(text))


def test_missing_file(tmp_path: object) -> None:
    with pytest.raises(InputError, match="file does not exist"):
        read_series("/nonexistent/x.csv")


def test_deepar_lines() -> None:
    start = datetime(2026, 1, 5)
    lines = [
        {
            "start": f"{start:%Y-%m-%d %H:%M:%S}",
            "target": [1, 2, "NaN", None],
            "cat": [0],
            "dynamic_feat": [[0, 0, 0, 0, 1], [1, 1, 1, 1, 1]],
        },
        {"start": f"{start + timedelta(hours=1):%Y-%m-%d %H:%M:%S}", "target": [5.5], "cat": [1]},
    ]
    recs = read_deepar_jsonl(io.StringIO("\n".join(json.dumps(x) for x in lines) + "\n\n"))
    assert len(recs) == 2 and recs[0].dynamic_feat.shape == (2, 5) and recs[1].cat == [1]
    assert math.isnan(recs[0].target[2]) and math.isnan(recs[0].target[3])
    assert recs[1].dynamic_feat.shape == (0, 1)
    again = parse_record(json.dumps(recs[0].to_json()))
    assert again.start == recs[0].start and again.target[1] == 2.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{", "<input>:1: not JSON"),
        ('{"target": [1]}', "<input>:1: field 'start': start is missing"),
        ('{"start": "soon", "target": [1]}', "cannot read start 'soon'"),
        (
            '{"start": "2026-01-05 00:00:00", "target": [1, "x"]}',
            r"field 'target': target\[1\] is 'x'",
        ),
        (
            '{"start": "2026-01-05 00:00:00", "target": [1, 2], "dynamic_feat": [[1]]}',
            r"dynamic_feat\[0\] has 1 values for 2 targets",
        ),
        (
            '{"start": "2026-01-05 00:00:00", "target": [1], "cat": [-1]}',
            "cat must be a list of non-negative integers",
        ),
    ],
)
def test_bad_deepar_lines(line: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        read_deepar_jsonl(io.StringIO(line + "\n"))
