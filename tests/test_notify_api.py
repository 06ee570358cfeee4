"""The notify routes served by a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from rushhour.notify.api import router
from rushhour.notify.outbox import Outbox
from rushhour.notify.plot import example, render
from rushhour.store import Store


@pytest.fixture
def api(store: Store) -> Iterator[str]:
    app = FastAPI()
    app.include_router(router(store, token="s3cret"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(5)


def test_silences_through_the_api(api: str) -> None:
    auth = {"Authorization": "Bearer s3cret"}
    body = {"matchers": ["series=api", "region=~eu-.*"], "duration": "2h", "comment": "deploy"}
    assert httpx.post(f"{api}/silences", json=body).status_code == 401
    r = httpx.post(f"{api}/silences", json=body, headers=auth)
    assert r.status_code == 201
    sid = r.json()["id"]
    assert r.json()["ends_at"] - r.json()["starts_at"] == 7200
    listed = httpx.get(f"{api}/silences").json()
    assert [(s["id"], s["active"], s["matchers"]) for s in listed] == [
        (sid, True, ["series=api", "region=~eu-.*"])
    ]
    bad = httpx.post(f"{api}/silences", json={"matchers": ["nope"]}, headers=auth)
    assert bad.status_code == 400 and "cannot read matcher 'nope'" in bad.json()["detail"]
    assert httpx.delete(f"{api}/silences/{sid}", headers=auth).status_code == 204
    assert httpx.delete(f"{api}/silences/{sid}", headers=auth).status_code == 404
    assert httpx.get(f"{api}/silences").json() == []


def test_alert_png_is_served_for_the_webhook_image_link(api: str, store: Store) -> None:
    alert, data = example()
    png = render(alert, data)
    Outbox(store).enqueue([alert], ["slack_webhook"], now=0, image=png)
    r = httpx.get(f"{api}/alerts/{alert.id}/plot.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content == png
    assert httpx.get(f"{api}/alerts/nope/plot.png").status_code == 404
    rows = httpx.get(f"{api}/outbox", params={"state": "pending"}).json()
    assert [x["dedupe_key"] for x in rows] == [f"{alert.id}:slack_webhook"]
