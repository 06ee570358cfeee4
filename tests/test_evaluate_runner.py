"""The evaluation runner and ``rushhour evaluate`` on a generated, labelled corpus."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rushhour.cli import main
from rushhour.errors import InputError
from rushhour.evaluate.events import event_metrics
from rushhour.evaluate.runner import evaluate_corpus, load_labels, write_results
from rushhour.series.generate import generate_traffic, labels_json


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpus")
    labels: dict[str, list[list[str]]] = {}
    for seed in (1, 2):
        tr = generate_traffic(
            datetime(2026, 1, 5, tzinfo=UTC),
            weeks=2,
            freq="5min",
            seed=seed,
            anomalies_per_day=0.3,
            kinds=("spike", "outage"),
        )
        name = f"synthetic/traffic_{seed}.csv"
        frame = tr.frame.reset_index()
        frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
        (root / "data" / "synthetic").mkdir(parents=True, exist_ok=True)
        frame.to_csv(root / "data" / name, index=False)
        labels |= labels_json(tr.anomalies, name)
    (root / "labels.json").write_text(json.dumps(labels))
    return root / "data", root / "labels.json"


def test_runner_scores_and_writes_nab_layout(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    data, labels = corpus
    ev = evaluate_corpus(data, load_labels(labels))
    assert set(ev.optimized) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    events = ev.overall_events
    assert events.tp >= 1 and events.tp + events.fn <= sum(len(f.series.rows) for f in ev.files)
    written = write_results(ev, tmp_path)
    frame = pd.read_csv(tmp_path / "synthetic" / "traffic_1.csv")
    assert list(frame.columns) == ["timestamp", "value", "anomaly_score", "alert", "label"]
    assert frame["anomaly_score"].between(0, 1).all() and set(frame["alert"]) <= {0, 1}
    assert frame["label"].sum() > 0
    assert tmp_path / "summary.json" in written


def test_chunked_evaluation_is_identical(corpus: tuple[Path, Path]) -> None:
    data, labels = corpus
    whole = evaluate_corpus(data, load_labels(labels))
    chunked = evaluate_corpus(data, load_labels(labels), chunk=333)
    for a, b in zip(whole.files, chunked.files, strict=True):
        np.testing.assert_allclose(a.score, b.score)
        np.testing.assert_array_equal(a.alert, b.alert)


def test_optimized_threshold_is_at_least_as_good_as_the_shipped_alerts(
    corpus: tuple[Path, Path],
) -> None:
    data, labels = corpus
    ev = evaluate_corpus(data, load_labels(labels))
    # the shipped alerts are one particular detection set; the sweep over raw scores may differ, but
    # both must lie between null (0) and perfect (100)
    for result in (*ev.optimized.values(), *ev.shipped.values()):
        assert -1000 < result.normalized <= 100


def test_cli_evaluate_json(
    corpus: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = corpus
    code = main(
        ["evaluate", str(data), "--labels", str(labels), "--out", str(tmp_path / "r"), "--json"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == 2 and summary["windows"] > 0
    assert set(summary["events"]) >= {"precision", "recall", "f1", "mean_delay", "median_delay"}
    assert (tmp_path / "r" / "synthetic" / "traffic_2.csv").is_file()


def test_cli_rejects_unknown_detector_setting(
    corpus: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = corpus
    cfg = tmp_path / "detectors.toml"
    cfg.write_text("[detector]\nthreshhold = 0.3\n")
    code = main(["evaluate", str(data), "--labels", str(labels), "--config", str(cfg), "--json"])
    assert code == 2
    assert "unknown [detector] setting(s) ['threshhold']" in capsys.readouterr().out


def test_bad_labels_and_values_name_the_source(tmp_path: Path) -> None:
    bad = tmp_path / "labels.json"
    bad.write_text('{"a.csv": [["not a time", "2014-01-01"]]}')
    with pytest.raises(InputError, match="bad window"):
        load_labels(bad)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text(
        "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,x\n"
    )
    with pytest.raises(InputError, match=r"a.csv:3: field 'value': value is not a number"):
        evaluate_corpus(tmp_path / "d", {"a.csv": []})


def test_rows_run_in_file_order_and_missing_files_are_reported(
    corpus: tuple[Path, Path], tmp_path: Path
) -> None:
    # NAB's files repeat timestamps at daylight-saving changes; rows are streamed as they come
    rows = [f"2014-01-01 00:{m:02d}:00,{m % 7}" for m in range(0, 60, 5)]
    rows.insert(6, rows[5])
    (tmp_path / "a.csv").write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    ev = evaluate_corpus(tmp_path, {"a.csv": []})
    assert len(ev.files[0].score) == 13
    data, labels = corpus
    windows = load_labels(labels) | {"elsewhere/gone.csv": []}
    ev = evaluate_corpus(data, windows)
    assert ev.missing == ["elsewhere/gone.csv"] and ev.to_json()["missing"] == ev.missing


def test_event_metrics_count_each_window_once() -> None:
    alerts = np.zeros(50, dtype=bool)
    alerts[[11, 12, 13, 30]] = True
    m = event_metrics(alerts, [(10, 15), (20, 25)])
    assert (m.tp, m.fn, m.fp, m.delays) == (1, 1, 1, [1])
    assert m.precision == 0.5 and m.recall == 0.5 and m.median_delay == 1.0


def test_cli_takes_a_holiday_calendar(
    corpus: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, labels = corpus
    cfg = tmp_path / "detectors.toml"
    runs = {}
    for name, text in (("us", 'holidays_country = "US"\n'), ("none", 'holidays_country = ""\n')):
        cfg.write_text("[detector]\n" + text)
        args = ["evaluate", str(data), "--labels", str(labels), "--out", str(tmp_path / name)]
        assert main([*args, "--config", str(cfg), "--json"]) == 0
        runs[name] = json.loads(capsys.readouterr().out)["config"]
    assert runs["us"]["holidays_country"] == "US"
    assert runs["none"]["holidays_country"] is None  # TOML's empty string: no calendar
    cfg.write_text('[detector]\nholidays_country = "XX"\n')
    assert main(["evaluate", str(data), "--labels", str(labels), "--config", str(cfg)]) == 2
    assert "no holiday calendar for country 'XX'" in capsys.readouterr().err


def test_a_bare_label_key_finds_its_file_anywhere_under_the_corpus(tmp_path: Path) -> None:
    # `rushhour generate --out traffic.csv` labels "traffic.csv"; the corpus may hold it in a category
    rows = [f"2014-01-01 00:{m:02d}:00,{m % 7}" for m in range(0, 60, 5)]
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "traffic.csv").write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    win = [(pd.Timestamp("2014-01-01 00:10"), pd.Timestamp("2014-01-01 00:20"))]
    ev = evaluate_corpus(tmp_path, {"traffic.csv": win})
    assert [f.name for f in ev.files] == ["gen/traffic.csv"] and ev.missing == []
    assert ev.files[0].series.rows == [(2, 4)]
    # a key that ends two paths is ambiguous, and says which
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "traffic.csv").write_text("timestamp,value\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"'traffic.csv' matches 2 files: gen/traffic.csv"):
        evaluate_corpus(tmp_path, {"traffic.csv": win})
    # an exact key wins, and a key that names nothing is reported missing
    ev = evaluate_corpus(tmp_path, {"other/traffic.csv": win, "nowhere.csv": []})
    assert [f.name for f in ev.files] == ["other/traffic.csv"] and ev.missing == ["nowhere.csv"]


def test_cli_judges_with_the_settings_calendar_and_zone_by_default(
    corpus: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # as `rushhour run` would: the settings' public holidays (US by default) and timezone
    data, labels = corpus
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUSHHOUR_TIMEZONE", "Europe/Berlin")
    args = ["evaluate", str(data), "--labels", str(labels), "--out", str(tmp_path / "r"), "--json"]
    assert main(args) == 0
    cfg = json.loads(capsys.readouterr().out)["config"]
    assert (cfg["holidays_country"], cfg["timezone"]) == ("US", "Europe/Berlin")
    (tmp_path / "d.toml").write_text('[detector]\nholidays_country = ""\nholdoff = 30\n')
    assert main([*args, "--config", str(tmp_path / "d.toml")]) == 0
    cfg = json.loads(capsys.readouterr().out)["config"]
    assert (cfg["holidays_country"], cfg["timezone"], cfg["holdoff"]) == (None, "Europe/Berlin", 30)
