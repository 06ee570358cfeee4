"""Filters, M-of-N, grouping, repeat/cooldown, silences and severity routing, through the Notifier."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rushhour.detect.base import Verdict
from rushhour.errors import InputError, UsageError
from rushhour.notify.alert import Alert
from rushhour.notify.hygiene import AlertFilter, Grouper, MofN, RepeatCooldown
from rushhour.notify.notifier import Notifier
from rushhour.notify.outbox import Outbox
from rushhour.notify.registry import ListSink
from rushhour.notify.silences import (
    add_silence,
    list_silences,
    parse_matcher,
    parse_matchers,
    remove_silence,
)
from rushhour.settings import AlertSettings
from rushhour.store import Store

T0 = int(datetime(2026, 3, 2, 8, 0, tzinfo=UTC).timestamp())


def _sink(name: str, min_severity: str) -> ListSink:
    s = ListSink()
    s.name, s.min_severity = name, min_severity
    return s


def _notifier(store: Store, **cfg: object) -> Notifier:
    settings = AlertSettings(**{"group_wait": "0s", "cooldown": "0s", **cfg})  # type: ignore[arg-type]
    chans = [_sink("slack", "warning"), _sink("pager", "critical")]
    return Notifier(store, chans, settings=settings, resolve_after=2, plot=lambda a: b"png")


def _feed(
    n: Notifier,
    series: str,
    flags: list[int],
    *,
    sev: str = "warning",
    value: float = 300.0,
    labels: dict[str, str] | None = None,
    t0: int = T0,
) -> list[Alert]:
    out = []
    for i, f in enumerate(flags):
        v = Verdict(
            score=9.0 if f else 0.5,
            anomalous=bool(f),
            expected=100.0,
            deviation=20.0,
            direction="spike" if f else "none",
            severity=sev,
        )
        t = t0 + 60 * i
        out += n.observe(
            series=series,
            labels=labels or {},
            start=t,
            value=value if f else 100.0,
            verdict=v,
            now=t,
            threshold=3.5,
        )
        n.flush(t)
    return out


def test_one_firing_one_resolved_per_episode_routed_by_severity(store: Store) -> None:
    n = _notifier(store)
    alerts = _feed(n, "api", [0, 1, 1, 1, 0, 0, 0], sev="critical")
    assert [(a.status, a.buckets) for a in alerts] == [("firing", 1), ("resolved", 3)]
    fired, resolved = alerts
    assert fired.start == datetime(2026, 3, 2, 8, 1, tzinfo=UTC)
    assert resolved.duration is not None and resolved.duration.total_seconds() == 180
    rows = Outbox(store).rows()
    assert sorted(r["dedupe_key"] for r in rows) == sorted(
        f"{a.id}:{ch}" for a in alerts for ch in ("slack", "pager")
    )


def test_warning_goes_to_slack_only(store: Store) -> None:
    n = _notifier(store)
    _feed(n, "api", [1, 0, 0], sev="warning")
    assert {r["channel"] for r in Outbox(store).rows()} == {"slack"}


def test_filters_drop_small_deviations_and_the_wrong_direction(store: Store) -> None:
    n = _notifier(store, min_rel_deviation=5.0)  # 300 vs 100 is only +200 %
    assert _feed(n, "api", [1, 1, 0, 0]) == []
    n = _notifier(store, direction="below")
    assert _feed(n, "api", [1, 1, 0, 0]) == []
    n = _notifier(store, min_abs_deviation=150.0)
    assert len(_feed(n, "api", [1, 0, 0])) == 2


def test_m_of_n_needs_enough_anomalous_buckets(store: Store) -> None:
    n = _notifier(store, m=3, n=5)
    assert _feed(n, "api", [1, 0, 1, 0, 0, 0, 0]) == []
    fired = _feed(n, "api", [1, 0, 1, 1], t0=T0 + 3600)
    assert fired[0].status == "firing"
    assert fired[0].start == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # back-dated to the first of M


def test_silence_mutes_matching_alerts_only(store: Store) -> None:
    add_silence(
        store,
        parse_matchers(["series=api", "region=~eu-.*"]),
        T0,
        T0 + 3600,
        comment="deploy",
        now=T0,
    )
    n = _notifier(store)
    _feed(n, "api", [1, 0, 0], labels={"region": "eu-west"})
    _feed(n, "api", [1, 0, 0], labels={"region": "us-east"})
    _feed(n, "web", [1, 0, 0], labels={"region": "eu-west"})
    keys = {(r["status"], r["channel"]) for r in Outbox(store).rows()}
    series = sorted({r["alert_id"] for r in Outbox(store).rows()})
    assert len(series) == 4 and keys == {("firing", "slack"), ("resolved", "slack")}
    # after the window, the same series alerts again
    n2 = _notifier(store)
    assert _feed(n2, "api", [1, 0, 0], labels={"region": "eu-west"}, t0=T0 + 7200)


def test_grouping_sends_simultaneous_alerts_together(store: Store) -> None:
    n = _notifier(store, group_by=["region"], group_wait="30s")
    for s in ("api", "web", "auth"):
        v = Verdict(9.0, True, 100.0, 20.0, "spike", "warning")
        n.observe(series=s, labels={"region": "eu"}, start=T0, value=300.0, verdict=v, now=T0)
    assert n.flush(T0 + 10).enqueued == 0
    assert n.flush(T0 + 30).enqueued == 1
    (row,) = Outbox(store).rows()
    assert row["alert_id"].startswith("g")


def test_repeat_interval_and_cooldown(store: Store) -> None:
    n = _notifier(store, repeat_interval="2m", cooldown="10m")
    alerts = _feed(n, "api", [1, 1, 1, 1, 1, 0, 0])
    assert [(a.status, a.repeat) for a in alerts] == [
        ("firing", 0),
        ("firing", 1),
        ("firing", 2),
        ("resolved", 0),
    ]
    assert len({a.id for a in alerts}) == 4
    flap = _feed(n, "api", [1, 0, 0], t0=T0 + 600)  # within 10 min of the resolve
    assert flap == []


def test_notifier_state_round_trips(store: Store) -> None:
    n = _notifier(store, m=2, n=3)
    _feed(n, "api", [1, 1, 1])
    state = n.snapshot()
    fresh = _notifier(store, m=2, n=3).restore(state)
    assert fresh.snapshot() == state
    assert [a.status for a in _feed(fresh, "api", [0, 0, 0, 0], t0=T0 + 180)] == ["resolved"]


@given(st.lists(st.booleans(), max_size=60), st.integers(1, 4), st.integers(0, 3))
def test_m_of_n_matches_a_sliding_count(flags: list[bool], m: int, extra: int) -> None:
    t = MofN(m, m + extra)
    got = [t.observe("s", f) for f in flags]
    want = [sum(flags[max(0, i - (m + extra) + 1) : i + 1]) >= m for i in range(len(flags))]
    assert got == want


def test_parameter_errors_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="m <= n, got m=3, n=2"):
        MofN(3, 2)
    with pytest.raises(ValueError, match="direction must be one of above, below, both"):
        AlertFilter(direction="up")
    with pytest.raises(ValueError, match="group_wait must be >= 0"):
        Grouper([], -1)
    with pytest.raises(ValueError, match="repeat_interval must be > 0"):
        RepeatCooldown(0, 1)


def test_matchers_parse_and_reject_nonsense() -> None:
    assert str(parse_matcher('severity!="info"')) == "severity!=info"
    with pytest.raises(InputError, match="cannot read matcher 'nope'"):
        parse_matcher("nope")
    with pytest.raises(InputError, match="bad regex"):
        parse_matcher("series=~(")
    with pytest.raises(UsageError, match="at least one matcher"):
        parse_matchers([])


def test_silence_store_round_trip(store: Store) -> None:
    s = add_silence(store, parse_matchers(["series=api"]), T0, T0 + 60, comment="c", now=T0)
    assert [x.id for x in list_silences(store, now=T0)] == [s.id]
    assert list_silences(store, now=T0 + 61) == []
    assert len(list_silences(store, now=T0 + 61, expired=True)) == 1
    assert remove_silence(store, s.id) and not remove_silence(store, s.id)
    with pytest.raises(UsageError, match="must end after it starts"):
        add_silence(store, parse_matchers(["a=b"]), T0, T0, now=T0)


_label = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
_value = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=20).map(str.strip)


@given(_label, st.sampled_from(["=", "!=", "=~", "!~"]), _value)
def test_matcher_text_round_trips(label: str, op: str, value: str) -> None:
    import re

    if op in ("=~", "!~"):
        value = re.escape(value)
    value = value.strip('"').strip()
    m = parse_matcher(f"{label}{op}{value}")
    assert (m.label, m.op, m.value) == (label, op, value)
    assert parse_matcher(str(m)) == m
    assert m.test({label: value if op in ("=", "!=") else re.sub(r"\\(.)", r"\1", value)}) is (
        op in ("=", "=~")
    )


def test_escalation_to_critical_pages_while_the_episode_is_open(store: Store) -> None:
    n = _notifier(store)
    out = []
    for i, sev in enumerate(["warning", "warning", "critical", "critical", None, None]):
        v = Verdict(9.0, sev is not None, 100.0, 20.0, "spike" if sev else "none", sev or "warning")
        t = T0 + 3600 + 60 * i
        out += n.observe(series="db", labels={}, start=t, value=300.0, verdict=v, now=t)
        n.flush(t)
    assert [(a.status, a.severity, a.repeat) for a in out] == [
        ("firing", "warning", 0),
        ("firing", "critical", 1),
        ("resolved", "critical", 0),
    ]
    pager = {r["alert_id"] for r in Outbox(store).rows() if r["channel"] == "pager"}
    assert pager == {out[1].id, out[2].id}


def test_from_settings_uses_the_demo_default_channels(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rushhour.settings import load_settings
    from rushhour.store import open_store
    from rushhour.testing import FakeClock

    s = load_settings(overrides={"data_dir": str(tmp_path), "bucket": "5m"}, environ={})
    store = open_store(s.store_url())
    n = Notifier.from_settings(s, store)
    assert [c.name for c in n.channels] == ["console", "jsonl"] and n.bucket_seconds == 300
    n.channels = [c for c in n.channels if c.name == "jsonl"]
    _feed(n, "api", [1, 0, 0, 0, 0], t0=T0)
    n.flush(T0 + 3600, force=True)
    assert n.worker(FakeClock(wall=T0 + 3600)).run(until_idle=True).sent == 2
    store.close()
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == 2


def test_alerts_ahead_of_the_wall_clock_are_due_at_once(store: Store) -> None:
    # the demo replays a day faster than real time: its events run ahead of the wall clock, and
    # the delivery worker, which reads the wall clock, must not wait for it to catch up
    n = _notifier(store)
    wall = T0 - 3 * 3600  # events three hours ahead
    v = Verdict(9.0, True, 100.0, 20.0, "spike", "warning")
    n.observe(series="api", labels={}, start=T0, value=300.0, verdict=v, now=T0)
    assert n.flush(T0, wall=wall).enqueued == 1
    box = Outbox(store)
    (item,) = box.claim(wall)
    assert box.rows()[0]["created_at"] == T0  # the alert keeps its own (event) time
    box.done(item, wall)
    # without a wall clock (replays, tests), the event time is when it is due, as before
    n2 = _notifier(store)
    n2.observe(series="web", labels={}, start=T0, value=300.0, verdict=v, now=T0)
    assert n2.flush(T0).enqueued == 1
    assert box.claim(wall) == [] and len(box.claim(T0)) == 1
