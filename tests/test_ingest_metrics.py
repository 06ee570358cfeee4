"""Metric dumps: the seed's Python-repr output-mass.json (never eval'd) and CloudWatch JSON."""

from __future__ import annotations

import contextlib
import gzip
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rushhour.errors import InputError
from rushhour.ingest import read_records
from rushhour.ingest.metrics import read_metrics, safe_literal
from rushhour.ingest.synthesize import metrics_dump
from rushhour.series.bucketing import bucketize

SEED_ENTRY = """{
    'response-code-4xx': [
        {'Label': 'response-code-4xx',
            'Datapoints': [
                {'Timestamp': datetime.datetime(2018, 12, 15, 11, 20,
                    tzinfo=tzlocal()),
                    'SampleCount': 6.0,
                    'Unit': 'None'
                    }
                ]
            }
    ],
    'response-code-2xx': {'Datapoints': [
        {'Timestamp': datetime.datetime(2018, 12, 15, 11, 20, tzinfo=tzlocal()), 'SampleCount': 100.0, 'Unit': 'None'},
        {'Timestamp': datetime.datetime(2018, 12, 15, 11, 24, tzinfo=tzlocal()), 'SampleCount': 80.0, 'Unit': 'None'},
        {'Timestamp': datetime.datetime(2018, 12, 15, 11, 30, tzinfo=tzlocal()), 'SampleCount': 50.0, 'Unit': 'None'}]}
}"""


def test_seed_dump_keeps_ok_and_failed_apart_and_resolves_tzlocal(tmp_path: Path) -> None:
    path = tmp_path / "output-mass.json"
    path.write_text(SEED_ENTRY)
    [b] = read_records(path, tz="Europe/Berlin")
    first = datetime(2018, 12, 15, 11, 20, tzinfo=ZoneInfo("Europe/Berlin"))
    rows = {(r[3], r[0]): r for r in b.frame.rows()}
    assert rows[("response-code-4xx", int(first.timestamp()))][2] == 6.0
    assert {r[4] for r in b.frame.rows()} == {"ok", "failed"}
    res = bucketize([b], 60)
    ok = res["requests{metric=response-code-2xx,status=ok}"]
    assert np.nansum(ok.values) == pytest.approx(230.0)
    # 100 over the 4 minutes from 11:20 -> 25 per minute; 80 over 6 minutes from 11:24
    assert ok.values[:4].tolist() == [25.0] * 4 and ok.values[4] == pytest.approx(80 / 6)


def test_code_in_a_dump_is_rejected_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = f"{{'x': {{'Datapoints': [__import__('pathlib').Path({str(marker)!r}).touch()]}}}}"
    path = tmp_path / "evil.json"
    path.write_text(evil)
    with pytest.raises(InputError, match=r"evil.json:1: call of .*__import__.* is not allowed"):
        list(read_records(path, format="metrics"))
    assert not marker.exists()
    for text, what in [
        ("{'a': os.system}", "Attribute is not allowed"),
        ("{'a': [x for x in ()]}", "ListComp is not allowed"),
        ("{'a': datetime.datetime(2018, 1, 1, tzinfo=open('f'))}", "call of 'open'"),
        ("{'a': (lambda: 1)()}", "call of 'Lambda'"),
        ("{**{}}", "dict unpacking"),
    ]:
        with pytest.raises(InputError, match=what):
            safe_literal(text)


def test_get_metric_statistics_and_get_metric_data_json(tmp_path: Path) -> None:
    gms = {
        "Label": "response-code-5xx",
        "Datapoints": [
            {"Timestamp": "2026-01-01T00:05:00Z", "Sum": 10.0, "Unit": "Count"},
            {"Timestamp": "2026-01-01T00:00:00Z", "Sum": 5.0, "Unit": "Count"},
        ],
    }
    p1 = tmp_path / "gms.json"
    p1.write_text(json.dumps(gms))
    [b] = read_records(p1)
    assert (
        b.frame["requests"].to_list() == [5.0, 10.0]
        and b.frame["status"].to_list() == ["failed"] * 2
    )
    gmd = {
        "MetricDataResults": [
            {
                "Id": "ok",
                "Label": "response-code-2xx",
                "Timestamps": ["2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"],
                "Values": [300.0, 600.0],
                "StatusCode": "Complete",
            }
        ]
    }
    p2 = tmp_path / "gmd.json"
    p2.write_text(json.dumps(gmd))
    res = bucketize(read_records(p2), 60)
    s = res["requests{metric=response-code-2xx,status=ok}"]
    assert s.values.tolist() == [60.0] * 5 + [120.0] * 5


def test_bad_datapoints_are_counted_and_empty_dumps_rejected(tmp_path: Path) -> None:
    dump = "{'r': {'Datapoints': [{'Timestamp': 'not a time', 'SampleCount': 1.0}, {'Timestamp': datetime.datetime(2020, 1, 1), 'SampleCount': -3}]}}"
    [b] = read_metrics(dump.encode(), source="m")
    assert b.records == 0 and b.rejected.total == 2
    with pytest.raises(InputError, match="no Datapoints"):
        list(read_metrics(b"{'a': 1}", source="m"))
    with pytest.raises(InputError, match="not a Python-repr or JSON"):
        list(read_metrics(b"{'a': ", source="m"))


def test_generated_dump_preserves_the_total_with_irregular_sampling() -> None:
    counts = np.random.default_rng(2).integers(0, 100, 300)
    starts = 1767225600 + 60 * np.arange(300)
    text = metrics_dump(starts, counts, 60, seed=2, tz="America/New_York")
    assert "tzinfo=tzlocal()" in text
    res = bucketize(read_metrics(text.encode(), tz="America/New_York", source="g"), 60)
    assert sum(np.nansum(s.values) for s in res) == pytest.approx(counts.sum())
    assert res.covered[0][0] == starts[0]


@settings(max_examples=50, deadline=None)
@given(
    gaps=st.lists(st.sampled_from([240, 300, 360, 420]), min_size=1, max_size=40),
    values=st.lists(st.integers(0, 10_000), min_size=41, max_size=41),
    width=st.sampled_from([60, 300, 900]),
)
def test_spreading_irregular_samples_preserves_the_sum(
    gaps: list[int], values: list[int], width: int
) -> None:
    ts = 1767225600 + np.concatenate([[0], np.cumsum(gaps)])
    pts = ",".join(
        f"{{'Timestamp': {int(t)}, 'SampleCount': {float(v)}}}"
        for t, v in zip(ts, values, strict=False)
    )
    [b] = read_metrics(f"{{'r': {{'Datapoints': [{pts}]}}}}".encode(), source="p")
    res = bucketize([b], width)
    assert np.nansum(res["requests{metric=r,status=-}"].values) == pytest.approx(
        sum(values[: len(ts)])
    )


literals = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(value=literals)
def test_safe_literal_reads_any_repr_of_plain_data(value: object) -> None:
    assert safe_literal(repr(value)) == value


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=60))
def test_safe_literal_never_raises_anything_but_input_error(text: str) -> None:
    with contextlib.suppress(InputError):
        safe_literal(text)


@settings(max_examples=40, deadline=None)
@given(
    chunk=st.integers(1, 400),
    gz=st.booleans(),
    one_line=st.booleans(),
    as_json=st.booleans(),
)
def test_streamed_dump_reads_the_same_whatever_the_chunk_size(
    chunk: int, gz: bool, one_line: bool, as_json: bool
) -> None:
    """The dump is read in pieces cut anywhere (inside strings, calls, numbers): the datapoints,
    their series and the rejections are those of reading it whole."""
    starts = 1767225600 + 60 * np.arange(90)
    counts = np.random.default_rng(chunk).integers(0, 50, 90)
    text = metrics_dump(starts, counts, 60, seed=chunk)
    if as_json:
        pts = [
            {"Timestamp": int(t), "Sum": float(c)}
            for t, c in zip(starts[::5], counts[::5], strict=True)
        ]
        pts[3] = {"Timestamp": "not a time", "Sum": 1.0}
        text = json.dumps({"Label": "response-code-2xx", "Datapoints": pts, "x": {"y": [1, "]"]}})
    else:
        text = text.replace("'SampleCount': 0.0", "'SampleCount': -1.0", 1)
    if one_line:
        text = text.replace("\n", " ")
    data = text.encode()
    if gz:
        data = gzip.compress(data)

    def rows(size: int) -> tuple[list[tuple[object, ...]], dict[str, object]]:
        [b] = read_metrics(data, source="d", chunk_size=size)
        return sorted(b.frame.rows()), b.rejected.to_json()

    whole = rows(1 << 30)
    assert rows(chunk) == whole
    assert len(whole[0]) > 10


def test_bad_text_in_a_streamed_dump_names_its_line(tmp_path: Path) -> None:
    text = metrics_dump(1767225600 + 60 * np.arange(30), np.ones(30, dtype=int), 60)
    lines = text.splitlines()
    lines[4] = lines[4].replace("'Unit': 'None'", "'Unit': open('x')")
    path = tmp_path / "m.txt"
    path.write_text("\n".join(lines))
    with pytest.raises(InputError, match=r"m.txt:5: call of 'open' is not allowed"):
        list(read_metrics(path, chunk_size=64))
    path.write_text(text.replace("'ResponseMetadata'", "'ResponseMetadata': os.system('x'),", 1))
    with pytest.raises(InputError, match=r"m\.txt:\d+: "):
        list(read_metrics(path, chunk_size=64))
