"""End to end over a real uvicorn server on 127.0.0.1: push points, see them committed and served."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rushhour.store import open_store
from tests.api_helpers import AUTH, TOKEN, live_server, settings_for

T0 = 1_772_000_000 - 1_772_000_000 % 60


@pytest.fixture
def server(tmp_path: Path, store_url: str) -> Iterator[tuple[str, Any, Any]]:
    settings = settings_for(tmp_path, store_url, token=TOKEN, max_body_bytes=64 * 1024)
    store = open_store(settings.store_url())
    try:
        with live_server(settings, store) as (url, runtime):
            yield url, runtime, store
    finally:
        store.close()


def _lines(n: int, series: str = "web") -> str:
    return "".join(
        json.dumps({"series": series, "labels": {"dc": "a"}, "time": T0 + i * 20, "value": 2})
        + "\n"
        for i in range(n)
    )


def test_push_every_format_and_read_back(server: tuple[str, Any, Any]) -> None:
    url, runtime, store = server
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post(
            "/ingest", content=_lines(30), headers={**AUTH, "Content-Type": "application/jsonlines"}
        )
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": 30, "rejected": {}, "examples": [], "series": ["web{dc=a}"]}
        # committed when answered: the store already holds every value
        assert sum(store.read_buckets(1).tolist()) == 60.0
        points = [{"series": "web", "labels": {"dc": "a"}, "time": T0 + 600, "value": 5}]
        assert c.post("/ingest", json=points, headers=AUTH).json()["accepted"] == 1
        csv = "timestamp,value\n2026-02-25T06:00:00Z,7\nnot-a-time,1\n"
        r = c.post(
            "/ingest",
            content=csv,
            params={"series": "api"},
            headers={**AUTH, "Content-Type": "text/csv"},
        )
        assert r.json()["accepted"] == 1 and r.json()["rejected"] == {"time unreadable": 1}
        assert r.json()["examples"] == ["request:3: field 'timestamp': time unreadable"]
        files = {"file": ("more.jsonl", _lines(3, "upload").encode(), "application/octet-stream")}
        r = c.post("/ingest", files=files, headers=AUTH)
        assert r.status_code == 200 and r.json()["series"] == ["upload{dc=a}"]
        keys = [s["key"] for s in c.get("/series").json()["series"]]
        assert keys == ["web{dc=a}", "api", "upload{dc=a}"]
        metrics = c.get("/metrics").text
        assert "rushhour_records_in_total 35.0" in metrics
        assert 'rushhour_records_rejected_total{reason="time unreadable"} 1.0' in metrics
        assert 'rushhour_stage_latency_seconds_count{stage="ingest_commit"}' in metrics
        health = c.get("/healthz").json()
        assert health["status"] == "ok" and health["checks"]["pipeline"] == "running"
    assert runtime.stats.points == 35


def test_bad_pushes_get_clear_4xx(server: tuple[str, Any, Any]) -> None:
    url, _, _ = server
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/ingest", content=_lines(1), headers={"Content-Type": "application/jsonlines"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "Unauthorized"
        r = c.post(
            "/ingest",
            content='{"series": "x", "time": "soon"}\n',
            params={"strict": "true"},
            headers={**AUTH, "Content-Type": "application/jsonlines"},
        )
        assert r.status_code == 400
        assert r.json()["error"]["message"] == (
            "request:1: field 'time': time unreadable (expected ISO 8601 with a zone or epoch seconds)"
        )
        r = c.post("/ingest", content="x", headers={**AUTH, "Content-Type": "text/plain"})
        assert r.status_code == 415
        r = c.post(
            "/ingest",
            content="2 123 eni-1 10.0.0.1 10.0.0.2 443 49152 6 10 840 1620000000 1620000060 ACCEPT OK\n",
            params={"format": "flowlog"},
            headers={**AUTH, "Content-Type": "text/plain"},
        )
        assert r.status_code == 200, r.text  # raw flow-log lines are pushed like points
        r = c.post(
            "/ingest",
            content="2 123 eni-1 10.0.0.1\n",
            params={"format": "flowlog"},
            headers={**AUTH, "Content-Type": "text/plain"},
        )
        assert r.status_code == 400, r.text
        r = c.post(
            "/ingest", content="\n", headers={**AUTH, "Content-Type": "application/jsonlines"}
        )
        assert r.status_code == 400 and "no points" in r.json()["error"]["message"]
        big = _lines(2000)
        assert len(big) > 64 * 1024
        r = c.post(
            "/ingest", content=big, headers={**AUTH, "Content-Type": "application/jsonlines"}
        )
        assert r.status_code == 413
        assert r.json()["error"] == {
            "type": "PayloadTooLarge",
            "message": "request body larger than 65536 bytes",
            "hint": "split the upload, or raise api.max_body_bytes",
        }


def test_binds_loopback_by_default_and_cors_is_off(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, token=TOKEN)
    assert settings.api.host == "127.0.0.1"
    store = open_store(settings.store_url())
    try:
        with live_server(settings, store) as (url, _):
            assert url.startswith("http://127.0.0.1:")
            r = httpx.options(
                url + "/series",
                headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "GET"},
            )
            assert "access-control-allow-origin" not in r.headers
    finally:
        store.close()


def _events_until_serving(proc: Any) -> dict[str, dict[str, Any]]:
    events: dict[str, dict[str, Any]] = {}
    for line in proc.stdout:
        event = json.loads(line)
        events.setdefault(event.get("event", "?"), event)
        if event.get("event") == "serving":
            return events
    raise AssertionError(f"no serving line; stderr: {proc.stderr.read()}")


def _serving_url(proc: Any) -> str:
    return str(_events_until_serving(proc)["serving"]["url"])


def test_rushhour_serve_prints_a_token_once_and_serves(tmp_path: Path) -> None:
    from tests.pipeline_helpers import spawn

    proc = spawn("serve", "--port", "0", "--for", "4s", "--json", cwd=tmp_path)
    events = _events_until_serving(proc)
    first = events["token"]
    assert len(first["token"]) >= 40
    url = events["serving"]["url"]
    assert url.startswith("http://127.0.0.1:")
    assert httpx.get(url + "/healthz").json()["checks"]["pipeline"] == "running"
    r = httpx.post(
        url + "/ingest",
        content=_lines(3),
        headers={
            "Authorization": f"Bearer {first['token']}",
            "Content-Type": "application/jsonlines",
        },
    )
    assert r.status_code == 200 and r.json()["accepted"] == 3
    proc.communicate(timeout=60)  # drain the pipe, or a chatty process blocks writing to it
    assert proc.returncode == 0
    again = spawn("serve", "--port", "0", "--for", "1s", "--json", cwd=tmp_path)
    out, _ = again.communicate(timeout=30)
    assert '"token"' not in out and '"serving"' in out


def test_rushhour_run_serves_the_api_when_enabled(tmp_path: Path) -> None:
    from tests.pipeline_helpers import spawn, write_config

    (tmp_path / "inbox").mkdir()
    config = write_config(
        tmp_path / "rushhour.toml",
        f"sqlite:///{tmp_path / 'r.db'}",
        [{"type": "inbox", "path": "inbox"}],
    )
    config.write_text(config.read_text() + f'[api]\nenabled = true\nport = 0\ntoken = "{TOKEN}"\n')
    proc = spawn("run", "--config", str(config), "--for", "4s", "--json", cwd=tmp_path)
    url = _serving_url(proc)
    r = httpx.post(
        url + "/ingest",
        content=_lines(2),
        headers={**AUTH, "Content-Type": "application/jsonlines"},
    )
    assert r.status_code == 200
    names = [s["key"] for s in httpx.get(url + "/series").json()["series"]]
    assert names == ["web{dc=a}"]
    proc.communicate(timeout=60)  # drain the pipe, or a chatty process blocks writing to it
    assert proc.returncode == 0


def test_the_demo_serves_the_dashboard_when_enabled(tmp_path: Path) -> None:
    from tests.pipeline_helpers import spawn

    (tmp_path / "rushhour.toml").write_text(
        f'[api]\nenabled = true\nport = 0\ntoken = "{TOKEN}"\n[demo]\nhistory_weeks = 1\nspeed = 600\n'
    )
    proc = spawn("run", "--for", "5s", "--json", cwd=tmp_path)
    url = _serving_url(proc)
    # a loaded machine answers slower than httpx's 5 s default
    with httpx.Client(timeout=30) as client:
        models = client.get(url + "/models").json()["models"]
        series = client.get(url + "/series").json()["series"]
        assert len(series) == 3 and {m["kind"] for m in models} == {"mean_predictor", "rcf"}
        names = {m["name"] for m in models}
        trained = {s["key"] for s in series if s["labels"].get("status") == "ok"}  # failed: too few
        assert {f"mean_predictor/{s['key']}" for s in series} <= names
        assert {f"rcf/{k}" for k in trained} <= names and "mean_predictor/__fleet__" in names
        fc = client.get(f"{url}/forecast/{series[0]['id']}", params={"horizon": "10m"})
        assert fc.status_code == 200 and len(fc.json()["Value"]) == 10
        r = client.post(
            url + "/ingest",
            content=_lines(1),
            headers={**AUTH, "Content-Type": "application/jsonlines"},
        )
        assert r.status_code == 200  # the demo is a source of the pipeline; pushed points join it
    proc.communicate(timeout=60)  # drain the pipe, or a chatty process blocks writing to it
    assert proc.returncode == 0
