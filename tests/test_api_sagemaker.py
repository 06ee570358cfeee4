"""Model endpoints: /ping, /models, invocations (JSON, JSON lines, CSV), and the seed's /predict."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from rushhour.api import create_app
from rushhour.api.endpoints import ENDPOINTS, Invocation, ModelEndpoint, register_endpoint
from rushhour.store import open_store
from tests.api_helpers import AUTH, Seeded, guard, seed, settings_for


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Seeded, Any]]:
    tmp = tmp_path_factory.mktemp("sm")
    settings = settings_for(tmp)
    store = open_store(settings.store_url())
    seeded = seed(store, settings)
    with TestClient(create_app(settings, store, guard=guard())) as client:
        yield client, seeded, store
    store.close()


class SumScorer(ModelEndpoint):
    """A test model family in RCF's format: the score of an instance is the sum of its features."""

    kind = "test_sum"
    result_key = "scores"

    def __init__(self) -> None:
        self.loads: list[bytes] = []  # every artifact this family was asked to load

    def load(self, artifact: bytes, row: Mapping[str, Any]) -> float:
        self.loads.append(artifact)
        return float(artifact.decode() or json.loads(row["params"])["scale"])

    def invoke(
        self, scale: float, row: Mapping[str, Any], call: Invocation
    ) -> list[dict[str, Any]]:
        return [{"score": scale * sum(i["features"])} for i in call.instances]


@pytest.fixture(scope="module")
def scorer(env: tuple[TestClient, Seeded, Any]) -> Iterator[str]:
    register_endpoint(SumScorer())
    env[2].save_model("test/sum", "test_sum", b"", params={"scale": 2})
    yield "test/sum"
    ENDPOINTS.pop("test_sum")


def test_ping(env: tuple[TestClient, Seeded, Any]) -> None:
    assert env[0].get("/ping").status_code == 200


def test_models_lists_newest_versions(env: tuple[TestClient, Seeded, Any]) -> None:
    client, seeded, _ = env
    r = client.get("/models")
    assert r.status_code == 200
    models = {m["name"]: m for m in r.json()["models"]}
    mine = models[f"mean_predictor/{seeded.key}"]
    assert mine["kind"] == "mean_predictor" and mine["series"] == seeded.key
    assert mine["version"] == 1 and mine["trained_at"].startswith("2026-03-16")
    assert "mean_predictor/__fleet__" in models
    page = client.get("/models", params={"limit": 1, "offset": 1}).json()
    assert len(page["models"]) == 1 and page["total"] == r.json()["total"]
    bad = client.get("/models", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["error"]["message"].startswith("query.limit")


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("application/json", json.dumps({"instances": [{"features": [1, 2]}, {"features": [3]}]})),
        ("application/jsonlines", '{"features": [1, 2]}\n{"features": [3]}\n'),
        ("text/csv", "1,2\n3\n"),
    ],
)
def test_rcf_format_invocations(
    env: tuple[TestClient, Seeded, Any], scorer: str, ctype: str, body: str
) -> None:
    client = env[0]
    r = client.post(
        f"/models/{scorer}/invocations", content=body, headers={**AUTH, "Content-Type": ctype}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"scores": [{"score": 6.0}, {"score": 6.0}]}


def test_jsonlines_answer(env: tuple[TestClient, Seeded, Any], scorer: str) -> None:
    r = env[0].post(
        f"/models/{scorer}/invocations",
        content="1,1\n",
        headers={**AUTH, "Content-Type": "text/csv", "Accept": "application/jsonlines"},
    )
    assert r.status_code == 200 and r.text == '{"score": 4.0}\n'


def test_invocation_bad_input(env: tuple[TestClient, Seeded, Any], scorer: str) -> None:
    client = env[0]
    url = f"/models/{scorer}/invocations"
    r = client.post(url, content="1,x\n", headers={**AUTH, "Content-Type": "text/csv"})
    assert r.status_code == 400
    assert (
        r.json()["error"]["message"]
        == "request:1: row is not all numbers (expected comma-separated numbers, one instance per row)"
    )
    r = client.post(url, content="{}", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 400 and "missing instances" in r.json()["error"]["message"]
    r = client.post(url, content="x", headers={**AUTH, "Content-Type": "application/xml"})
    assert r.status_code == 415 and r.json()["error"]["type"] == "UnsupportedMediaType"
    r = client.post(
        "/models/nope/invocations", content="1\n", headers={**AUTH, "Content-Type": "text/csv"}
    )
    assert r.status_code == 404 and r.json()["error"]["hint"] == "GET /models lists deployed models"


def test_invocation_needs_token(env: tuple[TestClient, Seeded, Any], scorer: str) -> None:
    url = f"/models/{scorer}/invocations"
    r = env[0].post(url, content="1\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = env[0].post(
        url, content="1\n", headers={"Content-Type": "text/csv", "Authorization": "Bearer nope"}
    )
    assert r.status_code == 403 and r.json()["error"]["type"] == "Forbidden"


def test_deepar_style_forecast_from_mean_predictor(env: tuple[TestClient, Seeded, Any]) -> None:
    client, seeded, _ = env
    body = {
        "instances": [{"start": "2026-03-16 07:00:00", "target": [100.0] * 60}],
        "configuration": {
            "num_samples": 5,
            "output_types": ["mean", "quantiles", "samples"],
            "quantiles": ["0.1", "0.9"],
            "prediction_length": 30,
        },
    }
    r = client.post(f"/models/mean_predictor/{seeded.key}/invocations", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    assert len(pred["mean"]) == 30 and len(pred["samples"]) == 5
    assert all(
        lo <= m <= hi
        for lo, m, hi in zip(
            pred["quantiles"]["0.1"], pred["mean"], pred["quantiles"]["0.9"], strict=True
        )
    )
    # 08:00 on a Monday is rush hour: the forecast rises over the half hour that starts there
    assert pred["mean"][-1] > pred["mean"][0] * 0.5
    body["configuration"]["output_types"] = ["median"]  # type: ignore[index]
    r = client.post(f"/models/mean_predictor/{seeded.key}/invocations", json=body, headers=AUTH)
    assert r.status_code == 400
    assert "configuration.output_types" in r.json()["error"]["message"]
    # 2 instances x 1000 samples x a week of minutes would be 20 M values: refused, not attempted
    body["instances"] = body["instances"] * 2  # type: ignore[operator]
    body["configuration"] = {
        "num_samples": 1000,
        "output_types": ["samples"],
        "prediction_length": 10_080,
    }
    r = client.post(f"/models/mean_predictor/{seeded.key}/invocations", json=body, headers=AUTH)
    assert r.status_code == 400 and "20,160,000 values" in r.json()["error"]["message"]


def test_predict_csv_and_json(env: tuple[TestClient, Seeded, Any]) -> None:
    client, seeded, _ = env
    body = {"start": "2026-03-16 08:00:00", "end": "2026-03-16 08:05:00"}
    r = client.post("/predict", json=body, params={"series": seeded.series_id})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(io.StringIO(r.text))
    assert list(frame.columns) == ["Timestamp", "Value", "Std"] and len(frame) == 5
    assert frame["Timestamp"][0] == "2026-03-16 08:00:00" and (frame["Value"] > 0).all()
    j = client.post(
        "/predict",
        json=body,
        params={"series": seeded.series_id},
        headers={"Accept": "application/json"},
    ).json()
    assert [p["Value"] for p in j["predictions"]] == pytest.approx(
        frame["Value"].tolist(), abs=1e-3
    )


def test_predict_bad_input(env: tuple[TestClient, Seeded, Any]) -> None:
    client = env[0]
    r = client.post("/predict", json={"start": "yesterday", "end": "2026-03-16 08:05:00"})
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("request: field 'start': time unreadable")
    r = client.post("/predict", json={"start": "2026-03-16 09:00:00", "end": "2026-03-16 08:00:00"})
    assert r.status_code == 400 and "end is not after start" in r.json()["error"]["message"]
    r = client.post("/predict", json={"start": "2026-03-16 09:00:00"})
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("body.end")
    r = client.post(
        "/predict",
        json={"start": "2026-03-16 08:00:00", "end": "2026-03-16 09:00:00"},
        params={"series": 999},
    )
    assert r.status_code == 404


def test_a_model_version_is_loaded_once(env: tuple[TestClient, Seeded, Any]) -> None:
    client, _, store = env
    family = SumScorer()
    family.kind = "test_cached"
    register_endpoint(family)
    try:
        store.save_model("test/cached", "test_cached", b"5")
        url = "/models/test/cached/invocations"
        for _ in range(3):
            r = client.post(url, json={"instances": [{"features": [1, 2]}]}, headers=AUTH)
            assert r.json() == {"scores": [{"score": 15.0}]}
        assert family.loads == [b"5"]  # read and loaded on the first call only
        store.save_model("test/cached", "test_cached", b"7")  # retrained: a new version
        r = client.post(url, json={"instances": [{"features": [1, 2]}]}, headers=AUTH)
        assert r.json() == {"scores": [{"score": 21.0}]} and family.loads == [b"5", b"7"]
    finally:
        ENDPOINTS.pop("test_cached")


def test_concurrent_first_calls_load_a_version_once(env: tuple[TestClient, Seeded, Any]) -> None:
    import threading
    import time

    from rushhour.api.endpoints import LoadedModels

    class Slow(SumScorer):
        def load(self, artifact: bytes, row: Mapping[str, Any]) -> float:
            time.sleep(0.2)  # long enough for every thread to arrive while it loads
            return super().load(artifact, row)

    _, _, store = env
    family = Slow()
    store.save_model("test/slow", "test_slow", b"3")
    row = store.load_model("test/slow", artifact=False)
    cache = LoadedModels(store)
    got: list[float] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.get(row, family))) for _ in range(6)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert got == [3.0] * 6 and family.loads == [b"3"]
