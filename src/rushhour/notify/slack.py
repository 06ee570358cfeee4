"""Slack through the Web API with a bot token: ``chat.postMessage``, then the PNG in its thread.

The image goes up with ``files_upload_v2`` (``files.getUploadURLExternal``, the bytes POSTed to the
returned URL, ``files.completeUploadExternal`` with ``channel_id`` and ``thread_ts``), the flow that
replaced the retired ``files.upload``. The posted message's ``ts`` and channel id are kept in the
delivery's progress, so a retry after a failed upload does not post the message twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rushhour.notify.alert import Alert
from rushhour.notify.registry import ChannelError, Delivery, redact, register, retry_after, secret
from rushhour.settings import SlackNotify


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
        # no built-in retry handlers: the outbox owns retries, with backoff and Retry-After
        self.client = WebClient(
            token=token,
            base_url=base_url if base_url.endswith("/") else base_url + "/",
            timeout=int(max(timeout, 1)),
            retry_handlers=[],
        )

    def deliver(self, delivery: Delivery) -> None:
        p = delivery.progress
        if "ts" not in p:
            resp = self._call(
                "chat.postMessage",
                self.client.chat_postMessage,
                channel=self.channel,
                text=delivery.text(),
                blocks=blocks(delivery.alerts),
                unfurl_links=False,
            )
            p["ts"], p["channel_id"] = resp["ts"], resp["channel"]
        if self.upload_image and delivery.image and not p.get("uploaded"):
            first = delivery.alerts[0]
            self._call(
                "files_upload_v2",
                self.client.files_upload_v2,
                channel=p["channel_id"],
                thread_ts=p["ts"],
                content=None,
                file=delivery.image,
                filename=f"rushhour-{first.id}.png",
                title=first.title(),
            )
            p["uploaded"] = True

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
