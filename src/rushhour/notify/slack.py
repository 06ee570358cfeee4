"""Slack through the Web API with a bot token: ``chat.postMessage``, then the PNG in its thread.

The image goes up with ``files_upload_v2`` (``files.getUploadURLExternal``, the bytes POSTed to the
returned URL, ``files.completeUploadExternal`` with ``channel_id`` and ``thread_ts``), the flow that
replaced the retired ``files.upload``.

Exactly once as the channel sees it. Each step is checkpointed in the delivery's progress (kept in
the outbox row): the time a post was started before ``chat.postMessage``, the message's ``ts`` and
channel id after it; the same around the upload. The message carries Slack message *metadata*
(``event_type`` ``rushhour_alert``, ``event_payload.dedupe_key``). When an attempt was cut off
after starting a post (a crash, a timeout) and before its answer was stored, the next attempt
first reads the channel's history since that time (``conversations.history`` with
``include_all_metadata``) for a message with this dedupe key: found, it is not posted again, and
the thread gets its image if it lacks one (``conversations.replies`` shows whether the file is
there). This needs the ``channels:history`` scope (``groups:history`` for a private channel) and,
when the channel is configured by name, ``channels:read`` to find its id; without them the
delivery falls back to posting again (at-least-once) and says so in its progress.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from rushhour.notify.alert import Alert
from rushhour.notify.registry import ChannelError, Delivery, redact, register, retry_after, secret
from rushhour.settings import SlackNotify

EVENT_TYPE = "rushhour_alert"
SKEW = 120.0  # seconds of clock difference allowed between this host and Slack
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


def metadata(key: str) -> dict[str, Any]:
    """The message metadata that lets a later attempt find this delivery's message.

    >>> metadata("a1-firing:slack")
    {'event_type': 'rushhour_alert', 'event_payload': {'dedupe_key': 'a1-firing:slack'}}
    """
    return {"event_type": EVENT_TYPE, "event_payload": {"dedupe_key": key}}


def carries_key(message: Mapping[str, Any], key: str) -> bool:
    """Whether a message from ``conversations.history`` is the one posted for ``key``."""
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    return bool(meta.get("event_type") == EVENT_TYPE and payload.get("dedupe_key") == key)


class SlackChannel:
    """Posts Block Kit messages with a bot token."""

    def __init__(
        self,
        token: str,
        channel: str,
        *,
        base_url: str = "https://slack.com/api/",
        name: str = "slack",
        min_severity: str = "warning",
        timeout: float = 10.0,
        upload_image: bool = True,
    ) -> None:
        from slack_sdk import WebClient

        self.name = name
        self.min_severity = min_severity
        self.channel = channel
        self.upload_image = upload_image
        self._token = token
        self._resolved: str | None = None  # the channel id found by name
        # no built-in retry handlers: the outbox owns retries, with backoff and Retry-After
        self.client = WebClient(
            token=token,
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            timeout=int(max(timeout, 1)),
            retry_handlers=[],
        )

    def deliver(self, delivery: Delivery) -> None:
        p = delivery.progress
        if "ts" not in p and "posting_since" in p:
            self._find_message(delivery)  # an earlier post may have landed
        if "ts" not in p:
            p["posting_since"] = time.time()
            delivery.checkpoint()
            resp = self._call(
                "chat.postMessage",
                self.client.chat_postMessage,
                channel=self.channel,
                text=delivery.text(),
                blocks=blocks(delivery.alerts),
                metadata=metadata(delivery.key),
                unfurl_links=False,
            )
            p["ts"], p["channel_id"] = resp["ts"], resp["channel"]
            delivery.checkpoint()
        if self.upload_image and delivery.image and not p.get("uploaded"):
            first = delivery.alerts[0]
            filename = f"rushhour-{first.id}.png"
            if "uploading_since" in p and self._thread_has_file(p, filename):
                p["uploaded"] = True
                delivery.checkpoint()
                return
            p["uploading_since"] = time.time()
            delivery.checkpoint()
            self._call(
                "files_upload_v2",
                self.client.files_upload_v2,
                channel=p["channel_id"],
                thread_ts=p["ts"],
                content=None,
                file=delivery.image,
                filename=filename,
                title=first.title(),
            )
            p["uploaded"] = True
            delivery.checkpoint()

    # -- reconciling an attempt that was cut off ---------------------------------------------------
    def _find_message(self, delivery: Delivery) -> None:
        """Look for this delivery's message posted since the cut-off attempt; keep its ts if found."""
        p = delivery.progress
        channel_id = p.get("channel_id") or self._channel_id()
        if channel_id is None:
            p["reconcile"] = "channel id unknown: posting again"
            return
        oldest = f"{float(p['posting_since']) - SKEW:.6f}"
        found, failed = self._first(
            "conversations.history",
            self.client.conversations_history,
            lambda m: carries_key(m, delivery.key),
            channel=channel_id,
            oldest=oldest,
            include_all_metadata=True,
            limit=200,
        )
        if failed is not None:
            p["reconcile"] = f"{failed}: posting again"
        elif found is None:
            p["reconcile"] = "not in the channel's history: posting"
        else:
            p["ts"], p["channel_id"] = found["ts"], channel_id
            p["reconcile"] = "found the message: not posted again"
            delivery.checkpoint()

    def _thread_has_file(self, p: dict[str, Any], filename: str) -> bool:
        found, _ = self._first(
            "conversations.replies",
            self.client.conversations_replies,
            lambda m: any(f.get("name") == filename for f in m.get("files") or []),
            channel=p["channel_id"],
            ts=p["ts"],
            limit=200,
        )
        return found is not None  # not found, or no history scope: upload again

    def _channel_id(self) -> str | None:
        """The configured channel's id: as written, or looked up by name (``conversations.list``)."""
        if _CHANNEL_ID.match(self.channel):
            return self.channel
        if self._resolved is None:
            name = self.channel.lstrip("#")
            found, _ = self._first(
                "conversations.list",
                self.client.conversations_list,
                lambda c: c.get("name") == name,
                items="channels",
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=1000,
            )
            self._resolved = None if found is None else str(found["id"])
        return self._resolved

    def _first(
        self,
        what: str,
        fn: Callable[..., Any],
        match: Callable[[dict[str, Any]], bool],
        *,
        items: str = "messages",
        **kw: Any,
    ) -> tuple[dict[str, Any] | None, str | None]:
        """The first matching item of a cursor-paginated look-up, and why the look-up could not be
        made (a permanent error such as a missing scope: the caller sends again rather than lose
        the alert). Rate limits and server errors raise: the next attempt looks again."""
        cursor = None
        try:
            while True:
                resp = self._call(what, fn, cursor=cursor, **kw)
                found = next((x for x in resp.get(items) or [] if match(x)), None)
                cursor = (resp.get("response_metadata") or {}).get("next_cursor")
                if found is not None or not cursor:
                    return found, None
        except ChannelError as exc:
            if exc.permanent:
                return None, exc.message
            raise

    def _call(self, what: str, fn: Any, **kw: Any) -> Any:
        from slack_sdk.errors import SlackApiError, SlackRequestError

        try:
            return fn(**kw)
        except SlackApiError as exc:
            resp = exc.response
            code = int(getattr(resp, "status_code", 0) or 0)
            error = resp.get("error", "") if hasattr(resp, "get") else ""
            if code == 429 or error == "ratelimited":
                ra = retry_after(
                    (resp.headers or {}).get("Retry-After") or _header(resp, "retry-after")
                )
                raise ChannelError(f"slack {what}: rate limited (429)", retry_after=ra) from exc
            if code >= 500 or error in ("internal_error", "fatal_error", "service_unavailable"):
                raise ChannelError(f"slack {what}: server error {code} {error}".strip()) from exc
            raise ChannelError(f"slack {what}: {error or code}", permanent=True) from exc
        except (SlackRequestError, OSError, ValueError) as exc:
            # URLError, socket timeouts and refused connections are OSErrors: retry them
            msg = redact(f"slack {what}: {type(exc).__name__}: {exc}", self._token)
            raise ChannelError(msg) from exc


def _header(resp: Any, name: str) -> str | None:
    for k, v in (getattr(resp, "headers", None) or {}).items():
        if k.lower() == name:
            return str(v[0] if isinstance(v, list) else v)
    return None


def blocks(alerts: list[Alert]) -> list[dict[str, Any]]:
    """Block Kit for a group: a header, one section per alert, a context line with labels and link."""
    first = alerts[0]
    head = first.title() if len(alerts) == 1 else f"{first.title()} and {len(alerts) - 1} more"
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": head[:150]}}
    ]
    for a in alerts:
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": a.sentence()}})
        labels = ", ".join(f"{k}={v}" for k, v in sorted(a.labels.items())) or "no labels"
        ctx = f"{labels} · {a.detector} · score {a.score:.2f}"
        if a.link():
            ctx += f" · <{a.link()}|open dashboard>"
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": ctx}]})
    return out


@register("slack")
def _build(cfg: SlackNotify, environ: Mapping[str, str]) -> SlackChannel:
    return SlackChannel(
        secret(environ, cfg.token_env, f"notify slack {cfg.channel}"),
        cfg.channel,
        base_url=cfg.base_url,
        name=cfg.channel_name(),
        min_severity=cfg.min_severity,
        timeout=cfg.timeout,
        upload_image=cfg.upload_image,
    )
