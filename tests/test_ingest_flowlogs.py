"""VPC flow logs: v2 and header-named formats, gzip, NODATA/SKIPDATA, bad lines, block boundaries."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rushhour.errors import InputError, UsageError
from rushhour.ingest import flowlogs, read_records
from rushhour.ingest.flowlogs import (
    V5_FIELDS,
    Layout,
    read_flowlog,
    records_from_lines,
    strict_check,
)
from rushhour.ingest.synthesize import flowlog_blocks
from rushhour.series.bucketing import bucketize

T0 = 1767225600  # 2026-01-01T00:00:00Z


def v2(start: int, action: str = "ACCEPT", end: int | None = None, status: str = "OK") -> str:
    end = start + 30 if end is None else end
    if status != "OK":
        return f"2 123456789010 eni-0a1 - - - - - - - {start} {end} - {status}"
    return f"2 123456789010 eni-0a1 10.0.0.7 10.1.0.20 40123 443 6 12 4800 {start} {end} {action} {status}"


def generated(minutes: int = 30, seed: int = 0, v5: bool = False) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 40, minutes)
    counts[5] = 0  # a covered minute without traffic must stay 0
    starts = T0 + 60 * np.arange(minutes)
    return b"".join(flowlog_blocks(starts, counts, 60, seed=seed, v5=v5)), counts


def test_generated_v2_flow_log_reproduces_the_counts_exactly(tmp_path: Path) -> None:
    data, counts = generated()
    path = tmp_path / "flow.log"
    path.write_bytes(data)
    res = bucketize(read_records(path), 60, labels=[])
    s = res["requests"]
    assert s.starts[0] == T0 and s.values.tolist() == counts.astype(float).tolist()
    assert s.values[5] == 0.0 and not res.gaps()
    assert res.records == counts.sum() and res.nodata == 1 and res.rejected.total == 0


def test_counts_per_action_and_packets_bytes() -> None:
    lines = [v2(T0), v2(T0 + 10, "REJECT"), v2(T0 + 61), v2(T0 + 70, status="NODATA")]
    batches = list(
        read_flowlog(
            "\n".join(lines).encode() + b"\n",
            labels=["action"],
            values=["requests", "packets", "bytes"],
        )
    )
    res = bucketize(batches, 60)
    assert res["requests{action=ACCEPT}"].values.tolist() == [1.0, 1.0]
    assert res["requests{action=REJECT}"].values.tolist() == [1.0, 0.0]
    assert res["bytes{action=ACCEPT}"].values.tolist() == [4800.0, 4800.0]
    assert res["packets{action=REJECT}"].values.tolist() == [12.0, 0.0]
    assert res.nodata == 1


def test_nodata_and_skipdata_are_counted_not_traffic() -> None:
    lines = [v2(T0, status="NODATA"), v2(T0 + 300, status="SKIPDATA"), v2(T0 + 120)]
    [b] = read_flowlog(("\n".join(lines) + "\n").encode())
    assert (b.records, b.nodata, b.skipdata) == (1, 1, 1)
    res = bucketize([b], 60)
    # the NODATA record proves minute 0 was observed: it is 0, not missing
    assert res["requests{action=ACCEPT}"].values.tolist() == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]


def test_v5_header_format_and_custom_labels(tmp_path: Path) -> None:
    data, counts = generated(v5=True)
    assert data.startswith(b"version account-id")
    path = tmp_path / "v5.log.gz"
    path.write_bytes(gzip.compress(data))
    res = bucketize(read_records(path, labels=["flow-direction", "action"]), 60)
    total = sum(np.nansum(s.values) for s in res)
    assert total == counts.sum()
    assert {s.labels["flow-direction"] for s in res} == {"ingress"}


def test_custom_field_order_from_a_format_string() -> None:
    layout = Layout.parse("${start} ${action} ${dstport} ${log-status}")
    data = f"{T0} ACCEPT 443 OK\n{T0 + 1} REJECT 22 OK\n{T0 + 2} - - NODATA\n".encode()
    [b] = read_flowlog(data, layout=layout, labels=["dstport"])
    assert sorted(b.frame["dstport"].to_list()) == ["22", "443"] and b.nodata == 1
    with pytest.raises(UsageError, match="unknown fields \\['colour'\\]"):
        Layout.parse("${start} ${colour}")


def test_malformed_lines_are_skipped_and_counted_by_reason_with_examples(tmp_path: Path) -> None:
    lines = [
        v2(T0),
        "2 1 eni-a too few fields",
        v2(T0).replace(str(T0), "12x4", 1),
        v2(T0 + 50, end=T0),
        v2(T0, action="MAYBE"),
        v2(T0).replace(" OK", " WHAT"),
        v2(T0 + 1),
    ]
    path = tmp_path / "bad.log"
    path.write_text("\n".join(lines) + "\n")
    [b] = read_flowlog(path)
    assert b.records == 2
    assert dict(b.rejected.counts) == {
        "wrong field count": 1,
        "non-integer start": 1,
        "start after end": 1,
        "unknown action": 1,
        "unknown log-status": 1,
    }
    assert b.rejected.examples["start after end"] == [f"{path}:4"]
    with pytest.raises(InputError, match=r"bad.log:2: wrong field count"):
        strict_check(b)


def test_line_numbers_count_across_blocks_and_the_header(tmp_path: Path) -> None:
    header = "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status"
    lines = [header] + [v2(T0 + i) for i in range(50)]
    lines[40] = "garbage"
    path = tmp_path / "h.log"
    path.write_text("\n".join(lines) + "\n")
    batches = list(read_flowlog(path, block_size=300))
    assert len(batches) > 5
    res = bucketize(batches, 60)
    assert res.records == 49 and res.rejected.examples["wrong field count"] == [f"{path}:41"]


def test_empty_missing_and_binary_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope.log: no such file"):
        list(read_records(tmp_path / "nope.log"))
    (tmp_path / "empty.log").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.log: file is empty"):
        list(read_records(tmp_path / "empty.log"))
    (tmp_path / "x.bin").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match=r"x.bin: cannot tell the format"):
        list(read_records(tmp_path / "x.bin"))
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"notgzip" * 10)
    with pytest.raises(InputError, match=r"bad.gz: corrupt gzip"):
        list(read_flowlog(tmp_path / "bad.gz"))


def test_lines_in_memory_form() -> None:
    b = records_from_lines([v2(T0), v2(T0, status="NODATA"), "junk"], source="push")
    assert (b.records, b.nodata, b.rejected.total) == (1, 1, 1)


@settings(max_examples=60, deadline=None)
@given(junk=st.lists(st.text(alphabet=" \t0123456789-abcOKACEPTNODA", max_size=80), max_size=40))
def test_every_line_is_accounted_for_whatever_it_holds(junk: list[str]) -> None:
    lines = [v2(T0 + 7 * i) if i % 3 == 0 else j for i, j in enumerate(junk)]
    data = ("\n".join(lines) + "\n").encode()
    res = bucketize(read_flowlog(data, block_size=64), 60)
    blank = sum(1 for line in lines if not line.split())
    assert res.records + res.nodata + res.skipdata + res.rejected.total + blank == len(lines)
    assert sum(np.nansum(s.values) for s in res) == res.records


def test_v5_field_list_is_complete() -> None:
    assert len(V5_FIELDS) == 29 and V5_FIELDS[-1] == "traffic-path"


record = st.tuples(
    st.integers(0, 7200),
    st.sampled_from(["ACCEPT", "REJECT"]),
    st.sampled_from(["OK", "OK", "OK", "NODATA", "SKIPDATA", "BAD"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    recs=st.lists(record, min_size=1, max_size=120),
    block=st.integers(16, 4000),
    gz=st.booleans(),
    width=st.sampled_from([60, 300]),
    split_below=st.sampled_from([1 << 16, 40]),
)
def test_no_record_is_lost_or_counted_twice_across_blocks(
    recs: list[tuple[int, str, str]], block: int, gz: bool, width: int, split_below: int
) -> None:
    """Blocks are cut at newlines, and a block with bad lines is split in halves (down to
    ``split_below`` bytes) before going line by line: neither may lose or double a record."""
    text = (
        "\n".join("not a record" if s == "BAD" else v2(T0 + t, a, status=s) for t, a, s in recs)
        + "\n"
    )
    data = gzip.compress(text.encode()) if gz else text.encode()
    saved = flowlogs.CAREFUL_BELOW
    flowlogs.CAREFUL_BELOW = split_below
    try:
        batches = list(read_flowlog(data, labels=["action"], block_size=block))
    finally:
        flowlogs.CAREFUL_BELOW = saved
    res = bucketize(batches, width)
    expected: dict[tuple[str, int], int] = {}
    for t, a, s in recs:
        if s == "OK":
            expected[(a, (T0 + t) // width * width)] = (
                expected.get((a, (T0 + t) // width * width), 0) + 1
            )
    got = {}
    for s in res:
        for b, v in zip(s.starts.tolist(), s.values.tolist(), strict=True):
            if v:
                got[(s.labels["action"], b)] = v
    assert got == {k: float(v) for k, v in expected.items()}
    assert res.nodata == sum(s == "NODATA" for _, _, s in recs)
    assert res.skipdata == sum(s == "SKIPDATA" for _, _, s in recs)
    assert res.rejected.total == sum(s == "BAD" for _, _, s in recs)
    assert res.lines == len(recs)
    first_bad = next((i for i, (_, _, s) in enumerate(recs) if s == "BAD"), None)
    if first_bad is not None:
        assert res.rejected.examples["wrong field count"][0] == f"<bytes>:{first_bad + 1}"
