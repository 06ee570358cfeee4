"""Channel plugins: one registry, and the built-in channels register through it like any plugin.

A channel type is a name (the ``type`` of a ``[[notify]]`` table) and a factory that takes the
validated settings of that table and the environment (where secrets live) and returns a
:class:`Channel`. A channel delivers one group of alerts and the PNG of the first; it raises
:class:`ChannelError` to say whether and when to retry.

>>> @register("example")
... def _example(cfg, environ):
...     return ListSink()
>>> "example" in channel_types()
True
>>> unregister("example")
"""

from __future__ import annotations

import email.utils
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import httpx

from rushhour.errors import ConfigError, DeliveryError
from rushhour.notify.alert import Alert

ChannelFactory = Callable[[Any, Mapping[str, str]], "Channel"]
_REGISTRY: dict[str, ChannelFactory] = {}


@dataclass
class Delivery:
    """One outbox entry handed to a channel.

    ``key`` is the dedupe key (alert+status+channel): receivers that see it twice saw a retry.
    ``progress`` persists between attempts, so a channel with several steps (Slack: message, then
    the image in its thread) does not repeat a step that succeeded; :meth:`checkpoint` stores it
    right away (before a request whose outcome a crash could leave unknown, and after each step).
    ``in_doubt`` says an earlier attempt was cut off mid-delivery (the process died while the row
    was ``sending``): the receiver may or may not have it, and a channel that can look (Slack's
    history, a file it appends to) reconciles before sending again.
    """

    key: str
    alerts: list[Alert]
    image: bytes | None = None
    group_labels: dict[str, str] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    in_doubt: bool = False
    save: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False, compare=False)

    def checkpoint(self) -> None:
        """Persist ``progress`` now (a no-op outside the outbox)."""
        if self.save is not None:
            self.save(self.progress)

    @property
    def status(self) -> str:
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"

    def text(self) -> str:
        """The sentences of the group, one per line."""
        return "\n".join(a.sentence() for a in self.alerts)


class Channel(Protocol):
    """Where alerts go."""

    name: str
    min_severity: str

    def deliver(self, delivery: Delivery) -> None: ...


class ChannelError(DeliveryError):
    """A delivery failed. ``retry_after`` (seconds) is the server's wish; ``permanent`` stops retries."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


def register(type_name: str) -> Callable[[ChannelFactory], ChannelFactory]:
    """Register a channel factory under ``type_name``."""

    def deco(factory: ChannelFactory) -> ChannelFactory:
        _REGISTRY[type_name] = factory
        return factory

    return deco


def unregister(type_name: str) -> None:
    _REGISTRY.pop(type_name, None)


def channel_types() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def build_channel(cfg: Any, environ: Mapping[str, str] | None = None) -> Channel:
    """The channel for one ``[[notify]]`` table (its ``type`` picks the factory)."""
    _load_builtins()
    factory = _REGISTRY.get(cfg.type)
    if factory is None:
        raise ConfigError(
            f"notify type {cfg.type!r} is not registered (known: {', '.join(sorted(_REGISTRY))})"
        )
    return factory(cfg, os.environ if environ is None else environ)


def _load_builtins() -> None:
    # importing the modules registers them; done lazily so that slack_sdk loads only when used
    from rushhour.notify import (  # noqa: F401
        alertmanager,
        console,
        email,
        jsonl,
        slack,
        slack_webhook,
        webhook,
    )


def secret(environ: Mapping[str, str], var: str | None, what: str, *, required: bool = True) -> str:
    """The secret held in environment variable ``var``; the error names the variable, never a value."""
    if not var:
        if required:
            raise ConfigError(f"{what}: token_env is not set", hint="name the environment variable")
        return ""
    value = environ.get(var, "")
    hide_in_logs(value)
    if not value and required:
        raise ConfigError(
            f"{what}: environment variable {var} is empty or unset",
            hint=f"export {var}=... before starting rushhour (secrets never go in the config file)",
        )
    return value


class _SecretFilter(logging.Filter):
    """Rewrites log records of the HTTP libraries so no known secret reaches a log handler.

    httpx logs each request URL at INFO; for a Slack incoming webhook the URL *is* the secret.
    """

    secrets: ClassVar[set[str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            clean = redact(text, *self.secrets)
            if clean != text:
                record.msg, record.args = clean, None
        return True


_FILTER = _SecretFilter()
for _name in ("httpx", "httpcore", "slack_sdk", "rushhour"):
    logging.getLogger(_name).addFilter(_FILTER)


def hide_in_logs(*secrets: str) -> None:
    """Register secret values that must never appear in log records."""
    _SecretFilter.secrets.update(s for s in secrets if s)


def redact(text: str, *secrets: str) -> str:
    """Remove secret values from a message before it is logged or stored.

    >>> redact("bad token xoxb-123 for url", "xoxb-123")
    'bad token *** for url'
    """
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    >>> retry_after("7"), retry_after(None), retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0)
    (7.0, None, 10.0)
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(when - (time.time() if now is None else now), 0.0)


def delivery_headers(key: str, token: str | None) -> dict[str, str]:
    """The headers of a JSON delivery: its dedupe key (receivers drop repeats by it) and the token."""
    headers = {"Idempotency-Key": key}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def post_json(
    url: str,
    body: Any,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    what: str = "webhook",
    secrets: tuple[str, ...] = (),
) -> httpx.Response:
    """POST JSON; map failures to :class:`ChannelError` (429 and 5xx retry, other 4xx are permanent)."""
    try:
        resp = httpx.post(url, json=body, headers=dict(headers or {}), timeout=timeout)
    except httpx.TimeoutException as exc:
        raise ChannelError(f"{what}: timed out after {timeout:g}s") from exc
    except httpx.HTTPError as exc:
        raise ChannelError(redact(f"{what}: {type(exc).__name__}: {exc}", *secrets)) from exc
    check_status(resp.status_code, resp.headers.get("Retry-After"), resp.text[:200], what)
    return resp


def check_status(code: int, retry_after_header: str | None, text: str, what: str) -> None:
    """Raise the right :class:`ChannelError` for an HTTP status."""
    if code < 300:
        return
    if code == 429:
        raise ChannelError(
            f"{what}: rate limited (429)", retry_after=retry_after(retry_after_header)
        )
    if code >= 500 or code in (408, 425):
        raise ChannelError(
            f"{what}: server error {code}", retry_after=retry_after(retry_after_header)
        )
    raise ChannelError(f"{what}: rejected with {code}: {text}", permanent=True)


class ListSink:
    """A channel that keeps what it is given (tests and plugin examples)."""

    name = "list"
    min_severity = "info"

    def __init__(self) -> None:
        self.delivered: list[Delivery] = []

    def deliver(self, delivery: Delivery) -> None:
        self.delivered.append(delivery)


def build_channels(cfgs: list[Any], environ: Mapping[str, str] | None = None) -> list[Channel]:
    """Every configured channel; names must be unique (they key the outbox rows)."""
    out: list[Channel] = []
    seen: set[str] = set()
    for i, cfg in enumerate(cfgs):
        ch = build_channel(cfg, environ)
        if ch.name in seen:
            raise ConfigError(
                f"notify[{i}]: two channels are named {ch.name!r}",
                hint='give each [[notify]] table its own name = "..."',
            )
        seen.add(ch.name)
        out.append(ch)
    return out


def channels_from_settings(
    settings: Any, environ: Mapping[str, str] | None = None
) -> list[Channel]:
    """The ``[[notify]]`` channels, or the demo's default: the console and ``alerts.jsonl``."""
    from rushhour.settings import ConsoleNotify, JsonlNotify

    cfgs: list[Any] = list(settings.notify) or [
        ConsoleNotify(type="console"),
        JsonlNotify(type="jsonl", path=settings.data_dir / "alerts.jsonl"),
    ]
    return build_channels(cfgs, environ)
