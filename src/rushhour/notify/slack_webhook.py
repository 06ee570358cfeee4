"""Slack incoming webhook: text only, with an image block linking to the PNG rushhour serves.

Incoming webhooks cannot upload files; the image block points at ``<dashboard_url>/alerts/<id>/plot.png``
(served by rushhour's API from the outbox), so Slack must be able to reach that URL.

The body carries the dedupe key as Slack message metadata, but Slack does not drop a repeated
webhook post, and a webhook URL cannot read the channel back: a post in flight when the process
dies can show twice (at-least-once). Use the ``slack`` bot channel where that matters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rushhour.notify.alert import image_link
from rushhour.notify.registry import Delivery, delivery_headers, post_json, register, secret
from rushhour.notify.slack import blocks, metadata
from rushhour.settings import SlackWebhookNotify


class SlackWebhookChannel:
    """POSTs Block Kit JSON to an incoming-webhook URL (the URL is the secret)."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "slack_webhook",
        min_severity: str = "warning",
        timeout: float = 10.0,
    ) -> None:
        self.name = name
        self.min_severity = min_severity
        self.timeout = timeout
        self._url = url

    def body(self, delivery: Delivery) -> dict[str, Any]:
        out = blocks(delivery.alerts)
        first = delivery.alerts[0]
        img = image_link(first.dashboard, first.id)
        if img and delivery.image:
            out.append({"type": "image", "image_url": img, "alt_text": first.sentence()[:1900]})
        return {"text": delivery.text(), "blocks": out, "metadata": metadata(delivery.key)}

    def deliver(self, delivery: Delivery) -> None:
        post_json(
            self._url,
            self.body(delivery),
            headers=delivery_headers(delivery.key, None),
            timeout=self.timeout,
            what="slack webhook",
            secrets=(self._url,),
        )


@register("slack_webhook")
def _build(cfg: SlackWebhookNotify, environ: Mapping[str, str]) -> SlackWebhookChannel:
    return SlackWebhookChannel(
        secret(environ, cfg.url_env, "notify slack_webhook"),
        name=cfg.channel_name(),
        min_severity=cfg.min_severity,
        timeout=cfg.timeout,
    )
