"""DeepAR behind SageMaker's DeepAR inference format: a tiny network trained here, deployed with the CLI,
listed by GET /models and invoked through the real app (JSON and JSON lines, bad input, auth)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

pytest.importorskip("gluonts", reason="DeepAR needs the `deepar` extra")

from rushhour.api import create_app
from rushhour.cli import main
from rushhour.forecast.deepar import calendar_features
from rushhour.forecast.deepar_format import DeepARRecord
from rushhour.series.generate import generate_traffic
from rushhour.store import open_store
from tests.api_helpers import AUTH, guard, settings_for

START = datetime(2026, 1, 5, tzinfo=UTC)
STEPS = 6  # prediction_length 6h at 1h
TINY = {
    "prediction_length": "6h",
    "context_length": "6h",
    "epochs": 1,
    "num_batches_per_epoch": 3,
    "hidden_size": 8,
    "num_layers": 1,
    "num_samples": 20,
    "batch_size": 16,
}
URL = "/models/deepar/tiny/invocations"


def _records() -> list[DeepARRecord]:
    """Two series (cat 0 and 1) of two weeks at 1 hour, with the holiday and weekend flags."""
    out = []
    for sid in range(2):
        y = generate_traffic(START, weeks=2, freq="1h", seed=sid, anomalies_per_day=0).series
        feats = calendar_features(y.index, "UTC", "US", None)
        out.append(DeepARRecord(y.index[0], y.to_numpy(dtype=float), [sid], feats))
    return out


def _cli(tmp: Path, *args: str) -> int:
    return main([*args, "--config", str(tmp / "rushhour.toml"), "--json"])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Any, Path]]:
    tmp = tmp_path_factory.mktemp("deepar")
    export = tmp / "export.jsonl"
    export.write_text("".join(json.dumps(r.to_json()) + "\n" for r in _records()))
    settings = settings_for(tmp)
    (tmp / "rushhour.toml").write_text(f'data_dir = "{tmp / "data"}"\n')
    trained = _cli(
        tmp,
        "deepar-train",
        str(export),
        "--step",
        "1h",
        "--out",
        str(tmp / "model"),
        *("--prediction-length", "6h", "--context-length", "6h", "--epochs", "1"),
        *("--batches", "3", "--hidden-size", "8", "--num-layers", "1"),
        *(
            "--deploy",
            "tiny",
            "--inference-config",
            '{"num_samples": 30, "quantiles": ["0.2", "0.8"]}',
        ),
    )
    assert trained == 0
    store = open_store(settings.store_url())
    with TestClient(create_app(settings, store, guard=guard())) as client:
        yield client, store, tmp
    store.close()


def _instance(n: int = 24, **over: Any) -> dict[str, Any]:
    """The last ``n`` hours of series 1 as SageMaker's DeepAR instance, features covering the horizon."""
    y = generate_traffic(START, weeks=2, freq="1h", seed=1, anomalies_per_day=0).series
    past = y.iloc[-n:]
    index = pd.date_range(past.index[0], periods=n + STEPS, freq="1h")
    target: list[Any] = [round(float(v), 2) for v in past]
    target[3] = "NaN"
    inst = {
        "start": past.index[0].strftime("%Y-%m-%d %H:%M:%S"),
        "target": target,
        "cat": [1],
        "dynamic_feat": calendar_features(index, "UTC", "US", None).tolist(),
    }
    return inst | over


def _post(client: TestClient, body: str, ctype: str = "application/json", **headers: str) -> Any:
    return client.post(URL, content=body, headers={**AUTH, "Content-Type": ctype, **headers})


def test_models_lists_the_deployed_network(env: tuple[TestClient, Any, Path]) -> None:
    r = env[0].get("/models", params={"kind": "deepar"})
    assert r.status_code == 200
    (model,) = r.json()["models"]
    assert model["name"] == "deepar/tiny" and model["kind"] == "deepar" and model["version"] == 1


def test_json_invocation_in_sagemakers_shape(env: tuple[TestClient, Any, Path]) -> None:
    body = {
        "instances": [_instance(), _instance(n=12, cat=[0])],
        "configuration": {
            "num_samples": 40,
            "output_types": ["mean", "quantiles", "samples"],
            "quantiles": ["0.1", "0.5", "0.9"],
        },
    }
    r = _post(env[0], json.dumps(body))
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert len(preds) == 2
    for pred in preds:
        assert set(pred) == {"mean", "quantiles", "samples"}
        assert set(pred["quantiles"]) == {"0.1", "0.5", "0.9"}
        assert len(pred["mean"]) == STEPS and len(pred["samples"]) == 40
        assert all(len(s) == STEPS for s in pred["samples"])
        q = {k: np.array(v) for k, v in pred["quantiles"].items()}
        assert (q["0.1"] <= q["0.5"]).all() and (q["0.5"] <= q["0.9"]).all()
        samples = np.array(pred["samples"])
        # the summaries are of these very samples
        assert np.allclose(samples.mean(axis=0), pred["mean"], atol=1e-3)
        assert np.allclose(np.quantile(samples, 0.9, axis=0), q["0.9"], atol=1e-3)
        assert (samples >= 0).all()


def test_a_one_value_target_and_a_date_as_start(env: tuple[TestClient, Any, Path]) -> None:
    # SageMaker's own example has such an instance: the network pads the missing context
    inst = {"start": "2026-01-18", "target": [1000.0], "cat": [0], "dynamic_feat": [[0.0] * 7] * 2}
    r = _post(
        env[0], json.dumps({"instances": [inst], "configuration": {"output_types": ["mean"]}})
    )
    assert r.status_code == 200, r.text
    (pred,) = r.json()["predictions"]
    assert set(pred) == {"mean"} and len(pred["mean"]) == STEPS
    assert all(v is not None and v >= 0 for v in pred["mean"])


def test_jsonlines_use_the_deployed_configuration(env: tuple[TestClient, Any, Path]) -> None:
    lines = "".join(json.dumps(x) + "\n" for x in (_instance(), _instance(n=8, cat=[0])))
    r = _post(env[0], lines, "application/jsonlines", Accept="application/jsonlines")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/jsonlines")
    preds = [json.loads(line) for line in r.text.splitlines()]
    assert len(preds) == 2
    for pred in preds:
        # --inference-config gave the quantiles; output_types keeps SageMaker's default
        assert set(pred) == {"mean", "quantiles"} and set(pred["quantiles"]) == {"0.2", "0.8"}
        assert len(pred["mean"]) == STEPS


@pytest.mark.parametrize(
    ("instance", "configuration", "field", "needs"),
    [
        ({"dynamic_feat": [[0.0] * 30]}, {}, "instances[0].dynamic_feat", "2 rows of"),
        (
            {"dynamic_feat": [[0.0] * 24, [0.0] * 24]},
            {},
            "instances[0].dynamic_feat",
            "= 30 values",
        ),
        ({"dynamic_feat": None}, {}, "instances[0].dynamic_feat", "2 rows of"),
        ({"cat": [2]}, {}, "instances[0].cat", "1 category ids below [2]"),
        ({"cat": []}, {}, "instances[0].cat", "1 category ids below [2]"),
        ({"target": ["x"] * 24}, {}, "'target'", "a number"),
        ({"start": "soon"}, {}, "'start'", "YYYY-MM-DD HH:MM:SS"),
        ({}, {"output_types": ["median"]}, "configuration.output_types", "non-empty list"),
        ({}, {"quantiles": ["0.5", "1.5"]}, "configuration.quantiles", "levels in (0, 1)"),
        ({}, {"quantiles": ["0"]}, "configuration.quantiles", "levels in (0, 1)"),
        ({}, {"num_samples": 0}, "configuration.num_samples", "[1, 1000]"),
        ({}, {"prediction_length": 7}, "configuration.prediction_length", "6, the pred"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    env: tuple[TestClient, Any, Path],
    instance: dict[str, Any],
    configuration: dict[str, Any],
    field: str,
    needs: str,
) -> None:
    body = {"instances": [_instance(**instance)], "configuration": configuration}
    r = _post(env[0], json.dumps(body))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "InputError" and field in err["message"] and needs in err["message"]


def test_bad_jsonlines_and_unknown_model(env: tuple[TestClient, Any, Path]) -> None:
    r = _post(env[0], json.dumps(_instance()) + "\n{nope\n", "application/jsonlines")
    assert r.status_code == 400 and "request:2" in r.json()["error"]["message"]
    r = env[0].post(
        "/models/deepar/other/invocations",
        content="{}",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFound"


def test_invocation_needs_the_token(env: tuple[TestClient, Any, Path]) -> None:
    body = json.dumps({"instances": [_instance()]})
    r = env[0].post(URL, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "Unauthorized"
    r = env[0].post(
        URL, content=body, headers={"Content-Type": "application/json", "Authorization": "Bearer x"}
    )
    assert r.status_code == 403


def test_without_the_extra_the_answer_says_to_install_it(
    env: tuple[TestClient, Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # a module set to None in sys.modules is one Python cannot import: the extra is missing
    monkeypatch.setitem(sys.modules, "gluonts", None)
    r = _post(env[0], json.dumps({"instances": [_instance()]}))
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["type"] == "ServiceUnavailable" and "rushhour[deepar]" in err["hint"]


def test_redeploy_is_a_new_version(
    env: tuple[TestClient, Any, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    client, _, tmp = env
    capsys.readouterr()
    assert _cli(tmp, "deepar-deploy", str(tmp / "model"), "--name", "tiny") == 0
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (said["model"], said["version"]) == ("deepar/tiny", 2)
    (model,) = client.get("/models", params={"kind": "deepar"}).json()["models"]
    assert model["version"] == 2
    # version 2 was deployed without a configuration: SageMaker's nine default quantiles
    r = _post(client, json.dumps({"instances": [_instance()]}))
    assert r.status_code == 200 and len(r.json()["predictions"][0]["quantiles"]) == 9
    bad = '{"output_types": ["x"]}'
    args = ("deepar-deploy", str(tmp / "model"), "--name", "bad", "--inference-config", bad)
    assert _cli(tmp, *args) != 0
    err = json.loads(capsys.readouterr().out)["error"]
    assert err["message"].startswith("--inference-config: configuration.output_types: unknown")
    assert err["hint"].startswith("expected a non-empty list of")
    assert client.get("/models", params={"kind": "deepar"}).json()["total"] == 1
