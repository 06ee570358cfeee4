"""Operations and contract: one error shape, tokens, /metrics, /healthz, CORS, the OpenAPI schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rushhour.api import create_app
from rushhour.api.auth import TOKEN_FILE, TokenGuard, digest
from rushhour.errors import InputError, NotFittedError, StoreError
from rushhour.store import open_store
from tests.api_helpers import AUTH, TOKEN, guard, settings_for

DOCS = Path(__file__).parents[1] / "docs" / "openapi.json"


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    settings = settings_for(tmp_path, cors_origins=["http://dash.example"])
    store = open_store(settings.store_url())
    app = create_app(settings, store, guard=guard())

    @app.get("/boom/{kind}", include_in_schema=False)
    def boom(kind: str) -> None:
        raise {
            "input": InputError("bad", source="f.csv", line=3),
            "fit": NotFittedError("no model"),
            "store": StoreError("db down"),
        }[kind]

    return TestClient(app)


@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [
        (
            "input",
            400,
            {
                "type": "InputError",
                "message": "f.csv:3: bad",
                "hint": "fix the input and try again; the command's --help lists the formats it reads",
            },
        ),
        (
            "fit",
            409,
            {
                "type": "NotFittedError",
                "message": "no model",
                "hint": "fit the model first (`rushhour train`), or give it more history",
            },
        ),
        (
            "store",
            503,
            {
                "type": "StoreError",
                "message": "db down",
                "hint": "check [store] url in the config, and that the database is reachable",
            },
        ),
    ],
)
def test_typed_errors_have_one_shape(
    client: TestClient, kind: str, status: int, body: dict[str, str]
) -> None:
    r = client.get(f"/boom/{kind}")
    assert r.status_code == status and r.json() == {"error": body}


def test_unknown_route_has_the_same_shape(client: TestClient) -> None:
    r = client.get("/nowhere")
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "type": "NotFound",
            "message": "Not Found",
            "hint": "see /openapi.json for the routes",
        }
    }


def test_generated_token_is_kept_hashed_and_shown_once(tmp_path: Path) -> None:
    guard1, shown = TokenGuard.resolve(None, tmp_path)
    assert shown is not None and len(shown) >= 40
    stored = (tmp_path / TOKEN_FILE).read_text().strip()
    assert stored == digest(shown) and shown not in stored
    guard2, again = TokenGuard.resolve(None, tmp_path)
    assert again is None and guard2.check(shown) and not guard2.check(shown + "x")
    assert TokenGuard.resolve("configured", tmp_path)[0].check("configured")
    assert guard1 == guard2


def test_metrics_and_health(client: TestClient) -> None:
    client.get("/ping")
    text = client.get("/metrics").text
    assert 'rushhour_http_requests_total{method="GET",route="/ping",status="200"} 1.0' in text
    assert "rushhour_alert_deliveries" in text
    h = client.get("/healthz")
    assert h.status_code == 200 and h.json()["checks"] == {
        "store": "ok",
        "pipeline": "not in this process",
    }


def test_cors_only_for_configured_origins(client: TestClient) -> None:
    pre = {"Access-Control-Request-Method": "GET"}
    ok = client.options("/series", headers={"Origin": "http://dash.example", **pre})
    assert ok.headers["access-control-allow-origin"] == "http://dash.example"
    other = client.options("/series", headers={"Origin": "http://evil.example", **pre})
    assert "access-control-allow-origin" not in other.headers


def test_openapi_is_published_and_written_to_docs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in (
        "/ping",
        "/models",
        "/models/{name}/invocations",
        "/predict",
        "/ingest",
        "/series",
        "/series/{series_id}/points",
        "/anomalies",
        "/alerts",
        "/silences",
        "/train",
        "/forecast/{series_id}",
        "/plan/{series_id}",
        "/metrics",
        "/healthz",
    ):
        assert path in schema["paths"], path
    DOCS.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


def test_token_header_forms(client: TestClient) -> None:
    assert client.post("/train", headers={"Authorization": TOKEN}).status_code == 401
    assert client.post("/train", headers={"Authorization": "Basic " + TOKEN}).status_code == 401
    assert client.post("/train", headers=AUTH).status_code == 200


def test_token_from_the_environment(tmp_path: Path) -> None:
    from rushhour.settings import load_settings

    settings = load_settings(
        None, {"data_dir": str(tmp_path)}, environ={"RUSHHOUR_API__TOKEN": "from-env-123"}
    )
    assert settings.masked()["api"]["token"] == "***"
    store = open_store(settings.store_url())
    c = TestClient(create_app(settings, store))
    assert c.post("/train", headers={"Authorization": "Bearer from-env-123"}).status_code == 200
    assert c.post("/train", headers=AUTH).status_code == 403
    assert not (tmp_path / TOKEN_FILE).exists()  # a configured token is never written down
    store.close()
