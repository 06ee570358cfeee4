"""DeepAR on a tiny configuration: trained from a JSON-lines export, forecasts, saved and loaded."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("gluonts", reason="DeepAR needs the `deepar` extra")

from rushhour.cli import main
from rushhour.forecast.deepar import DeepAR, calendar_features
from rushhour.forecast.deepar_format import DeepARRecord, read_deepar_jsonl
from rushhour.series.generate import generate_traffic

START = datetime(2026, 1, 5, tzinfo=UTC)
TINY = {
    "prediction_length": "6h",
    "context_length": "6h",
    "epochs": 2,
    "num_batches_per_epoch": 4,
    "hidden_size": 8,
    "num_layers": 1,
    "num_samples": 50,
    "batch_size": 16,
}


def _export(path: Path) -> pd.Series:
    """Two series (ids 0 and 1) at 1 hour, with holiday and weekend flags, written as JSON lines."""
    lines = []
    first = None
    for sid in range(2):
        y = generate_traffic(START, weeks=3, freq="1h", seed=sid, anomalies_per_day=0).series
        y.iloc[5] = np.nan
        feats = calendar_features(y.index, "UTC", "US", None)
        rec = DeepARRecord(
            start=y.index[0], target=y.to_numpy(dtype=float), cat=[sid], dynamic_feat=feats
        )
        lines.append(json.dumps(rec.to_json()))
        first = y if first is None else first
    path.write_text("\n".join(lines) + "\n")
    assert first is not None
    return first


@pytest.mark.slow
def test_train_from_export_forecast_save_load(tmp_path: Path) -> None:
    series = _export(tmp_path / "export.jsonl")
    records = read_deepar_jsonl(tmp_path / "export.jsonl")
    model = DeepAR(**TINY).fit_records(records, "1h")  # type: ignore[arg-type]
    assert model.cardinality_ == [2] and model.n_feat_ == 2
    start = START + timedelta(weeks=3)
    fc = model.predict(start, start + timedelta(hours=6))
    assert len(fc.mean) == 6 and (fc.std > 0).all()
    assert (fc.quantiles[0.1] <= fc.quantiles[0.5]).all() and (
        fc.quantiles[0.5] <= fc.quantiles[0.9]
    ).all()
    short = model.predict(start, start + timedelta(hours=2))  # samples only 2 steps ahead
    assert len(short.mean) == 2 and np.isfinite(short.mean).all()
    assert model.predictor_.prediction_net.model.prediction_length == 6  # restored afterwards
    model.save(tmp_path / "model")
    again = DeepAR.load(tmp_path / "model")
    fc2 = again.predict(start, start + timedelta(hours=6))
    # sampling differs between runs, but the distribution is the same network's
    assert np.allclose(fc2.mean, fc.mean, rtol=0.5)
    with pytest.raises(Exception, match="trained for 6h ahead"):
        again.predict(start, start + timedelta(days=1))
    del series


@pytest.mark.slow
def test_cli_trains_and_forecasts(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    series = _export(in_tmp / "export.jsonl")
    args = [
        "deepar-train",
        "export.jsonl",
        "--step",
        "1h",
        "--out",
        "model",
        "--prediction-length",
        "6h",
        "--context-length",
        "6h",
        "--epochs",
        "1",
        "--batches",
        "3",
        "--hidden-size",
        "8",
        "--num-layers",
        "1",
        "--json",
    ]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["series"] == 2
    frame = series.rename("value").reset_index()
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    frame.to_csv("s.csv", index=False)
    assert (
        main(
            [
                "forecast",
                "s.csv",
                "--start",
                "2026-01-25 00:00:00",
                "--horizon",
                "3h",
                "--load",
                "model",
                "--out",
                "fc.csv",
            ]
        )
        == 0
    )
    out = pd.read_csv("fc.csv")
    assert len(out) == 3 and out["Value"].gt(0).all()
