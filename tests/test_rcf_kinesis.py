"""The Kinesis-compatible operator, the per-series detector and ``rushhour detect --algo rcf``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rushhour.cli import main
from rushhour.detect.base import StreamingDetector
from rushhour.detect.rcf import RCFConfig, RCFDetector, random_cut_forest_with_explanation
from rushhour.errors import InputError


def _records(n: int = 400) -> list[dict[str, object]]:
    rng = np.random.default_rng(0)
    rows: list[dict[str, object]] = [
        {"ts": f"t{i}", "rpm": float(100 + rng.normal()), "errors": int(rng.integers(0, 3)),
         "ok": True, "region": "eu"}
        for i in range(n)
    ]  # fmt: skip
    if n > 350:
        rows[350]["errors"] = 40
    return rows


def test_operator_shape_and_sums() -> None:
    out = list(
        random_cut_forest_with_explanation(
            _records(), 50, 64, 100_000, 2, True, seed=1, exclude=("ts",), chunk=100
        )
    )
    assert len(out) == 400
    first = out[0]
    assert first["ANOMALY_SCORE"] == 0.0 and first["region"] == "eu" and first["ok"] is True
    top = max(range(400), key=lambda i: float(out[i]["ANOMALY_SCORE"]))  # type: ignore[arg-type]
    assert top == 350
    note = json.loads(str(out[350]["ANOMALY_EXPLANATION"]))
    assert set(note) == {"rpm", "errors"}  # booleans and strings are not inputs
    assert note["errors"]["DIRECTION"] == "HIGH"
    assert all(isinstance(v, str) for entry in note.values() for v in entry.values())
    total = sum(float(e["ATTRIBUTION_SCORE"]) for e in note.values())
    assert total == pytest.approx(out[350]["ANOMALY_SCORE"], rel=1e-9)
    assert float(note["errors"]["ATTRIBUTION_SCORE"]) > float(note["rpm"]["ATTRIBUTION_SCORE"])


def test_operator_without_directionality_and_bad_value() -> None:
    rows = _records(100)
    out = list(random_cut_forest_with_explanation(rows, 10, 32, seed=1, exclude=("ts",)))
    assert set(json.loads(str(out[-1]["ANOMALY_EXPLANATION"]))["rpm"]) == {"ATTRIBUTION_SCORE"}
    rows[60]["rpm"] = "n/a"
    with pytest.raises(InputError, match=r"field 'rpm': record 61 has 'n/a' in column 'rpm'"):
        list(random_cut_forest_with_explanation(rows, 10, 32, seed=1, exclude=("ts",)))


def test_detector_is_a_streaming_detector() -> None:
    det = RCFDetector(RCFConfig(number_of_trees=30, sub_sample_size=64, shingle_size=4, seed=2))
    assert isinstance(det, StreamingDetector)
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    flagged = []
    for i in range(800):
        t = t0 + timedelta(minutes=i)
        x = 1000.0 + 50 * np.sin(i / 30) + (3000.0 if i == 700 else 0.0)
        v = det.score_one(t, x)
        if v.anomalous:
            flagged.append(i)
        det.learn_one(t, x)
    assert 700 in flagged and len(flagged) < 20
    assert det.score_one(t0, 1000.0).explanation["threshold"] > 0


def test_cli_detect_writes_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    n = 600
    values = 100 + np.sin(np.arange(n) / 20) * 10
    values[500] = 400
    pd.DataFrame(
        {"timestamp": pd.date_range("2026-01-05", periods=n, freq="1min", tz="UTC"),
         "value": values, "errors": np.ones(n), "host": "a"}
    ).to_csv(src, index=False)  # fmt: skip
    dst = tmp_path / "out.csv"
    args = ["detect", str(src), "--out", str(dst), "--trees", "20", "--samples", "64"]
    assert main([*args, "--explain", "--seed", "1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["columns"] == ["value", "errors"] and summary["max_row"] == 502
    scored = pd.read_csv(dst)
    assert list(scored.columns) == [
        "timestamp", "value", "errors", "host", "anomaly_score", "anomaly_explanation"
    ]  # fmt: skip
    assert (scored["anomaly_score"][:64] == 0).all()
    note = json.loads(scored["anomaly_explanation"][500])
    assert note["value"]["DIRECTION"] == "HIGH"
    assert main([*args, "--seed", "1"]) == 0
    assert "anomaly_explanation" not in pd.read_csv(dst).columns


def test_cli_detect_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    src.write_text("timestamp,value\n2026-01-05T00:00:00Z,1\n2026-01-05T00:01:00Z,\n")
    assert main(["detect", str(src), "--algo", "iforest"]) == 2
    assert "--algo must be rcf" in capsys.readouterr().err
    assert main(["detect", str(src), "--out", str(tmp_path / "o.csv")]) == 1
    assert "in.csv:3: field 'value'" in capsys.readouterr().err.replace("\n", "")
    assert main(["detect", str(src), "--samples", "5"]) == 2
    assert "sub_sample_size must be an integer in 10..1000, got 5" in capsys.readouterr().err
