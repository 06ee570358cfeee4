"""CloudWatch Logs subscription payloads (Kinesis / Firehose) carrying flow-log lines."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from rushhour.errors import InputError
from rushhour.ingest import detect_format, read_records
from rushhour.ingest.cloudwatch_logs import decode_payload, read_subscription
from rushhour.ingest.synthesize import subscription_lines
from rushhour.series.bucketing import bucketize

T0 = 1767225600
LINE = "2 123456789010 eni-0a1 10.0.0.7 10.1.0.20 40123 443 6 12 4800 {s} {e} ACCEPT OK"


def message(lines: list[str], kind: str = "DATA_MESSAGE") -> dict[str, object]:
    return {
        "messageType": kind,
        "owner": "123456789010",
        "logGroup": "vpc-flow-logs",
        "logStream": "eni-0a1-all",
        "subscriptionFilters": ["f"],
        "logEvents": [{"id": str(i), "timestamp": 0, "message": m} for i, m in enumerate(lines)],
    }


def b64gz(obj: object) -> bytes:
    return base64.b64encode(gzip.compress(json.dumps(obj).encode()))


def test_kinesis_payload_and_control_message_skipped() -> None:
    b = decode_payload(b64gz(message([LINE.format(s=T0, e=T0 + 5)] * 3)), source="k")
    assert b.records == 3 and b.control_messages == 0
    c = decode_payload(b64gz(message(["CWL CONTROL MESSAGE"], "CONTROL_MESSAGE")), source="k")
    assert c.records == 0 and c.control_messages == 1 and c.rejected.total == 0


def test_firehose_delivery_request_with_records() -> None:
    req = {
        "requestId": "r",
        "records": [
            {"recordId": "1", "data": b64gz(message([LINE.format(s=T0, e=T0)])).decode()},
            {"recordId": "2", "data": b64gz(message(["x"], "CONTROL_MESSAGE")).decode()},
        ],
    }
    b = decode_payload(json.dumps(req).encode(), source="fh")
    assert b.records == 1 and b.control_messages == 1


def test_firehose_s3_object_of_concatenated_gzip_json(tmp_path: Path) -> None:
    body = json.dumps(message([LINE.format(s=T0, e=T0)])) + json.dumps(
        message([LINE.format(s=T0 + 60, e=T0 + 61)])
    )
    path = tmp_path / "firehose.gz"
    path.write_bytes(gzip.compress(body.encode()))
    [b] = read_subscription(path)
    assert b.records == 2


def test_generated_payload_file_reproduces_counts(tmp_path: Path) -> None:
    counts = np.random.default_rng(1).integers(0, 30, 40)
    starts = T0 + 60 * np.arange(40)
    path = tmp_path / "payloads.b64"
    path.write_bytes(b"".join(subscription_lines(starts, counts, 60, per_payload=100)))
    assert detect_format(path.read_bytes()[:2000]) == "cloudwatch-subscription"
    res = bucketize(read_records(path, labels=[]), 60)
    assert res["requests"].values.tolist() == counts.astype(float).tolist()


def test_undecodable_payload_lines_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "p.b64"
    path.write_bytes(b64gz(message([LINE.format(s=T0, e=T0)])) + b"\n!!notbase64!!\n")
    res = bucketize(read_subscription(path), 60)
    assert res.records == 1 and res.rejected.examples["undecodable payload"] == [f"{path}:2"]
    with pytest.raises(InputError, match="neither base64"):
        decode_payload(b"!!", source="x")


def test_gzipped_file_of_base64_payload_lines(tmp_path: Path) -> None:
    path = tmp_path / "payloads.b64.gz"
    lines = (
        b64gz(message([LINE.format(s=T0, e=T0)] * 2))
        + b"\n"
        + b64gz(message(["x"], "CONTROL_MESSAGE"))
    )
    path.write_bytes(gzip.compress(lines + b"\n"))
    res = bucketize(read_records(path, format="cloudwatch-subscription"), 60)
    assert res.records == 2 and res.rejected.total == 0
