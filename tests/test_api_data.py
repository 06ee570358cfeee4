"""Data endpoints over a store with trained history: series, points, anomalies, forecasts, train, plan."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rushhour.api import create_app
from rushhour.api.downsample import choose_step, downsample
from rushhour.api.endpoints import PLANNERS, register_planner
from rushhour.store import Store, open_store
from tests.api_helpers import AUTH, Seeded, guard, seed, settings_for

Env = tuple[TestClient, Seeded, Store]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("data")
    settings = settings_for(tmp)
    store = open_store(settings.store_url())
    seeded = seed(store, settings)
    with store.begin() as tx:
        store.ensure_series(tx, "requests", {"region": "us"}, 60)  # a series without data
    with TestClient(create_app(settings, store, guard=guard())) as client:
        yield client, seeded, store
    store.close()


def test_series_list_paginates_with_status_and_sparkline(env: Env) -> None:
    client, seeded, _ = env
    r = client.get("/series", params={"sparkline": 24})
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 2
    first, second = page["series"]
    assert first["key"] == seeded.key and first["status"] in ("ok", "anomalous")
    assert len(first["sparkline"]) == 24 and min(first["sparkline"]) > 0
    assert second["status"] == "no data" and second["last"] is None
    assert (
        client.get("/series", params={"limit": 1, "offset": 1}).json()["series"][0]["id"]
        == second["id"]
    )
    assert client.get("/series", params={"q": "us"}).json()["total"] == 1
    bad = client.get("/series", params={"limit": 10_000})
    assert bad.status_code == 422 and "less than or equal to 500" in bad.json()["error"]["message"]


def test_one_series(env: Env) -> None:
    client, seeded, _ = env
    one = client.get(f"/series/{seeded.series_id}").json()
    assert one["key"] == seeded.key and one["status"] == "ok"  # the spikes are hours before the end
    assert one["last"] == "2026-03-16T23:59:00+00:00"
    other = client.get("/series", params={"q": "region=us"}).json()["series"][0]
    assert client.get(f"/series/{other['id']}").json()["status"] == "no data"
    page = client.get(
        f"/series/{seeded.series_id}",
        params={"from": "2026-03-16T09:00:00Z", "to": "2026-03-16T11:00:00Z"},
        headers={"Accept": "text/html,application/xhtml+xml"},
        follow_redirects=False,
    )
    assert page.status_code == 303
    assert page.headers["location"] == (
        f"/ui/series/{seeded.series_id}?from=2026-03-16T09%3A00%3A00Z&to=2026-03-16T11%3A00%3A00Z"
    )
    r = client.get("/series/999")
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "type": "NotFound",
            "message": "no series with id 999",
            "hint": "GET /series lists them",
        }
    }


def test_points_are_downsampled_with_band_and_anomalies(env: Env) -> None:
    client, seeded, _ = env
    r = client.get(f"/series/{seeded.series_id}/points", params={"resolution": 100})
    assert r.status_code == 200
    d = r.json()
    assert d["step"] == 900 and len(d["t"]) == 96  # the last day in 15-minute steps
    assert all(lo <= m <= hi for lo, m, hi in zip(d["min"], d["mean"], d["max"], strict=True))
    assert sum(d["count"]) == 1440 and all(e is not None for e in d["expected"])
    assert len(d["anomalies"]) == seeded.anomalies
    week = client.get(
        f"/series/{seeded.series_id}/points",
        params={"from": "2026-03-03T00:00:00Z", "to": "2026-03-10T00:00:00Z", "resolution": 1000},
    ).json()
    assert week["step"] == 660 and sum(week["count"]) == 7 * 1440
    r = client.get(f"/series/{seeded.series_id}/points", params={"from": "last week"})
    assert r.status_code == 400 and "field 'from'" in r.json()["error"]["message"]
    r = client.get(
        f"/series/{seeded.series_id}/points",
        params={"from": "2026-03-10T00:00:00Z", "to": "2026-03-03T00:00:00Z"},
    )
    assert r.status_code == 400 and "'to' is not after 'from'" in r.json()["error"]["message"]


def test_downsample_agrees_with_pandas(store: Store) -> None:
    with store.begin() as tx:
        ref = store.ensure_series(tx, "x", {}, 60)
        store.write_buckets(
            tx, ref.id, [i * 60 for i in range(100)], [float(i % 7) for i in range(100)]
        )
    step = choose_step(0, 6000, 60, 10)
    d = downsample(store, ref.id, 0, 6000, step)
    assert step == 600 and d["t"] == [i * 600 for i in range(10)]
    values = [float(i % 7) for i in range(100)]
    for j in range(10):
        chunk = values[j * 10 : j * 10 + 10]
        assert (d["min"][j], d["max"][j], d["count"][j]) == (min(chunk), max(chunk), 10)
        assert d["mean"][j] == pytest.approx(sum(chunk) / 10, abs=1e-4)


def test_anomalies_paginate(env: Env) -> None:
    client, seeded, _ = env
    all_ = client.get("/anomalies").json()
    assert all_["total"] == seeded.anomalies > 2
    times = [a["time"] for a in all_["anomalies"]]
    assert times == sorted(times, reverse=True) and all_["anomalies"][0]["series"] == seeded.key
    page = client.get("/anomalies", params={"limit": 2, "offset": 1}).json()
    assert [a["id"] for a in page["anomalies"]] == [a["id"] for a in all_["anomalies"][1:3]]
    assert client.get("/anomalies", params={"since": "2030-01-01T00:00:00Z"}).json()["total"] == 0
    assert client.get("/anomalies", params={"offset": -1}).status_code == 422


def test_forecast_ahead_of_the_data(env: Env) -> None:
    client, seeded, _ = env
    r = client.get(f"/forecast/{seeded.series_id}", params={"horizon": "30m"})
    assert r.status_code == 200, r.text
    f = r.json()
    assert f["t"][0] == seeded.last + 60 and len(f["t"]) == 30
    assert f["model"]["kind"] == "mean_predictor"
    assert all(lo <= v <= hi for lo, v, hi in zip(f["q0.1"], f["Value"], f["q0.9"], strict=True))
    r = client.get(f"/forecast/{seeded.series_id}", params={"horizon": "soon"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "UsageError"
    r = client.get(f"/forecast/{seeded.series_id}", params={"model": "deepar"})
    assert r.status_code == 501 and "rushhour deepar-train" in r.json()["error"]["hint"]


def test_plan_from_the_default_planner_and_a_registered_one(env: Env) -> None:
    client, seeded, _ = env
    r = client.get(f"/plan/{seeded.series_id}")
    assert r.status_code == 400 and r.json()["error"]["message"].startswith(
        "request: field 'per_instance_rps'"
    )
    r = client.get(f"/plan/{seeded.series_id}", params={"per_instance_rps": "50", "horizon": "24h"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["series"] == seeded.key
    assert len(body["CapacityForecast"]["Timestamps"]) == 24
    assert max(body["CapacityForecast"]["Values"]) >= min(body["CapacityForecast"]["Values"]) >= 1
    assert (
        0 < body["Summary"]["saving"] < 1
    )  # a rhythm: provisioning to the forecast beats static peak

    @register_planner("headroom")
    def peak(context: Any, series: Any, params: dict[str, str]) -> dict[str, Any]:
        return {"series": series.key, "headroom": float(params.get("headroom", "1.2"))}

    try:
        r = client.get(
            f"/plan/{seeded.series_id}", params={"planner": "headroom", "headroom": "1.5"}
        )
        assert r.json() == {"series": seeded.key, "headroom": 1.5}
        assert client.get("/plan/999", params={"planner": "headroom"}).status_code == 404
        assert (
            client.get(f"/plan/{seeded.series_id}", params={"planner": "nope"}).status_code == 501
        )
    finally:
        PLANNERS.pop("headroom")


def test_forecast_with_a_model_fitted_on_demand(env: Env) -> None:
    client, seeded, _ = env
    r = client.get(f"/forecast/{seeded.series_id}", params={"horizon": "2h", "model": "adaptive"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["kind"] == "adaptive" and len(body["t"]) == 120
    assert all(v is not None and v >= 0 for v in body["Value"])
    bad = client.get(f"/forecast/{seeded.series_id}", params={"model": "crystal-ball"})
    assert bad.status_code == 404 and "crystal-ball" in bad.json()["error"]["message"]


def test_rcf_models_are_deployed_and_invocable(env: Env) -> None:
    client, seeded, _ = env
    models = client.get("/models", params={"kind": "rcf"}).json()["models"]
    rcf = [m for m in models if m["kind"] == "rcf"]
    assert rcf and rcf[0]["series"] == seeded.key
    name = rcf[0]["name"]
    normal = [3000.0, 3050.0, 3100.0, 3080.0]
    odd = [3000.0, 90000.0, 0.0, 90000.0]
    r = client.post(
        f"/models/{name}/invocations",
        json={"instances": [{"features": normal}, {"features": odd}]},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    scores = [s["score"] for s in r.json()["scores"]]
    assert len(scores) == 2 and scores[1] > scores[0] >= 0
    r = client.post(
        f"/models/{name}/invocations",
        content="3000,3050,3100,3080\n",
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and len(r.json()["scores"]) == 1
    r = client.post(
        f"/models/{name}/invocations", json={"instances": [{"features": [1.0, 2.0]}]}, headers=AUTH
    )
    assert r.status_code == 400 and "feature_dim" in r.json()["error"]["message"]


def test_train_needs_token_and_retrains(env: Env) -> None:
    client, seeded, store = env
    assert client.post("/train").status_code == 401
    r = client.post("/train", headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert seeded.key in body["trained"] and body["swapped"] is False
    assert store.load_model(f"mean_predictor/{seeded.key}")["version"] == 2  # type: ignore[index]


def test_ingest_without_a_pipeline_says_so(env: Env) -> None:
    r = env[0].post(
        "/ingest", content=b"{}", headers={**AUTH, "Content-Type": "application/jsonlines"}
    )
    assert (
        r.status_code == 503 and "no pipeline runs in this process" in r.json()["error"]["message"]
    )


def test_status_is_anomalous_with_anomalies_in_the_last_hour(store: Store) -> None:
    from rushhour.api.routes.data import describe_series
    from rushhour.store.db import AnomalyRecord

    with store.begin() as tx:
        calm = store.ensure_series(tx, "calm", {}, 60)
        hot = store.ensure_series(tx, "hot", {}, 60)
        for ref in (calm, hot):
            store.write_buckets(tx, ref.id, [i * 60 for i in range(180)], [10.0] * 180)
        for ref, start in ((calm, 60 * 60), (hot, 170 * 60)):  # calm's is two hours old
            store.add_anomalies(
                tx,
                [
                    AnomalyRecord(
                        ref.id,
                        start,
                        "mean_band",
                        50.0,
                        10.0,
                        2.0,
                        20.0,
                        20.0,
                        "spike",
                        "critical",
                        start,
                    )
                ],
            )
    rows = [
        {"id": r.id, "key": r.key, "name": r.name, "labels": "{}", "bucket_seconds": 60}
        for r in (calm, hot)
    ]
    got = {s.key: (s.status, s.anomalies_recent) for s in describe_series(store, rows)}
    assert got == {"calm": ("ok", 0), "hot": ("anomalous", 1)}
