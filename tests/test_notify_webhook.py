"""Generic webhook, Alertmanager and Slack incoming webhook against real servers; fault handling."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from rushhour.errors import ConfigError
from rushhour.notify.alertmanager import AlertmanagerChannel
from rushhour.notify.outbox import Outbox
from rushhour.notify.plot import example, render
from rushhour.notify.registry import ChannelError, Delivery, build_channel, post_json
from rushhour.notify.slack_webhook import SlackWebhookChannel
from rushhour.notify.webhook import WebhookChannel
from rushhour.notify.worker import DeliveryWorker
from rushhour.settings import WebhookNotify, load_settings
from rushhour.store import Store
from rushhour.testing import FakeClock
from tests.notify_servers import Receiver, json_reply, serving

SECRET = "chatbot-secret-123"


def test_chatbot_webhook_shape_with_bearer_token() -> None:
    alert, _ = example()
    with serving() as server:
        cfg = WebhookNotify(
            type="webhook", url=f"{server.url}/api/alerts", token_env="CHATBOT_TOKEN"
        )  # type: ignore[call-arg]
        build_channel(cfg, {"CHATBOT_TOKEN": SECRET}).deliver(Delivery("a1:webhook", [alert]))
        resolved = alert.resolved(alert.detected_at.replace(minute=40))
        build_channel(cfg, {"CHATBOT_TOKEN": SECRET}).deliver(Delivery("a2:webhook", [resolved]))
    first, second = server.requests
    assert first.path == "/api/alerts"
    assert first.header("Authorization") == f"Bearer {SECRET}"
    assert first.header("Idempotency-Key") == "a1:webhook"
    assert first.json == {
        "status": "firing",
        "description": alert.sentence(),
        "priority": "high",
        "dedupe_key": "a1:webhook",  # the Idempotency-Key, for receivers that read bodies only
    }
    assert second.json["status"] == "resolved" and "Resolved:" in second.json["description"]


def test_template_keeps_types_and_never_evaluates() -> None:
    alert, _ = example()
    alert = replace(alert, series='x"}, {"evil": "__import__(\'os\')')
    template = '{"s": "${severity}", "score": "${score}", "t": "${series} at ${sigma}σ", "n": [1, "${nope}"]}'
    body = WebhookChannel("http://unused", template=template).body(Delivery("k", [alert]))
    assert body["s"] == "critical" and body["score"] == alert.score
    assert body["t"].startswith('x"}, {"evil"') and body["n"] == [1, "${nope}"]


def test_bad_template_is_a_config_error_naming_the_spot() -> None:
    with pytest.raises(ConfigError, match="not valid JSON at line 1 column 2"):
        WebhookChannel("http://x", template="{status: 1}", name="chatbot")


def test_alertmanager_v4_payload() -> None:
    alert, _ = example()
    other = replace(alert, labels={**alert.labels, "region": "us-east"}, severity="warning")
    with serving() as server:
        AlertmanagerChannel(f"{server.url}/hook", receiver="team-traffic").deliver(
            Delivery("g1:am", [alert, other], group_labels={"series": "connected-drive"})
        )
    body = server.requests[0].json
    assert set(body) == {
        "receiver",
        "status",
        "alerts",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
        "externalURL",
        "version",
        "groupKey",
        "truncatedAlerts",
    }
    assert body["version"] == "4" and body["receiver"] == "team-traffic"
    assert body["status"] == "firing" and body["truncatedAlerts"] == 0
    assert body["groupKey"] == '{}:{series="connected-drive"}'
    assert body["groupLabels"] == {"series": "connected-drive"}
    assert body["commonLabels"] == {
        "alertname": "TrafficAnomaly",
        "series": "connected-drive",
        "direction": "spike",
        "service": "connected-drive",
    }
    assert body["externalURL"] == "http://127.0.0.1:8080"
    a = body["alerts"][0]
    assert set(a) == {
        "status",
        "labels",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "fingerprint",
    }
    assert a["startsAt"] == "2026-03-02T08:12:00Z" and a["endsAt"] == "0001-01-01T00:00:00Z"
    assert a["fingerprint"] == alert.fingerprint and a["generatorURL"] == alert.link()
    assert a["annotations"]["description"] == alert.sentence()
    assert a["annotations"]["dedupe_key"] == "g1:am" == server.requests[0].header("Idempotency-Key")
    assert body["alerts"][1]["labels"]["region"] == "us-east"


def test_slack_incoming_webhook_links_the_served_png() -> None:
    alert, data = example()
    with serving() as server:
        SlackWebhookChannel(f"{server.url}/services/T0/B0/xyz").deliver(
            Delivery("s1:slack_webhook", [alert], render(alert, data))
        )
    body = server.requests[0].json
    assert body["text"] == alert.sentence()
    assert server.requests[0].header("Idempotency-Key") == "s1:slack_webhook"
    assert body["metadata"]["event_payload"] == {"dedupe_key": "s1:slack_webhook"}
    image = body["blocks"][-1]
    assert image["type"] == "image"
    assert image["image_url"] == f"http://127.0.0.1:8080/alerts/{alert.id}/plot.png"


@pytest.mark.parametrize(
    ("status", "headers", "permanent", "retry_after"),
    [
        (500, {}, False, None),
        (503, {"Retry-After": "3"}, False, 3.0),
        (429, {"Retry-After": "30"}, False, 30.0),
        (400, {}, True, None),
        (401, {}, True, None),
    ],
)
def test_http_status_mapping(
    status: int, headers: dict[str, str], permanent: bool, retry_after: float | None
) -> None:
    with (
        serving(lambda r: json_reply({"error": "x"}, status, headers)) as server,
        pytest.raises(ChannelError) as info,
    ):
        post_json(server.url, {"a": 1})
    assert info.value.permanent is permanent and info.value.retry_after == retry_after


def test_timeout_is_retryable() -> None:
    with (
        serving(Receiver(delay=1.5)) as server,
        pytest.raises(ChannelError, match=r"timed out after 0\.3s") as info,
    ):
        post_json(server.url, {}, timeout=0.3)
    assert not info.value.permanent


def test_worker_retries_500_then_429_honouring_retry_after(store: Store) -> None:
    alert, _ = example()
    receiver = Receiver()
    receiver.script = [
        json_reply({}, 500),
        json_reply({}, 429, {"Retry-After": "120"}),
    ]
    clock = FakeClock(wall=1_800_000_000)
    with serving(receiver) as server:
        outbox = Outbox(store, retry_base=2.0, retry_max=600.0)
        ch = WebhookChannel(server.url, token=SECRET, name="chatbot")
        worker = DeliveryWorker(outbox, {"chatbot": ch}, clock)
        assert outbox.enqueue([alert], ["chatbot"], now=clock.wall()) == 1
        assert outbox.enqueue([alert], ["chatbot"], now=clock.wall()) == 0  # idempotent

        assert worker.run_once().failed == 1  # 500
        row = outbox.rows()[0]
        delay = row["next_attempt_at"] - clock.wall()
        assert 1.0 <= delay <= 2.0 and "server error 500" in row["last_error"]
        assert worker.run_once().sent == 0  # not due yet
        clock.advance(delay)
        assert worker.run_once().failed == 1  # 429
        row = outbox.rows()[0]
        assert 120.0 <= row["next_attempt_at"] - clock.wall() <= 121.0
        clock.advance(119)
        assert worker.run_once().sent == 0
        clock.advance(2.1)
        assert worker.run_once().sent == 1
    assert receiver.by_key == {f"{alert.id}:chatbot": 1}
    row = outbox.rows()[0]
    assert row["state"] == "sent" and row["attempts"] == 3 and row["last_error"] is None
    assert SECRET not in json.dumps(outbox.rows(), default=str)


def test_channel_down_for_hours_loses_nothing(store: Store) -> None:
    alert, _ = example()
    clock = FakeClock(wall=1_800_000_000)
    down = True
    receiver = Receiver()

    def respond(req):  # type: ignore[no-untyped-def]
        return json_reply({}, 503) if down else receiver(req)

    with serving(respond) as server:
        outbox = Outbox(store, retry_base=2.0, retry_max=600.0)
        worker = DeliveryWorker(outbox, {"hook": WebhookChannel(server.url, name="hook")}, clock)
        outbox.enqueue([alert], ["hook"], now=clock.wall())
        attempts = 0
        while clock.wall() < 1_800_000_000 + 5 * 3600:  # five hours down
            attempts += worker.run_once().failed
            clock.advance(max(outbox.next_due() - clock.wall(), 0.0))  # type: ignore[operator]
        assert outbox.counts()["pending"] == 1
        assert 30 <= attempts <= 60  # backoff capped at 10 minutes, never given up
        down = False
        clock.advance(600)
        assert worker.run_once().sent == 1
    assert receiver.by_key == {f"{alert.id}:hook": 1}


def test_config_keys_from_the_issue_work_as_written(tmp_path: Path) -> None:
    cfg = tmp_path / "rushhour.toml"
    cfg.write_text(
        """
[[notify]]
type = "slack"
channel = "#traffic-alerts"
token_env = "SLACK_BOT_TOKEN"
base_url = "https://slack.com/api/"   # overridable, e.g. for a local test server
min_severity = "warning"

[[notify]]
type = "webhook"
url = "https://chatbot.example/api/alerts"
token_env = "CHATBOT_TOKEN"
min_severity = "critical"
"""
    )
    s = load_settings(cfg, environ={})
    assert [(n.type, n.min_severity) for n in s.notify] == [
        ("slack", "warning"),
        ("webhook", "critical"),
    ]
    from rushhour.notify.registry import build_channels

    chans = build_channels(s.notify, {"SLACK_BOT_TOKEN": "xoxb-1", "CHATBOT_TOKEN": "c"})
    assert [c.name for c in chans] == ["slack", "webhook"]
    (tmp_path / "bad.toml").write_text('[[notify]]\ntype = "pager"\n')
    with pytest.raises(ConfigError, match=r"notify\.0"):
        load_settings(tmp_path / "bad.toml", environ={})


def test_secrets_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from rushhour.settings import SlackWebhookNotify

    alert, _ = example()
    caplog.set_level(logging.DEBUG)
    with serving() as server:
        url = f"{server.url}/services/T0/B0/very-secret-path"
        ch = build_channel(SlackWebhookNotify(type="slack_webhook"), {"SLACK_WEBHOOK_URL": url})  # type: ignore[call-arg]
        ch.deliver(Delivery("s2:slack_webhook", [alert]))
        hook = build_channel(
            WebhookNotify(type="webhook", url=server.url, token_env="T"),  # type: ignore[call-arg]
            {"T": SECRET},
        )
        hook.deliver(Delivery("s3:webhook", [alert]))
    assert len(server.requests) == 2 and caplog.records, "the HTTP client did log"
    assert "very-secret-path" not in caplog.text and SECRET not in caplog.text
