"""CloudWatch Logs subscription payloads carrying flow-log lines (via Kinesis or Firehose).

A payload is gzip-compressed JSON ``{"messageType": "DATA_MESSAGE", "logEvents": [{"id",
"timestamp", "message"}, ...], ...}``; Kinesis records and Firehose ``records[].data`` carry it
base64-encoded. ``CONTROL_MESSAGE`` payloads (sent when a subscription is created) carry no traffic
and are skipped (counted in ``control_messages``). A file may hold one base64 payload per line (how
the Kinesis/Firehose consumers usually store records), a Firehose delivery request JSON
(``{"records": [{"data": ...}]}``), or gzip data of concatenated JSON payloads (Firehose to S3).

:func:`decode_payload` is pure and is what a live consumer calls per message.

>>> import base64, gzip, json
>>> msg = {"messageType": "DATA_MESSAGE", "logEvents": [
...     {"id": "1", "timestamp": 0, "message": "2 1 eni-a 1.1.1.1 2.2.2.2 1 2 6 3 90 60 120 ACCEPT OK"}]}
>>> payload = base64.b64encode(gzip.compress(json.dumps(msg).encode()))
>>> b = decode_payload(payload, source="k")
>>> b.frame.rows()
[(60, 'ACCEPT')]
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rushhour.errors import InputError
from rushhour.ingest.batch import RecordBatch, Rejections
from rushhour.ingest.blocks import iter_blocks, read_head
from rushhour.ingest.flowlogs import Layout, records_from_lines


def _messages(data: bytes, source: str) -> list[dict[str, Any]]:
    """JSON objects in ``data`` (gzip or not, one or concatenated)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"corrupt gzip payload ({exc})", source=source) from exc
    text = data.decode("utf-8", "replace").strip()
    dec = json.JSONDecoder()
    out: list[dict[str, Any]] = []
    pos = 0
    while pos < len(text):
        try:
            obj, end = dec.raw_decode(text, pos)
        except ValueError as exc:
            raise InputError(
                "payload is not JSON",
                source=source,
                expected="a CloudWatch Logs subscription message",
            ) from exc
        if isinstance(obj, dict):
            out.append(obj)
        pos = end
        while pos < len(text) and text[pos] in " \r\n\t":
            pos += 1
    return out


def payload_lines(payload: bytes | str, source: str) -> tuple[list[str], int]:
    """The flow-log lines of one payload and the number of control messages skipped."""
    raw = payload.encode() if isinstance(payload, str) else payload
    if raw[:2] != b"\x1f\x8b" and not raw.lstrip().startswith(b"{"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError("payload is neither base64, gzip nor JSON", source=source) from exc
    lines: list[str] = []
    control = 0
    for msg in _messages(raw, source):
        if isinstance(msg.get("records"), list):  # a Firehose delivery request
            for rec in msg["records"]:
                sub, c = payload_lines(
                    str(rec.get("data", "")) if isinstance(rec, dict) else "", source
                )
                lines.extend(sub)
                control += c
            continue
        if msg.get("messageType") == "CONTROL_MESSAGE":
            control += 1
            continue
        for ev in msg.get("logEvents") or []:
            if isinstance(ev, dict) and isinstance(ev.get("message"), str):
                lines.append(ev["message"])
    return lines, control


def decode_payload(
    payload: bytes | str,
    *,
    source: str,
    labels: Sequence[str] = ("action",),
    values: Sequence[str] = ("requests",),
    layout: Layout | None = None,
) -> RecordBatch:
    """One batch from one payload (base64 or raw gzip); control messages give an empty batch."""
    lines, control = payload_lines(payload, source)
    batch = records_from_lines(lines, source=source, labels=labels, values=values, layout=layout)
    batch.control_messages = control
    return batch


def read_subscription(
    src: str | Path | bytes,
    *,
    labels: Sequence[str] = ("action",),
    values: Sequence[str] = ("requests",),
    layout: Layout | None = None,
    source: str | None = None,
) -> Iterator[RecordBatch]:
    """Yield one batch per payload of a file of subscription payloads (see the module docstring)."""
    name = source or (str(src) if not isinstance(src, bytes) else "<bytes>")
    head = read_head(src, 4096)
    if head.lstrip().startswith(b"{"):
        # one JSON document or concatenated JSON payloads (Firehose to S3): read whole
        data = b"".join(block for block, _ in iter_blocks(src, source=name))
        yield decode_payload(data, source=name, labels=labels, values=values, layout=layout)
        return
    # one base64 payload per line: streamed block by block, so memory stays bounded
    i = 0
    for block, consumed in iter_blocks(src, 4 << 20, source=name):
        for line in block.splitlines():
            i += 1
            if not line.strip():
                continue
            try:
                b = decode_payload(
                    line.strip(), source=name, labels=labels, values=values, layout=layout
                )
            except InputError:
                b = records_from_lines([], source=name, labels=labels, values=values, layout=layout)
                b.rejected = Rejections()
                b.rejected.add("undecodable payload", name, i)
                b.lines = 1
            b.bytes_read = consumed
            yield b
