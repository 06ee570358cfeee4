"""/alerts and /silences over the AlertRepository interface (a plain in-memory repository here; the
alerts feature backs it with the store), and the 501 they answer until one is installed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rushhour.api import create_app
from rushhour.api.routes.alerts import AlertRepository, SilenceIn
from rushhour.store import open_store
from tests.api_helpers import AUTH, guard, settings_for


class MemoryAlerts:
    def __init__(self) -> None:
        self.alerts = [
            {
                "id": i,
                "series": "web",
                "status": s,
                "time": f"2026-02-0{i + 1}T08:00:00+00:00",
                "explanation": {"why": f"value {i} above band"},
            }
            for i, s in enumerate(["firing", "resolved", "firing"])
        ]
        self.silences: list[dict[str, Any]] = []

    def list_alerts(
        self, *, limit: int, offset: int, status: str | None
    ) -> tuple[list[dict[str, Any]], int]:
        rows = [a for a in reversed(self.alerts) if status is None or a["status"] == status]
        return rows[offset : offset + limit], len(rows)

    def add_silence(self, silence: SilenceIn) -> dict[str, Any]:
        row = {"id": len(self.silences) + 1, **silence.model_dump(mode="json")}
        self.silences.append(row)
        return row

    def list_silences(self, *, active_at: datetime | None) -> list[dict[str, Any]]:
        if active_at is None:
            return self.silences
        return [s for s in self.silences if s["starts_at"] <= active_at.isoformat() < s["ends_at"]]

    def plot(self, alert_id: str) -> bytes | None:
        return b"\x89PNG fake" if alert_id == "a1" else None

    def delete_silence(self, silence_id: int) -> bool:
        before = len(self.silences)
        self.silences = [s for s in self.silences if s["id"] != silence_id]
        return len(self.silences) < before


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path)
    store = open_store(settings.store_url())
    repo: AlertRepository = MemoryAlerts()
    with TestClient(create_app(settings, store, guard=guard(), alerts=repo)) as c:
        yield c
    store.close()


def test_alerts_list_paginates_and_filters(client: TestClient) -> None:
    r = client.get("/alerts", params={"limit": 1})
    assert r.json()["total"] == 3 and r.json()["alerts"][0]["id"] == 2
    assert r.json()["alerts"][0]["explanation"] == {"why": "value 2 above band"}
    assert client.get("/alerts", params={"status": "resolved"}).json()["total"] == 1
    bad = client.get("/alerts", params={"status": "loud"})
    assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("query.status")


def test_alert_plot(client: TestClient) -> None:
    r = client.get("/alerts/a1/plot.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    r = client.get("/alerts/zz/plot.png")
    assert r.status_code == 404 and r.json()["error"]["message"] == "no plot for alert 'zz'"


def test_silences_create_list_delete(client: TestClient) -> None:
    body = {"matchers": ["series=web"], "ends_at": "2099-01-01T00:00:00Z", "comment": "deploy"}
    assert client.post("/silences", json=body).status_code == 401
    r = client.post("/silences", json=body, headers=AUTH)
    assert r.status_code == 201 and r.json()["id"] == 1 and r.json()["starts_at"] is not None
    assert [
        s["comment"] for s in client.get("/silences", params={"active": True}).json()["silences"]
    ] == ["deploy"]
    assert client.delete("/silences/1", headers=AUTH).status_code == 204
    assert client.delete("/silences/1", headers=AUTH).status_code == 404
    assert client.delete("/silences/1").status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"matchers": [], "ends_at": "2099-01-01T00:00:00Z"}, "body.matchers"),
        ({"matchers": ["series=x"], "ends_at": "2099-01-01T00:00:00"}, "give a zone"),
        (
            {"matchers": ["series=x"], "ends_at": "2000-01-01T00:00:00Z"},
            "ends_at is not after starts_at",
        ),
    ],
)
def test_bad_silences(client: TestClient, body: dict[str, Any], message: str) -> None:
    r = client.post("/silences", json=body, headers=AUTH)
    assert r.status_code == 422 and message in r.json()["error"]["message"]


def test_without_a_repository_the_routes_say_what_is_missing(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = open_store(settings.store_url())
    with TestClient(create_app(settings, store, guard=guard())) as c:
        r = c.get("/alerts")
        assert r.status_code == 501
        assert r.json()["error"]["message"] == "alerts are not stored by this build yet"
        assert c.get("/silences").status_code == 501
    store.close()


def test_store_backed_silences(tmp_path: Path) -> None:
    from rushhour.api.alert_store import StoreAlerts

    settings = settings_for(tmp_path)
    store = open_store(settings.store_url())
    with TestClient(create_app(settings, store, guard=guard(), alerts=StoreAlerts(store))) as c:
        body = {"matchers": ["series=web", "dc=~a.*"], "ends_at": "2099-01-01T00:00:00Z"}
        r = c.post("/silences", json=body, headers=AUTH)
        assert r.status_code == 201, r.text
        assert r.json()["matchers"] == ["series=web", "dc=~a.*"]
        assert r.json()["ends_at"] == "2099-01-01T00:00:00+00:00"
        assert [
            s["id"] for s in c.get("/silences", params={"active": True}).json()["silences"]
        ] == [r.json()["id"]]
        bad = c.post("/silences", json={**body, "matchers": ["dc=~("]}, headers=AUTH)
        assert bad.status_code == 400 and "bad regex" in bad.json()["error"]["message"]
        assert c.delete(f"/silences/{r.json()['id']}", headers=AUTH).status_code == 204
        assert c.get("/silences").json()["silences"] == []
        assert c.get("/alerts").json() == {"alerts": [], "total": 0, "limit": 100, "offset": 0}
        assert c.get("/alerts/nope/plot.png").status_code == 404
    store.close()


def _alert(series: str, start: datetime, labels: dict[str, str] | None = None) -> Any:
    from rushhour.notify.alert import Alert

    return Alert(
        series=series,
        labels=labels or {},
        status="firing",
        start=start,
        detected_at=start,
        value=20000.0,
        expected=8000.0,
        deviation=2000.0,
        score=6.0,
        severity="critical",
        direction="above",
    )


def test_store_backed_alerts_from_the_outbox(tmp_path: Path) -> None:
    from datetime import UTC

    from rushhour.api.alert_store import StoreAlerts
    from rushhour.notify.outbox import Outbox

    settings = settings_for(tmp_path)
    store = open_store(settings.store_url())
    t0 = datetime(2026, 3, 16, 10, 0, tzinfo=UTC)
    alert = _alert("requests", t0, {"region": "eu"})
    Outbox(store).enqueue([alert], ["slack", "webhook"], now=t0.timestamp(), image=b"\x89PNG x")
    with TestClient(create_app(settings, store, guard=guard(), alerts=StoreAlerts(store))) as c:
        body = c.get("/alerts").json()
        assert body["total"] == 1
        (entry,) = body["alerts"]
        assert entry["status"] == "firing" and entry["alerts"][0]["series"] == "requests"
        assert entry["alerts"][0]["sentence"]  # the explanation as the channels phrase it
        assert sorted(d["channel"] for d in entry["deliveries"]) == ["slack", "webhook"]
        assert c.get("/alerts", params={"status": "resolved"}).json()["total"] == 0
        png = c.get(f"/alerts/{entry['id']}/plot.png")
        assert png.status_code == 200 and png.content == b"\x89PNG x"
    store.close()


def test_store_backed_alerts_page_in_sql_newest_first(tmp_path: Path) -> None:
    from dataclasses import replace
    from datetime import UTC, timedelta

    from rushhour.api.alert_store import StoreAlerts
    from rushhour.notify.outbox import Outbox

    settings = settings_for(tmp_path)
    store = open_store(settings.store_url())
    t0 = datetime(2026, 3, 16, 10, 0, tzinfo=UTC)
    a = _alert("a", t0)
    b = replace(a, series="b", start=t0 + timedelta(minutes=10))
    outbox = Outbox(store)
    outbox.enqueue([a], ["slack", "webhook"], now=t0.timestamp())
    outbox.enqueue([b], ["slack"], now=(t0 + timedelta(minutes=10)).timestamp())
    outbox.enqueue(
        [replace(a, status="resolved")], ["slack"], now=(t0 + timedelta(minutes=20)).timestamp()
    )
    with TestClient(create_app(settings, store, guard=guard(), alerts=StoreAlerts(store))) as c:
        body = c.get("/alerts").json()
        seen = [(e["alerts"][0]["series"], e["status"]) for e in body["alerts"]]
        assert body["total"] == 3 and seen == [("a", "resolved"), ("b", "firing"), ("a", "firing")]
        assert [len(e["deliveries"]) for e in body["alerts"]] == [1, 1, 2]
        page = c.get("/alerts", params={"limit": 1, "offset": 1}).json()
        assert page["total"] == 3 and [e["alerts"][0]["series"] for e in page["alerts"]] == ["b"]
        firing = c.get("/alerts", params={"status": "firing", "offset": 1}).json()
        assert firing["total"] == 2 and [e["alerts"][0]["series"] for e in firing["alerts"]] == [
            "a"
        ]
        assert c.get("/alerts", params={"offset": 3}).json()["alerts"] == []
        # rows added after a count: a new group counts, a new channel of a known group does not
        later = (t0 + timedelta(minutes=30)).timestamp()
        outbox.enqueue(
            [replace(a, series="c", start=t0 + timedelta(minutes=30))], ["slack"], now=later
        )
        outbox.enqueue([a], ["email"], now=later)
        body = c.get("/alerts").json()
        assert body["total"] == 4
        assert c.get("/alerts", params={"status": "firing"}).json()["total"] == 3
        assert c.get("/alerts", params={"status": "resolved"}).json()["total"] == 1
        # the email row is the newest: its group leads, with all three deliveries
        seen = [(e["alerts"][0]["series"], e["status"]) for e in body["alerts"]]
        assert seen[:2] == [("a", "firing"), ("c", "firing")]
        assert sorted(d["channel"] for d in body["alerts"][0]["deliveries"]) == [
            "email",
            "slack",
            "webhook",
        ]
    # a fresh process counts everything at its first call, and agrees
    assert StoreAlerts(store).list_alerts(limit=1, offset=0, status=None)[1] == 4
    store.close()
