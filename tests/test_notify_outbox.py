"""The outbox on SQLite and PostgreSQL: idempotent enqueue, leases, the ``sending`` record, and real
``rushhour notify drain`` processes SIGKILLed while a request is in flight, then restarted: each
receiver (a webhook that drops repeats by dedupe key, the Slack double) ends with exactly one
delivery per alert, and nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from rushhour.notify.outbox import Outbox, group_id
from rushhour.notify.plot import example, render
from rushhour.notify.registry import ChannelError, ListSink
from rushhour.notify.worker import DeliveryWorker
from rushhour.store import Store, open_store
from rushhour.testing import FakeClock
from tests.notify_servers import Hold, Receiver, SlackDouble, serving

SRC = str(Path(__file__).parents[1] / "src")
TOKEN = "xoxb-test-token"


def _alerts(n: int) -> list:  # type: ignore[type-arg]
    alert, _ = example()
    return [replace(alert, start=alert.start + timedelta(hours=i)) for i in range(n)]


def test_enqueue_is_idempotent_per_alert_status_and_channel(store: Store) -> None:
    a = _alerts(1)[0]
    assert Outbox(store).enqueue([a], ["slack", "pager"], now=0, image=b"png") == 2
    assert Outbox(store).enqueue([a], ["slack", "pager"], now=5) == 0
    assert Outbox(store).enqueue([a.resolved(a.detected_at)], ["slack"], now=9) == 1
    keys = sorted(r["dedupe_key"] for r in Outbox(store).rows())
    assert keys == sorted([f"{a.id}:slack", f"{a.id}:pager", f"{a.fingerprint}-resolved:slack"])
    assert Outbox(store).image(a.id) == b"png"


def test_a_claimed_row_is_not_claimed_again_until_its_lease_ends(store: Store) -> None:
    a = _alerts(1)[0]
    box = Outbox(store, lease=30)
    box.enqueue([a], ["x"], now=100)
    assert len(box.claim(100)) == 1
    assert box.claim(110) == []  # leased to the first worker (maybe dead, maybe slow)
    (item,) = box.claim(130.5)  # the lease ran out: another worker takes it
    box.done(item, 131)
    assert box.claim(1000) == [] and box.counts() == {
        "pending": 0,
        "sending": 0,
        "sent": 1,
        "dead": 0,
    }


def test_permanent_failure_parks_the_row_dead(store: Store) -> None:
    class Reject(ListSink):
        def deliver(self, delivery):  # type: ignore[no-untyped-def]
            raise ChannelError("rejected with 400", permanent=True)

    box = Outbox(store)
    box.enqueue(_alerts(2), ["r"], now=0)  # a group of two alerts: one row
    stats = DeliveryWorker(box, {"r": Reject()}, FakeClock(wall=10)).run_once()
    assert stats.dead == 1 and box.counts() == {"pending": 0, "sending": 0, "sent": 0, "dead": 1}
    assert box.rows()[0]["last_error"] == "rejected with 400"


def test_group_ids_are_stable() -> None:
    a, b = _alerts(2)
    assert group_id([a, b]) == group_id([b, a]) != group_id([a])


def test_worker_with_a_fake_clock_drains_everything() -> None:
    # (no store fixture: runs on a fresh SQLite to keep the suite fast)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        store = open_store(f"sqlite:///{d}/x.db")
        box = Outbox(store)
        sink = ListSink()
        for a in _alerts(45):
            box.enqueue([a], ["list"], now=0)
        stats = DeliveryWorker(box, {"list": sink}, FakeClock(wall=1), batch=20).run(
            until_idle=True
        )
        store.close()
    assert stats.sent == 45 and len({d.key for d in sink.delivered}) == 45


def test_a_row_cut_off_while_sending_comes_back_in_doubt_with_its_progress(store: Store) -> None:
    a = _alerts(1)[0]
    box = Outbox(store, lease=30)
    box.enqueue([a], ["x"], now=100)
    (item,) = box.claim(100)
    assert not item.delivery.in_doubt
    box.sending(item, 100)
    item.delivery.progress["step"] = "one"
    item.delivery.checkpoint()  # stored now, not only when the attempt ends
    # ... the process dies here ...
    assert box.counts()["sending"] == 1 and box.rows()[0]["state"] == "sending"
    assert box.claim(120) == []  # still leased
    assert box.next_due() == 130
    (again,) = box.claim(130)
    assert again.delivery.in_doubt and again.state == "sending"
    assert again.delivery.progress == {"attempt_at": 100.0, "step": "one"}
    box.failed(again, ChannelError("down"), 131)
    assert box.rows()[0]["state"] == "pending"


def test_jsonl_in_doubt_writes_only_what_is_missing(tmp_path: Path) -> None:
    from rushhour.notify.jsonl import JsonlChannel
    from rushhour.notify.registry import Delivery

    a, b = _alerts(2)
    path = tmp_path / "alerts.jsonl"
    JsonlChannel(path).deliver(Delivery("g:jsonl", [a]))
    with path.open("a") as fh:
        fh.write('{"dedupe_key": "g:jsonl", "id": "' + b.id[:5])  # cut short by a crash
    JsonlChannel(path).deliver(Delivery("g:jsonl", [a, b], in_doubt=True))
    JsonlChannel(path).deliver(Delivery("g:jsonl", [a, b], in_doubt=True))  # nothing left to add
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            assert line.startswith('{"dedupe_key": "g:jsonl", "id": "')  # the torn line alone
    assert [r["id"] for r in rows] == [a.id, b.id]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSHHOUR_")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["SLACK_BOT_TOKEN"] = TOKEN
    return env


def _drain(cfg: Path) -> list[str]:
    drain = ["notify", "drain", "--lease", "1s", "--json", "--config", str(cfg)]
    return [sys.executable, "-m", "rushhour", *drain]


def _kill_in_flight(cfg: Path, hold: Hold) -> None:
    """Start a drain, SIGKILL it while ``hold`` keeps its request in flight, then let the request go."""
    proc = subprocess.Popen(
        _drain(cfg), cwd=cfg.parent, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert hold.reached.wait(90), "the held request never came"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        hold.release()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL


def _drain_to_the_end(cfg: Path) -> dict[str, int]:
    done = subprocess.run(
        _drain(cfg), cwd=cfg.parent, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1])["outbox"])


def _states(db: Path) -> dict[str, str]:
    store = open_store(f"sqlite:///{db}")
    try:
        return {r["dedupe_key"]: r["state"] for r in Outbox(store).rows()}
    finally:
        store.close()


def test_webhook_receiver_sees_each_alert_once_across_a_sigkill_mid_request(
    tmp_path: Path,
) -> None:
    n = 8
    db = tmp_path / "rushhour.db"
    store = open_store(f"sqlite:///{db}")
    alerts = _alerts(n)
    for a in alerts:
        Outbox(store).enqueue([a], ["hook"], now=time.time())
    store.close()
    hold = Hold(nth=3)  # the receiver acts on the 3rd delivery and holds the answer
    receiver = Receiver(hold=hold)
    with serving(receiver) as server:
        cfg = tmp_path / "rushhour.toml"
        cfg.write_text(
            f'[store]\nurl = "sqlite:///{db}"\n[alerts]\nretry_base = 0.2\n'
            f'[[notify]]\ntype = "webhook"\nname = "hook"\nurl = "{server.url}/hook"\n'
        )
        _kill_in_flight(cfg, hold)
        held = f"{alerts[2].id}:hook"
        states = _states(db)
        assert states[held] == "sending", "the attempt was recorded before the request"
        assert list(states.values()).count("sent") == 2
        assert _drain_to_the_end(cfg) == {"pending": 0, "sending": 0, "sent": n, "dead": 0}
        time.sleep(0.2)  # let the server finish recording the last request
    expected = {f"{a.id}:hook" for a in alerts}
    assert set(receiver.delivered) == expected, "nothing lost"
    assert receiver.by_key[held] == 2, "the request in flight at the kill came again, same key"
    assert all(receiver.by_key[k] == 1 for k in expected - {held})
    assert all(body["dedupe_key"] == k for k, body in receiver.delivered.items())


def test_slack_channel_sees_each_alert_once_across_sigkills_mid_post_and_mid_upload(
    tmp_path: Path,
) -> None:
    """Killed while chat.postMessage is in flight (the message landed), then while the image's
    files.completeUploadExternal is (the file landed): after the restarts every alert is one message
    with one image in its thread, found again through conversations.history / .replies."""
    n = 4
    db = tmp_path / "rushhour.db"
    store = open_store(f"sqlite:///{db}")
    alerts = _alerts(n)
    png = render(*example())
    for a in alerts:
        Outbox(store).enqueue([a], ["slack"], now=time.time(), image=png)
    store.close()
    double = SlackDouble(TOKEN)
    with serving(double) as server:
        double.server = server
        cfg = tmp_path / "rushhour.toml"
        cfg.write_text(
            f'[store]\nurl = "sqlite:///{db}"\n[alerts]\nretry_base = 0.2\n'
            f'[[notify]]\ntype = "slack"\nchannel = "#traffic-alerts"\n'
            f'token_env = "SLACK_BOT_TOKEN"\nbase_url = "{server.url}/api/"\n'
        )
        double.hold = {"chat.postMessage": (post := Hold(nth=2))}
        _kill_in_flight(cfg, post)
        assert _states(db)[f"{alerts[1].id}:slack"] == "sending"
        double.hold = {"files.completeUploadExternal": (upload := Hold(nth=2))}
        _kill_in_flight(cfg, upload)
        assert _states(db)[f"{alerts[2].id}:slack"] == "sending"
        double.hold = {}
        assert _drain_to_the_end(cfg) == {"pending": 0, "sending": 0, "sent": n, "dead": 0}
    messages = double.posted()
    keys = [m["metadata"]["event_payload"]["dedupe_key"] for m in messages]
    assert sorted(keys) == sorted(f"{a.id}:slack" for a in alerts), "one message per alert"
    for a, m in zip(alerts, messages, strict=True):
        assert double.thread_files(m["ts"]) == [f"rushhour-{a.id}.png"], "one image per thread"
    paths = server.paths()
    assert paths.count("/api/chat.postMessage") == n
    assert paths.count("/api/files.completeUploadExternal") == n
    assert paths.count("/api/conversations.history") == 1  # the post cut off by the first kill
    assert paths.count("/api/conversations.replies") == 1  # the upload cut off by the second
