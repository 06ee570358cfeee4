"""The command line: help, errors with next steps, generate, config, and the demo as a real process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rushhour.cli import app, main
from tests.pipeline_helpers import rushhour

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for name in COMMANDS:
        assert name in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_and_json(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "Usage" in text and "--json" in text


def test_every_command_is_documented() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    missing = [c for c in COMMANDS if f"rushhour {c}" not in readme]
    assert not missing, f"commands missing from README's CLI tour: {missing}"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "rushhour 0." in capsys.readouterr().out


def test_usage_errors_exit_2_with_a_next_step(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--for", "soon"]) == 2
    err = capsys.readouterr().err
    assert "cannot read duration 'soon'" in err and "Next:" in err and "Traceback" not in err
    assert main(["config", "--config", "missing.toml"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["nonsense"]) == 2


def test_errors_as_json(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--for", "soon", "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    assert data["error"]["type"] == "UsageError" and "90s" in data["error"]["hint"]


def test_debug_shows_the_traceback(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "run", "--for", "soon"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_runtime_errors_exit_1(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = {"RUSHHOUR_STORE__URL": "postgresql+psycopg://x@127.0.0.1:1/none?connect_timeout=1"}
    os.environ.update(env)
    try:
        assert main(["run", "--for", "1s"]) == 1
    finally:
        os.environ.pop("RUSHHOUR_STORE__URL")
    err = capsys.readouterr().err
    assert "cannot open store" in err and "Next:" in err


def test_config_prints_effective_settings_masked(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_tmp / "rushhour.toml").write_text('[store]\nurl = "postgresql+psycopg://me:pw@db/x"\n')
    assert main(["config", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["store"]["url"] == "postgresql+psycopg://me:***@db/x"
    assert main(["config"]) == 0
    assert "pw" not in capsys.readouterr().out


def test_generate_writes_series_and_nab_labels(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "generate",
        "--weeks",
        "1",
        "--start",
        "2026-03-02",
        "--seed",
        "3",
        "--out",
        "t.csv",
        "--json",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    lines = (in_tmp / "t.csv").read_text().splitlines()
    assert lines[0] == "timestamp,value" and lines[1].startswith("2026-03-02T00:00:00Z,")
    assert len(lines) == 1 + 7 * 1440 == 1 + summary["buckets"]
    labels = json.loads((in_tmp / "t.labels.json").read_text())
    assert len(labels["t.csv"]) == len(summary["anomalies"]) > 0
    first = (in_tmp / "t.csv").read_text()
    assert main(args) == 0
    assert (in_tmp / "t.csv").read_text() == first, "--seed must make the output deterministic"


def test_run_for_exits_by_itself_and_restart_continues(tmp_path: Path) -> None:
    started = time.monotonic()
    first = rushhour("run", "--for", "8s", "--speed", "120", "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert time.monotonic() - started < 90
    events = [json.loads(line) for line in first.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "starting" and "ready" in kinds and kinds[-1] == "stopped"
    anomalies = [e for e in events if e["event"] == "alert"]
    assert anomalies and {"start", "value", "expected", "deviation", "sentence"} <= set(
        anomalies[0]
    )
    db = tmp_path / ".rushhour" / "rushhour.db"
    count1 = sqlite3.connect(db).execute("select count(*) from anomalies").fetchone()[0]
    assert count1 > 0
    lines = (tmp_path / ".rushhour" / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == len(anomalies)

    second = rushhour("run", "--for", "4s", "--speed", "120", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    ready = next(json.loads(x) for x in second.stdout.splitlines() if '"ready"' in x)
    stopped = json.loads(first.stdout.splitlines()[-1])
    assert ready["first_start"] is False and ready["sim_time"] == stopped["sim_time"]
    count2 = sqlite3.connect(db).execute("select count(*) from anomalies").fetchone()[0]
    assert count2 >= count1


def test_ctrl_c_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSHHOUR_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rushhour", "run", "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    for line in proc.stdout:
        if '"ready"' in line or time.monotonic() > deadline:
            break
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert '"stopped"' in out and "interrupted" in out
    assert "Traceback" not in err


def test_the_live_pipeline_starts_without_scipy_s_submodules() -> None:
    """scipy's special functions and statistics (about 65 MiB resident) are imported where a
    computation needs them, not when the command line and the live pipeline load."""
    code = (
        "import sys, rushhour.cli, rushhour.pipeline.service; "
        "print(sorted({'scipy.special', 'scipy.stats'} & set(sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
