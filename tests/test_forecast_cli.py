"""`rushhour backtest`, `forecast` and `plan` end to end through the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rushhour.cli import main
from rushhour.forecast.adaptive import AdaptiveProfile
from rushhour.series.generate import generate_traffic

START = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
def csv_file(in_tmp: Path) -> Path:
    y = generate_traffic(START, weeks=4, freq="30min", seed=3, anomalies_per_day=0).series
    frame = y.rename("value").reset_index()
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    path = in_tmp / "traffic.csv"
    frame.to_csv(path, index=False)
    return path


def test_forecast_uses_only_history_before_start(
    csv_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = "2026-01-28 06:00:00"
    assert (
        main(
            [
                "forecast",
                str(csv_file),
                "--start",
                start,
                "--horizon",
                "1d",
                "--out",
                "a.csv",
                "--json",
            ]
        )
        == 0
    )
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == "adaptive" and info["steps"] == 48
    # scrambling everything from --start on changes nothing
    frame = pd.read_csv(csv_file)
    frame.loc[frame["timestamp"] >= start, "value"] = 1
    frame.to_csv("b_in.csv", index=False)
    assert (
        main(["forecast", "b_in.csv", "--start", start, "--horizon", "1d", "--out", "b.csv"]) == 0
    )
    a, b = pd.read_csv("a.csv"), pd.read_csv("b.csv")
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == [
        "Timestamp",
        "Value",
        "Std",
        "q0.025",
        "q0.05",
        "q0.1",
        "q0.5",
        "q0.9",
        "q0.95",
        "q0.975",
    ]
    assert a["Timestamp"].iloc[0] == start
    # and it is what the API gives for the truncated history
    y = pd.read_csv(csv_file, parse_dates=["timestamp"]).set_index("timestamp")["value"]
    y.index = y.index.tz_localize("UTC")
    ref = (
        AdaptiveProfile()
        .fit(y[y.index < start])
        .predict(datetime(2026, 1, 28, 6, tzinfo=UTC), datetime(2026, 1, 29, 6, tzinfo=UTC))
    )
    np.testing.assert_allclose(a["Value"].to_numpy(), ref.mean, rtol=1e-6, atol=1e-3)


def test_forecast_with_another_model(csv_file: Path) -> None:
    assert (
        main(
            [
                "forecast",
                str(csv_file),
                "--start",
                "2026-01-28 00:00:00",
                "--horizon",
                "3h",
                "--model",
                "mean-predictor",
                "--out",
                "mp.csv",
            ]
        )
        == 0
    )
    assert len(pd.read_csv("mp.csv")) == 6


def test_forecast_errors(csv_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forecast", str(csv_file), "--start", "someday"]) == 2
    assert "cannot read --start 'someday'" in capsys.readouterr().err
    assert main(["forecast", str(csv_file), "--start", "2020-01-01 00:00:00", "--json"]) == 1
    assert "no history before 2020-01-01" in json.loads(capsys.readouterr().out)["error"]["message"]
    assert main(["forecast", "missing.csv", "--start", "2026-01-28 00:00:00"]) == 1
    assert "missing.csv: file does not exist" in capsys.readouterr().err


def test_plan(csv_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "plan",
                str(csv_file),
                "--per-instance-rps",
                "20",
                "--target-utilization",
                "0.7",
                "--horizon",
                "48h",
                "--json",
            ]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    caps = data["CapacityForecast"]["Values"]
    assert len(caps) == 48 and data["CapacityForecast"]["Timestamps"][0] == "2026-02-02T00:00:00Z"
    assert max(caps) > 2 * min(caps)  # rush hour needs more than the night
    assert 0.2 < data["Summary"]["saving"] < 0.9
    assert Path("plan.json").exists() and len(Path("plan.csv").read_text().splitlines()) == 49


def test_backtest_writes_table_json_and_plot(
    csv_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "backtest",
                str(csv_file),
                "--models",
                "seasonal-naive,adaptive",
                "--weeks",
                "1",
                "--out-dir",
                "bt",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "all windows" in text and "saved bt/backtest.md" in text
    assert {p.name for p in Path("bt").iterdir()} == {
        "backtest.md",
        "backtest.json",
        "backtest.png",
    }
    assert "| adaptive | 3h | all |" in Path("bt/backtest.md").read_text()
    assert main(["backtest", str(csv_file), "--models", "nope", "--weeks", "1", "--json"]) == 2
    assert "unknown model 'nope'" in json.loads(capsys.readouterr().out)["error"]["message"]
