"""The inbox folder source: drop, processing, the move to finished/, the failure path, duplicates."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from rushhour.store import open_store
from rushhour.store import schema as t
from tests.pipeline_helpers import drain, points_file, write_config


def _total(url: str) -> float:
    store = open_store(url)
    with store.engine.connect() as conn:
        total = conn.execute(select(func.coalesce(func.sum(t.buckets.c.value), 0))).scalar_one()
    store.close()
    return float(total)


def test_inbox_drop_process_finish_fail_and_duplicate(tmp_path: Path, store_url: str) -> None:
    cfg = write_config(tmp_path / "rushhour.toml", store_url, [{"type": "inbox", "path": "inbox"}])
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    total = points_file(inbox / "a.jsonl", 1_772_409_600, 30)
    (inbox / "b.csv").write_text(
        "timestamp,value\n2026-03-02T00:40:00Z,7\n2026-03-02T00:41:00Z,oops\n"
    )
    (inbox / "broken.jsonl").write_text("this is not json\n{also not\n")
    (inbox / "notes.txt").write_text("hello\n")
    (inbox / "partial.tmp").write_text("still being written\n")
    stats = drain(cfg, tmp_path)

    finished = sorted(p.name for p in (tmp_path / "finished").iterdir())
    failed = sorted(p.name for p in (tmp_path / "failed").iterdir())
    assert [n.split(".")[0] for n in finished] == ["a", "b"]
    assert all(len(n.split(".")) == 3 for n in finished), "renamed with the processing time"
    assert {n.split(".")[0] for n in failed} == {"broken", "notes"}
    errors = {p.name.split(".")[0]: p.read_text() for p in (tmp_path / "failed").glob("*.error")}
    assert "no readable records (2 not JSON)" in errors["broken"]
    assert "cannot tell the format" in errors["notes"]
    assert sorted(p.name for p in inbox.iterdir()) == ["partial.tmp"]
    assert stats.rejected == {"value not a number": 1}
    assert _total(store_url) == total + 7

    # the same content dropped again, under another name, is not counted twice
    (inbox / "a-again.jsonl").write_text((tmp_path / "finished" / finished[0]).read_text())
    stats = drain(cfg, tmp_path)
    assert stats.duplicates == 1
    assert _total(store_url) == total + 7
    assert not (inbox / "a-again.jsonl").exists()


def test_unknown_source_key_is_a_config_error(tmp_path: Path, in_tmp: Path) -> None:
    from rushhour.errors import ConfigError
    from rushhour.settings import load_settings

    (in_tmp / "rushhour.toml").write_text('[[source]]\ntype = "inbox"\npth = "x"\n')
    with pytest.raises(ConfigError, match=r"source\.0\.inbox\.pth"):
        load_settings(environ={})


def test_s3_inbox_against_a_local_s3_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same inbox semantics on an S3-compatible bucket (moto's server on loopback)."""
    boto3 = pytest.importorskip("boto3")
    server_mod = pytest.importorskip("moto.server")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        import os

        os.environ.update(env)
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="traffic")
        total = points_file(tmp_path / "a.jsonl", 1_772_409_600, 20)
        s3.put_object(
            Bucket="traffic", Key="drop/inbox/a.jsonl", Body=(tmp_path / "a.jsonl").read_bytes()
        )
        s3.put_object(Bucket="traffic", Key="drop/inbox/bad.csv", Body=b"no,header\n1,2\n")
        url = f"sqlite:///{tmp_path / 'rh.db'}"
        source = {
            "type": "s3",
            "bucket_name": "traffic",
            "prefix": "drop/inbox/",
            "endpoint_url": endpoint,
        }
        cfg = write_config(tmp_path / "rushhour.toml", url, [source])
        drain(cfg, tmp_path)
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="traffic")["Contents"])
        assert [k.split("/")[1] for k in keys] == ["failed", "failed", "finished"]
        assert keys[2].startswith("drop/finished/a.") and keys[1].endswith(".csv.error")
        body = s3.get_object(Bucket="traffic", Key=keys[1])["Body"].read().decode()
        assert "missing columns" in body
        assert _total(url) == total
    finally:
        server.stop()


def test_flow_logs_and_metric_dumps_through_the_inbox_keep_their_totals(tmp_path: Path) -> None:
    """Raw inputs in any ingest format, dropped into the inbox, become series with exact totals."""
    import json
    import subprocess
    import sys

    def generate(fmt: str, out: str, start: str) -> int:
        cmd = [
            sys.executable,
            "-m",
            "rushhour",
            "generate",
            "--weeks",
            "1",
            "--start",
            start,
            "--seed",
            "2",
            "--base-rpm",
            "20",
            "--format",
            fmt,
            "--out",
            str(tmp_path / out),
            "--json",
            "--labels",
            str(tmp_path / f"{fmt}.labels.json"),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300)
        return int(json.loads(done.stdout)["total_requests"])

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    flows = generate("flowlog", "inbox/vpc.log", "2026-03-02")
    metrics = generate("metrics", "inbox/output-mass.json", "2026-03-02")
    url = f"sqlite:///{tmp_path / 'rh.db'}"
    cfg = write_config(tmp_path / "rushhour.toml", url, [{"type": "inbox", "path": "inbox"}])
    drain(cfg, tmp_path)
    assert not list((tmp_path / "failed").iterdir())
    store = open_store(url)
    totals = {row["key"]: row["total"] for row in store.series_summary()}
    store.close()
    flow_total = sum(v for k, v in totals.items() if "action=" in k)
    metric_total = sum(v for k, v in totals.items() if "status=" in k)
    assert flow_total == flows
    assert abs(metric_total - metrics) < 1e-6 * metrics
    assert any("status=failed" in k for k in totals) and any("status=ok" in k for k in totals)
