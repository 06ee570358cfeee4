"""Commands of the notify area: ``silence add|list|remove`` and ``notify test|drain|outbox``."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from rushhour.cli.app import ConfigOpt, JsonOpt, app, emit, load_cli_settings, out, progress_bar
from rushhour.errors import UsageError
from rushhour.settings import Settings
from rushhour.timeutil import parse_duration, utc

silence_app = typer.Typer(
    help="Silence and maintenance windows: mute alerts whose labels match, for a while.",
    no_args_is_help=True,
)
notify_app = typer.Typer(
    help="Alert channels: send a test alert, drain the outbox, inspect deliveries.",
    no_args_is_help=True,
)
app.add_typer(silence_app, name="silence")
app.add_typer(notify_app, name="notify")


def _when(text: str | None, default: float) -> float:
    if text is None:
        return default
    if text == "now":
        return time.time()
    try:
        return utc(datetime.fromisoformat(text)).timestamp()
    except ValueError as exc:
        raise UsageError(
            f"cannot read time {text!r}", hint="write it as 2026-03-02T08:00 (UTC) or now"
        ) from exc


def _store(settings: Settings) -> Any:
    from rushhour.store import open_store

    return open_store(settings.store_url())


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="minutes")


# -- silence ------------------------------------------------------------------------------------
@silence_app.command("add")
def silence_add(
    matchers: Annotated[
        list[str], typer.Argument(help="label=value, label!=value, label=~regex or label!~regex.")
    ],
    for_: Annotated[
        str | None, typer.Option("--for", help="Length of the window, e.g. 2h (default 1h).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="Start, ISO time in UTC (default now).")] = None,
    end: Annotated[
        str | None, typer.Option(help="End, ISO time in UTC (instead of --for).")
    ] = None,
    comment: Annotated[str, typer.Option(help="Why: shown in `silence list`.")] = "",
    by: Annotated[str, typer.Option("--by", help="Who set it.")] = "",
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Mute matching alerts for a window (maintenance, known incident)."""
    from rushhour.notify.silences import add_silence, parse_matchers

    if end is not None and for_ is not None:
        raise UsageError("give --for or --end, not both")
    now = time.time()
    lo = _when(start, now)
    hi = _when(end, 0) if end else lo + parse_duration(for_ or "1h").total_seconds()
    parsed = parse_matchers(matchers, "command line")
    store = _store(load_cli_settings(config))
    try:
        s = add_silence(store, parsed, int(lo), int(hi), comment=comment, created_by=by, now=now)
    finally:
        store.close()
    emit(
        as_json,
        "silence_added",
        f"silence {s.id}: {', '.join(map(str, s.matchers))} from {_iso(s.starts_at)} "
        f"to {_iso(s.ends_at)}",
        silence=s.to_json(),
    )


@silence_app.command("list")
def silence_list(
    all_: Annotated[bool, typer.Option("--all", help="Include expired silences.")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List silences that are active or scheduled (--all: expired ones too)."""
    from rushhour.notify.silences import list_silences

    store = _store(load_cli_settings(config))
    try:
        now = time.time()
        rows = list_silences(store, now=now, expired=all_)
    finally:
        store.close()
    if as_json:
        out.out(json.dumps([{**s.to_json(), "active": s.active(now)} for s in rows]))
        return
    if not rows:
        out.print("no silences")
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("id", "matchers", "start", "end", "state", "comment", "by"):
        table.add_column(col)
    for s in rows:
        state = "active" if s.active(now) else ("expired" if s.ends_at <= now else "scheduled")
        table.add_row(
            str(s.id),
            ", ".join(map(str, s.matchers)),
            _iso(s.starts_at),
            _iso(s.ends_at),
            state,
            s.comment,
            s.created_by,
        )
    out.print(table)


@silence_app.command("remove")
def silence_remove(
    silence_id: Annotated[int, typer.Argument(help="Id shown by `rushhour silence list`.")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a silence."""
    from rushhour.notify.silences import remove_silence

    store = _store(load_cli_settings(config))
    try:
        removed = remove_silence(store, silence_id)
    finally:
        store.close()
    if not removed:
        raise UsageError(
            f"there is no silence {silence_id}", hint="run `rushhour silence list --all`"
        )
    emit(as_json, "silence_removed", f"removed silence {silence_id}", id=silence_id)


# -- notify -------------------------------------------------------------------------------------
def configured_channels(settings: Settings) -> list[Any]:
    from rushhour.notify.registry import channels_from_settings

    return channels_from_settings(settings)


@notify_app.command("test")
def notify_test(
    severity: Annotated[
        str, typer.Option(help="Severity of the test alert: info, warning or critical.")
    ] = "critical",
    channel: Annotated[
        list[str] | None, typer.Option(help="Only this channel (by name); repeatable.")
    ] = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a test alert (with its plot) through the configured channels, right now.

    Each channel whose min_severity the test alert reaches gets it directly (not through the
    outbox), and the command reports what each one answered. Exit 1 when any channel failed.
    """
    from dataclasses import replace

    from rushhour.notify.alert import severity_rank
    from rushhour.notify.console import ConsoleChannel
    from rushhour.notify.plot import example, render
    from rushhour.notify.registry import ChannelError, Delivery

    try:
        severity_rank(severity)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    settings = load_cli_settings(config)
    channels = configured_channels(settings)
    if channel:
        unknown = set(channel) - {c.name for c in channels}
        if unknown:
            raise UsageError(
                f"no configured channel named {', '.join(sorted(unknown))}",
                hint=f"configured: {', '.join(c.name for c in channels)}",
            )
        channels = [c for c in channels if c.name in channel]
    alert, data = example(datetime.fromtimestamp(time.time()).astimezone())
    alert = replace(
        alert,
        series="rushhour-test",
        labels={**alert.labels, "service": "rushhour-test"},
        severity=severity,
        dashboard=settings.alerts.dashboard_url,
        timezone=settings.timezone,
        series_id=None,
    )
    image = render(alert, data)
    for ch in channels:
        if isinstance(ch, ConsoleChannel):
            ch.as_json = as_json  # keep --json output machine-readable
    results = []
    for ch in channels:
        if severity_rank(severity) < severity_rank(ch.min_severity):
            results.append(
                {"channel": ch.name, "result": "skipped", "reason": "below min_severity"}
            )
            continue
        try:
            ch.deliver(Delivery(f"test-{int(time.time())}:{ch.name}", [alert], image))
            results.append({"channel": ch.name, "result": "sent"})
        except ChannelError as exc:
            results.append({"channel": ch.name, "result": "failed", "reason": exc.message})
    failed = [r for r in results if r["result"] == "failed"]
    for r in results:
        colour = {"sent": "green", "failed": "red"}.get(r["result"], "dim")
        reason = f": {r['reason']}" if "reason" in r else ""
        emit(as_json, "notify_test", f"[{colour}]{r['result']}[/] {r['channel']}{reason}", **r)
    if failed:
        raise typer.Exit(1)


@notify_app.command("drain")
def notify_drain(
    for_: Annotated[
        str | None, typer.Option("--for", help="Stop after this long (default: until idle).")
    ] = None,
    lease: Annotated[
        str, typer.Option(help="How long a claimed delivery is reserved; longer than a send.")
    ] = "60s",
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deliver what waits in the outbox, with retries and backoff.

    Without --for it stops when nothing is pending; rows waiting for a retry keep it running.
    """
    from rushhour.notify.outbox import Outbox
    from rushhour.notify.worker import DeliveryWorker
    from rushhour.pipeline.clock import SystemClock

    settings = load_cli_settings(config)
    channels = {c.name: c for c in configured_channels(settings)}
    store = _store(settings)
    outbox = Outbox(
        store,
        retry_base=settings.alerts.retry_base,
        retry_max=settings.alerts.retry_max,
        lease=parse_duration(lease).total_seconds(),
    )
    duration = parse_duration(for_).total_seconds() if for_ else None

    def report(key: str, outcome: str, message: str | None) -> None:
        tail = f": {message}" if message else ""
        emit(as_json, "delivery", f"{outcome} {key}{tail}", key=key, outcome=outcome, error=message)

    worker = DeliveryWorker(outbox, channels, SystemClock(), on_result=report)
    try:
        with progress_bar(as_json) as progress:
            if progress is not None:
                progress.add_task("delivering", total=None)
            stats = worker.run(duration=duration, until_idle=duration is None, poll=0.5)
        counts = outbox.counts()
    finally:
        store.close()
    emit(
        as_json,
        "drained",
        f"sent {stats.sent}, retries {stats.failed}, dead {stats.dead}; outbox: {counts}",
        sent=stats.sent,
        failed=stats.failed,
        dead=stats.dead,
        outbox=counts,
    )


@notify_app.command("outbox")
def notify_outbox(
    state: Annotated[
        str | None, typer.Option(help="Only rows in this state: pending, sending, sent or dead.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Most recent rows to show.")] = 50,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show deliveries in the outbox: state, attempts, next attempt, last error."""
    from rushhour.notify.outbox import Outbox

    store = _store(load_cli_settings(config))
    try:
        rows = Outbox(store).rows(state, limit)
    finally:
        store.close()
    if as_json:
        out.out(json.dumps(rows))
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("id", "dedupe key", "state", "attempts", "next attempt", "last error"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["dedupe_key"],
            r["state"],
            str(r["attempts"]),
            _iso(r["next_attempt_at"]),
            r["last_error"] or "",
        )
    out.print(table)
