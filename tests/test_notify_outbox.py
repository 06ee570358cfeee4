"""The outbox on SQLite and PostgreSQL: idempotent enqueue, leases, and a delivery process SIGKILLed
mid-delivery, then restarted: every alert arrives, under its own dedupe key."""

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
from rushhour.notify.plot import example
from rushhour.notify.registry import ChannelError, ListSink
from rushhour.notify.worker import DeliveryWorker
from rushhour.store import Store, open_store
from rushhour.testing import FakeClock
from tests.notify_servers import Receiver, serving

SRC = str(Path(__file__).parents[1] / "src")


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
    assert box.claim(1000) == [] and box.counts() == {"pending": 0, "sent": 1, "dead": 0}


def test_permanent_failure_parks_the_row_dead(store: Store) -> None:
    class Reject(ListSink):
        def deliver(self, delivery):  # type: ignore[no-untyped-def]
            raise ChannelError("rejected with 400", permanent=True)

    box = Outbox(store)
    box.enqueue(_alerts(2), ["r"], now=0)  # a group of two alerts: one row
    stats = DeliveryWorker(box, {"r": Reject()}, FakeClock(wall=10)).run_once()
    assert stats.dead == 1 and box.counts() == {"pending": 0, "sent": 0, "dead": 1}
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


def test_sigkill_mid_delivery_then_restart_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    n = 24
    db = tmp_path / "rushhour.db"
    store = open_store(f"sqlite:///{db}")
    alerts = _alerts(n)
    for a in alerts:
        Outbox(store).enqueue([a], ["hook"], now=time.time())
    store.close()
    receiver = Receiver(delay=0.15)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSHHOUR_")}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    with serving(receiver) as server:
        cfg = tmp_path / "rushhour.toml"
        cfg.write_text(
            f'[store]\nurl = "sqlite:///{db}"\n[alerts]\nretry_base = 0.2\n'
            f'[[notify]]\ntype = "webhook"\nname = "hook"\nurl = "{server.url}/hook"\n'
        )
        cmd = [
            sys.executable,
            "-m",
            "rushhour",
            "notify",
            "drain",
            "--lease",
            "1s",
            "--json",
            "--config",
            str(cfg),
        ]
        first = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.monotonic() + 60
        while sum(receiver.by_key.values()) < n // 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.07)  # land inside the next request's 150 ms
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL
        got_before = sum(receiver.by_key.values())
        assert 0 < got_before < n, "the kill must land mid-run"

        second = subprocess.run(
            cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert second.returncode == 0, second.stderr
        time.sleep(0.3)  # let the server finish recording the last request
    expected = {f"{a.id}:hook" for a in alerts}
    assert set(receiver.by_key) == expected, "every alert arrived"
    # at-least-once: only a request in flight at the kill can arrive twice, with the same key
    assert sum(receiver.by_key.values()) - n <= 1
    summary = json.loads(second.stdout.strip().splitlines()[-1])
    assert summary["outbox"] == {"pending": 0, "sent": n, "dead": 0}
