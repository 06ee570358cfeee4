"""Slack through slack_sdk against a real HTTP server on 127.0.0.1 that checks the request shapes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from rushhour.errors import ConfigError
from rushhour.notify.plot import example, render
from rushhour.notify.registry import ChannelError, Delivery, build_channel
from rushhour.notify.slack import SlackChannel
from rushhour.settings import SlackNotify
from tests.notify_servers import Hold, Server, SlackDouble, json_reply, serving

TOKEN = "xoxb-test-token"


@pytest.fixture(scope="module")
def png() -> bytes:
    alert, data = example()
    return render(alert, data)


@pytest.fixture
def slack() -> Iterator[tuple[SlackDouble, Server]]:
    double = SlackDouble(TOKEN)
    with serving(double) as server:
        double.server = server
        yield double, server


def _channel(server: Server, **kw: object) -> SlackChannel:
    cfg = SlackNotify(type="slack", channel="#traffic-alerts", base_url=f"{server.url}/api/", **kw)  # type: ignore[arg-type]
    ch = build_channel(cfg, {"SLACK_BOT_TOKEN": TOKEN})
    assert isinstance(ch, SlackChannel)
    return ch


def test_post_message_then_upload_the_png_into_its_thread(
    slack: tuple[SlackDouble, Server], png: bytes
) -> None:
    double, server = slack
    alert, _ = example()
    _channel(server).deliver(Delivery("k1:slack", [alert], png))

    assert server.paths() == [
        "/api/chat.postMessage",
        "/api/files.getUploadURLExternal",
        "/upload/F0001",
        "/api/files.completeUploadExternal",
    ]
    post, get_url, upload, complete = server.requests
    assert post.header("Authorization") == f"Bearer {TOKEN}"
    assert post.json["channel"] == "#traffic-alerts"
    assert post.json["text"] == alert.sentence()
    blocks = post.json["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    assert blocks[0]["type"] == "header" and "CRITICAL" in blocks[0]["text"]["text"]
    assert blocks[1] == {"type": "section", "text": {"type": "mrkdwn", "text": alert.sentence()}}
    assert "open dashboard" in blocks[2]["elements"][0]["text"]

    assert get_url.header("Authorization") == f"Bearer {TOKEN}"
    assert get_url.form["filename"] == f"rushhour-{alert.id}.png"
    assert int(get_url.form["length"]) == len(png)
    assert upload.body == png and double.uploads["F0001"] == png

    assert complete.header("Authorization") == f"Bearer {TOKEN}"
    assert json.loads(complete.form["files"]) == [{"id": "F0001", "title": alert.title()}]
    assert complete.form["channel_id"] == "C0TRAFFIC"  # the id chat.postMessage returned
    (message,) = double.posted()
    assert complete.form["thread_ts"] == message["ts"]  # the ts chat.postMessage returned
    assert all(urlparse(r.path).path != "/api/files.upload" for r in server.requests)
    # the message metadata a later attempt finds it by (conversations.history)
    assert post.json["metadata"] == {
        "event_type": "rushhour_alert",
        "event_payload": {"dedupe_key": "k1:slack"},
    }
    assert message["metadata"] == post.json["metadata"]
    assert double.thread_files(message["ts"]) == [f"rushhour-{alert.id}.png"]


def test_a_failed_upload_is_retried_without_posting_the_message_again(
    slack: tuple[SlackDouble, Server], png: bytes
) -> None:
    double, server = slack
    alert, _ = example()
    double.fail["files.completeUploadExternal"] = [json_reply({"ok": False}, status=503)]
    ch = _channel(server)
    delivery = Delivery("k2:slack", [alert], png)
    with pytest.raises(ChannelError, match="server error 503") as info:
        ch.deliver(delivery)
    assert not info.value.permanent
    assert delivery.progress["ts"] == double.posted()[0]["ts"]
    ch.deliver(delivery)  # the outbox hands the saved progress back
    assert server.paths().count("/api/chat.postMessage") == 1
    assert server.paths().count("/api/files.completeUploadExternal") == 2


def test_a_post_that_timed_out_after_landing_is_found_not_posted_again(
    slack: tuple[SlackDouble, Server], png: bytes
) -> None:
    """Slack posted the message but the answer never came (timeout): the next attempt finds it in
    the channel's history by its metadata, posts nothing, and uploads the image into its thread."""
    double, server = slack
    alert, _ = example()
    double.hold["chat.postMessage"] = hold = Hold(1)
    ch = SlackChannel(TOKEN, "#traffic-alerts", base_url=f"{server.url}/api/", timeout=1)
    delivery = Delivery("k7:slack", [alert], png)
    with pytest.raises(ChannelError, match=r"(?i)timed out") as info:
        ch.deliver(delivery)
    hold.release()
    assert not info.value.permanent and "ts" not in delivery.progress
    assert "posting_since" in delivery.progress
    ch.deliver(delivery)
    (message,) = double.posted()
    assert delivery.progress["ts"] == message["ts"]
    assert delivery.progress["reconcile"] == "found the message: not posted again"
    assert server.paths().count("/api/chat.postMessage") == 1
    assert server.paths().count("/api/conversations.list") == 1  # "#traffic-alerts" to its id
    history = next(r for r in server.requests if r.path.startswith("/api/conversations.history"))
    assert history.form["channel"] == "C0TRAFFIC"
    assert history.form["include_all_metadata"] in ("1", "true")
    assert float(history.form["oldest"]) < delivery.progress["posting_since"]
    assert double.thread_files(message["ts"]) == [f"rushhour-{alert.id}.png"]


def test_an_upload_that_timed_out_after_sharing_is_not_repeated(
    slack: tuple[SlackDouble, Server], png: bytes
) -> None:
    double, server = slack
    alert, _ = example()
    double.hold["files.completeUploadExternal"] = hold = Hold(1)
    ch = SlackChannel(TOKEN, "C0TRAFFIC", base_url=f"{server.url}/api/", timeout=1)
    delivery = Delivery("k8:slack", [alert], png)
    with pytest.raises(ChannelError):
        ch.deliver(delivery)
    hold.release()
    ch.deliver(delivery)
    (message,) = double.posted()
    assert double.thread_files(message["ts"]) == [f"rushhour-{alert.id}.png"]
    assert delivery.progress["uploaded"] is True
    assert server.paths().count("/api/files.completeUploadExternal") == 1
    assert server.paths().count("/api/conversations.replies") == 1


def test_without_the_history_scope_it_posts_again_rather_than_lose_the_alert(
    slack: tuple[SlackDouble, Server],
) -> None:
    double, server = slack
    alert, _ = example()
    double.fail["conversations.history"] = [
        json_reply({"ok": False, "error": "missing_scope", "needed": "channels:history"})
    ]
    ch = SlackChannel(TOKEN, "C0TRAFFIC", base_url=f"{server.url}/api/", timeout=1)
    delivery = Delivery("k9:slack", [alert], progress={"posting_since": 1.0})  # cut off before
    ch.deliver(delivery)
    assert (
        delivery.progress["reconcile"]
        == "slack conversations.history: missing_scope: posting again"
    )
    assert len(double.posted()) == 1


def test_the_look_ups_follow_slack_cursors(slack: tuple[SlackDouble, Server]) -> None:
    """The channel is on the second page of conversations.list (1,000 a page), the message on the
    second page of conversations.history (200 a page)."""
    double, server = slack
    alert, _ = example()
    double.channels.update({f"C{i:08d}": f"team-{i}" for i in range(1200)})
    double.messages.update({c: [] for c in double.channels if c not in double.messages})
    ch = SlackChannel(TOKEN, "#team-1100", base_url=f"{server.url}/api/")
    ch.deliver(Delivery("k10:slack", [alert]))
    for i in range(250):  # later chatter pushes the alert to the second page
        double._chat_postMessage({"channel": "C00001100", "text": f"chatter {i}"})
    delivery = Delivery("k10:slack", [alert], progress={"posting_since": 1.0})
    SlackChannel(TOKEN, "#team-1100", base_url=f"{server.url}/api/").deliver(delivery)
    assert delivery.progress["reconcile"] == "found the message: not posted again"
    assert server.paths().count("/api/conversations.list") == 2
    assert server.paths().count("/api/conversations.history") == 2
    assert server.paths().count("/api/chat.postMessage") == 1


def test_rate_limit_carries_retry_after(slack: tuple[SlackDouble, Server]) -> None:
    double, server = slack
    alert, _ = example()
    double.fail["chat.postMessage"] = [
        json_reply({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "17"})
    ]
    with pytest.raises(ChannelError, match="rate limited") as info:
        _channel(server).deliver(Delivery("k3:slack", [alert]))
    assert info.value.retry_after == 17.0 and not info.value.permanent


def test_bad_token_is_permanent_and_never_logged(slack: tuple[SlackDouble, Server]) -> None:
    _, server = slack
    alert, _ = example()
    cfg = SlackNotify(type="slack", channel="#x", base_url=f"{server.url}/api/")  # type: ignore[call-arg]
    ch = build_channel(cfg, {"SLACK_BOT_TOKEN": "xoxb-wrong-secret"})
    with pytest.raises(ChannelError, match="invalid_auth") as info:
        ch.deliver(Delivery("k4:slack", [alert]))
    assert info.value.permanent and "xoxb-wrong-secret" not in info.value.message


def test_unreachable_slack_is_retryable() -> None:
    alert, _ = example()
    ch = SlackChannel(TOKEN, "#x", base_url="http://127.0.0.1:9/api/", timeout=1)
    with pytest.raises(ChannelError) as info:
        ch.deliver(Delivery("k5:slack", [alert]))
    assert not info.value.permanent and TOKEN not in info.value.message


def test_missing_token_names_the_variable_only() -> None:
    cfg = SlackNotify(type="slack", channel="#x")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="environment variable SLACK_BOT_TOKEN is empty"):
        build_channel(cfg, {})


def test_slow_slack_times_out_and_is_retryable() -> None:
    import time as _time

    def slow(req):  # type: ignore[no-untyped-def]
        _time.sleep(1.6)
        return json_reply({"ok": True, "channel": "C1", "ts": "1.0"})

    alert, _ = example()
    with serving(slow) as server:
        ch = SlackChannel(TOKEN, "#x", base_url=f"{server.url}/api/", timeout=1)
        with pytest.raises(ChannelError) as info:
            ch.deliver(Delivery("k6:slack", [alert]))
    assert not info.value.permanent and "timed out" in info.value.message.lower()


def test_severity_routing_end_to_end(tmp_path, png: bytes) -> None:  # type: ignore[no-untyped-def]
    """The issue's config: warning to Slack; critical to Slack and the paging webhook."""
    from rushhour.detect.base import Verdict
    from rushhour.notify.notifier import Notifier
    from rushhour.notify.registry import build_channels
    from rushhour.notify.worker import DeliveryWorker
    from rushhour.settings import load_settings
    from rushhour.store import open_store
    from rushhour.testing import FakeClock
    from tests.notify_servers import Receiver

    double, pager = SlackDouble(TOKEN), Receiver()
    with serving(double) as slack_srv, serving(pager) as pager_srv:
        double.server = slack_srv
        cfg = tmp_path / "rushhour.toml"
        cfg.write_text(
            '[alerts]\ngroup_wait = "0s"\n'
            f'[[notify]]\ntype = "slack"\nchannel = "#traffic-alerts"\ntoken_env = "SLACK_BOT_TOKEN"\n'
            f'base_url = "{slack_srv.url}/api/"\nmin_severity = "warning"\n'
            f'[[notify]]\ntype = "webhook"\nurl = "{pager_srv.url}/api/alerts"\n'
            'token_env = "CHATBOT_TOKEN"\nmin_severity = "critical"\n'
        )
        settings = load_settings(cfg, environ={})
        env = {"SLACK_BOT_TOKEN": TOKEN, "CHATBOT_TOKEN": "page-me"}
        channels = build_channels(settings.notify, env)
        store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
        clock = FakeClock(wall=1_772_438_400)  # 2026-03-02 08:00 UTC
        n = Notifier(store, channels, settings=settings.alerts, resolve_after=1, plot=lambda a: png)
        for i, (sev_a, sev_b) in enumerate([("warning", "critical"), (None, None)]):
            t = int(clock.wall()) + 60 * i
            for series, sev in (("api", sev_a), ("auth", sev_b)):
                v = Verdict(
                    9.0, sev is not None, 100.0, 20.0, "spike" if sev else "none", sev or "warning"
                )
                n.observe(
                    series=series,
                    labels={},
                    start=t,
                    value=300.0 if sev else 100.0,
                    verdict=v,
                    now=t,
                    threshold=3.5,
                )
            n.flush(t)
        clock.advance(120)
        stats = DeliveryWorker(n.outbox, {c.name: c for c in channels}, clock).run(until_idle=True)
        store.close()
    assert stats.sent == 6 and stats.failed == 0
    posts = [r.json["text"] for r in slack_srv.requests if r.path.endswith("chat.postMessage")]
    assert len(posts) == 4 and sum("Resolved" in p for p in posts) == 2
    assert slack_srv.paths().count("/api/files.completeUploadExternal") == 4
    paged = [r.json for r in pager_srv.requests]
    assert [p["status"] for p in paged] == ["firing", "resolved"]
    assert all("auth" in p["description"] for p in paged)
    assert pager_srv.requests[0].header("Authorization") == "Bearer page-me"
