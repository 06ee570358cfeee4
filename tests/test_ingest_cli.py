"""`rushhour ingest` and `rushhour generate --format`: summaries, ledger, strict mode, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rushhour.cli import main


def run_json(args: list[str], capsys: pytest.CaptureFixture[str], code: int = 0) -> dict:  # type: ignore[type-arg]
    assert main(args) == code
    return json.loads(capsys.readouterr().out)


GEN = [
    "generate",
    "--weeks",
    "1",
    "--start",
    "2026-03-02",
    "--seed",
    "5",
    "--base-rpm",
    "2",
    "--anomalies-per-day",
    "1",
]


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("flowlog", "flow.log.gz"),
        ("flowlog-v5", "v5.log"),
        ("cloudwatch-subscription", "cw.b64"),
        ("jsonl", "s.jsonl"),
        ("parquet", "s.parquet"),
    ],
)
def test_generated_inputs_ingest_back_to_the_generated_counts(
    fmt: str, name: str, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = run_json([*GEN, "--out", "ref.csv", "--json"], capsys)
    gen = run_json([*GEN, "--format", fmt, "--out", name, "--json"], capsys)
    assert gen["total_requests"] == ref["total_requests"] and gen["anomalies"] == ref["anomalies"]
    assert json.loads(Path(name).with_suffix(".labels.json").read_text())
    summary = run_json(
        ["ingest", name, "--labels", "", "--out", "out.csv", "--ledger", "l.json", "--json"], capsys
    )
    assert summary["rejected"] == 0 and summary["gaps"] == [] and summary["buckets"] == 7 * 1440
    got = pd.read_csv("out.csv")["Value"].to_numpy()
    want = pd.read_csv("ref.csv")["value"].to_numpy()
    assert np.array_equal(got, want)


def test_generated_metrics_dump_keeps_the_total(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = run_json([*GEN, "--format", "metrics", "--out", "output-mass.json", "--json"], capsys)
    text = Path("output-mass.json").read_text()
    assert text.startswith("{'response-code-2xx'") and "tzinfo=tzlocal()" in text
    summary = run_json(
        ["ingest", "output-mass.json", "--out", "m.parquet", "--ledger", "l.json", "--json"], capsys
    )
    assert sum(s["total"] for s in summary["series"]) == pytest.approx(ref["total_requests"])
    assert {s["name"].split(",")[1] for s in summary["series"]} == {"status=ok}", "status=failed}"}


def test_summary_rejections_duplicates_and_strict(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = "2 1 eni-a 10.0.0.1 10.0.0.2 1 443 6 3 90 1767225600 1767225610 ACCEPT OK\n"
    Path("a.log").write_text(
        good * 3 + "2 1 eni-a broken\n" + good.replace("ACCEPT OK", "ACCEPT NODATA")
    )
    s = run_json(["ingest", "a.log", "--out", "a.csv", "--ledger", "l.json", "--json"], capsys)
    assert (s["records"], s["nodata"], s["rejected"], s["buckets"]) == (3, 1, 1, 1)
    assert s["rejected_by_reason"]["wrong field count"] == {"count": 1, "examples": ["a.log:4"]}
    Path("copy.log").write_text(Path("a.log").read_text())
    s = run_json(["ingest", "copy.log", "--out", "b.csv", "--ledger", "l.json", "--json"], capsys)
    assert s["records"] == 0 and s["duplicates_skipped"] == [
        {"source": "copy.log", "duplicate_of": "a.log"}
    ]
    s = run_json(
        ["ingest", "a.log", "a.log", "--force", "--out", "c.csv", "--ledger", "l.json", "--json"],
        capsys,
    )
    assert s["records"] == 3 and len(s["duplicates_skipped"]) == 1
    err = run_json(
        ["ingest", "a.log", "--strict", "--force", "--ledger", "l.json", "--json"], capsys, code=1
    )
    assert (
        err["error"]["type"] == "InputError"
        and "a.log:4: wrong field count" in err["error"]["message"]
    )


def test_errors_name_the_file(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run_json(["ingest", "missing.log", "--json"], capsys, code=1)
    assert "missing.log: no such file" in err["error"]["message"]
    Path("a.csv").write_text("timestamp,value\n2026-01-01T00:00:00Z,1\n")
    err = run_json(["ingest", "a.csv", "--out", "x.txt", "--json"], capsys, code=2)
    assert "export format" in err["error"]["message"]
    err = run_json(["ingest", "a.csv", "--bucket", "0s", "--json"], capsys, code=2)
    assert "bucket width" in err["error"]["message"]


def test_text_summary_and_deepar_output(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("a.csv").write_text("timestamp,value\n2026-01-01T00:00:00Z,1\n2026-01-01T00:10:00Z,2\n")
    Path("b.csv").write_text("timestamp,value\n2026-01-01T01:00:00Z,4\n")
    assert (
        main(
            [
                "ingest",
                "a.csv",
                "b.csv",
                "--bucket",
                "5m",
                "--out",
                "d.jsonl",
                "--prediction-length",
                "3",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "13 buckets of 5m" in text and "1 gap(s)" in text and "wrote" in text
    [line] = [json.loads(x) for x in Path("d.jsonl").read_text().splitlines()]
    assert (
        line["target"][:3] == [1, 0, 2] and line["target"][3] == "NaN" and line["target"][-1] == 4
    )
    assert len(line["dynamic_feat"][0]) == 13 + 3


def test_generate_rejects_unknown_format(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = run_json([*GEN, "--format", "xml", "--json"], capsys, code=2)
    assert "unknown output format 'xml'" in err["error"]["message"]


def test_cleaning_options_rescale_smooth_holidays_and_holdout(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    days = pd.date_range("2025-12-29", periods=21, freq="D", tz="UTC")
    values = [10.0] * 21
    values[1:3] = [20.0, 20.0]  # a x2 glitch on Dec 30 and 31
    pd.DataFrame({"timestamp": days.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": values}).to_csv(
        "d.csv", index=False
    )
    args = [
        "ingest",
        "d.csv",
        "--bucket",
        "1d",
        "--rescale",
        "2025-12-30..2026-01-01:0.5",
        "--exclude-holidays",
    ]
    s = run_json(
        [
            *args,
            "--holdout",
            "1w",
            "--smooth",
            "box:3",
            "--out",
            "o.csv",
            "--ledger",
            "l.json",
            "--json",
        ],
        capsys,
    )
    assert s["out"] == ["o.train.csv", "o.test.csv"]
    train = pd.read_csv("o.train.csv")["Value"]
    assert len(train) == 14 and len(pd.read_csv("o.test.csv")) == 7
    assert train[3] != train[3]  # New Year's Day excluded (missing), not smoothed over
    assert train.drop(index=3).tolist() == [10.0] * 13
    err = run_json(
        ["ingest", "d.csv", "--rescale", "soon", "--force", "--ledger", "l.json", "--json"],
        capsys,
        code=2,
    )
    assert "START..END:FACTOR" in err["error"]["hint"]
