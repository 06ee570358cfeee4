"""``rushhour silence add|list|remove`` and ``rushhour notify test|drain|outbox``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rushhour.cli import main
from tests.notify_servers import Receiver, serving

SUBCOMMANDS = [
    ("silence", "add"),
    ("silence", "list"),
    ("silence", "remove"),
    ("notify", "test"),
    ("notify", "drain"),
    ("notify", "outbox"),
]


@pytest.mark.parametrize(("group", "command"), SUBCOMMANDS)
def test_help_json_and_readme(group: str, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([group, command, "--help"]) == 0
    assert "--json" in capsys.readouterr().out
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert f"rushhour {group} {command}" in readme


def _json_lines(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def test_silence_add_list_remove(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "silence",
        "add",
        "series=connected-drive",
        "region=~eu-.*",
        "--for",
        "2h",
        "--comment",
        "deploy 4.2",
        "--by",
        "ana",
        "--json",
    ]
    assert main(args) == 0
    added = _json_lines(capsys.readouterr().out)[0]["silence"]
    assert added["matchers"] == ["series=connected-drive", "region=~eu-.*"]
    assert added["ends_at"] - added["starts_at"] == 7200
    assert (
        main(
            [
                "silence",
                "add",
                "severity=info",
                "--start",
                "2030-01-01T00:00",
                "--end",
                "2030-01-01T06:00",
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["silence", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(s["comment"], s["active"]) for s in listed] == [("deploy 4.2", True), ("", False)]
    assert main(["silence", "list"]) == 0
    assert "scheduled" in capsys.readouterr().out
    assert main(["silence", "remove", str(added["id"]), "--json"]) == 0
    capsys.readouterr()
    assert main(["silence", "remove", str(added["id"])]) == 2
    assert f"there is no silence {added['id']}" in capsys.readouterr().err


def test_silence_bad_input(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["silence", "add", "nonsense"]) == 1
    assert "cannot read matcher 'nonsense'" in capsys.readouterr().err
    assert main(["silence", "add", "a=b", "--start", "2030-01-02", "--end", "2030-01-01"]) == 2
    assert "must end after it starts" in capsys.readouterr().err


def test_notify_test_sends_through_configured_channels(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = Receiver()
    monkeypatch.setenv("CHATBOT_TOKEN", "tok-abc")
    with serving(receiver) as server:
        (in_tmp / "rushhour.toml").write_text(
            f'[[notify]]\ntype = "webhook"\nname = "chatbot"\nurl = "{server.url}/a"\n'
            'token_env = "CHATBOT_TOKEN"\nmin_severity = "critical"\n'
            '[[notify]]\ntype = "jsonl"\npath = "out/alerts.jsonl"\n'
        )
        assert main(["notify", "test", "--json"]) == 0
        results = {r["channel"]: r["result"] for r in _json_lines(capsys.readouterr().out)}
        assert results == {"chatbot": "sent", "jsonl": "sent"}
        assert main(["notify", "test", "--severity", "warning", "--json"]) == 0
        results = {r["channel"]: r["result"] for r in _json_lines(capsys.readouterr().out)}
        assert results == {"chatbot": "skipped", "jsonl": "sent"}
    assert server.requests[0].header("Authorization") == "Bearer tok-abc"
    assert server.requests[0].json["status"] == "firing"
    assert "rushhour-test" in server.requests[0].json["description"]
    assert len((in_tmp / "out" / "alerts.jsonl").read_text().splitlines()) == 2


def test_notify_test_reports_a_failing_channel(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_tmp / "rushhour.toml").write_text(
        '[[notify]]\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\ntimeout = 1\n'
    )
    assert main(["notify", "test", "--json"]) == 1
    (row,) = _json_lines(capsys.readouterr().out)
    assert row["result"] == "failed" and "webhook" in row["reason"]


def test_drain_and_outbox(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rushhour.notify.outbox import Outbox
    from rushhour.notify.plot import example
    from rushhour.store import open_store

    receiver = Receiver()
    with serving(receiver) as server:
        (in_tmp / "rushhour.toml").write_text(
            f'[[notify]]\ntype = "alertmanager"\nname = "am"\nurl = "{server.url}/am"\n'
        )
        store = open_store("sqlite:///.rushhour/rushhour.db")
        alert, _ = example()
        Outbox(store).enqueue([alert], ["am"], now=0)
        store.close()
        assert main(["notify", "drain", "--json"]) == 0
        lines = _json_lines(capsys.readouterr().out)
    assert lines[0] == {
        "event": "delivery",
        "message": f"sent {alert.id}:am",
        "key": f"{alert.id}:am",
        "outcome": "sent",
        "error": None,
    }
    assert lines[-1]["outbox"] == {"pending": 0, "sending": 0, "sent": 1, "dead": 0}
    assert server.requests[0].json["alerts"][0]["fingerprint"] == alert.fingerprint
    assert main(["notify", "outbox", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["state"] == "sent" and row["attempts"] == 1
