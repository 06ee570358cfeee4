"""A generic JSON webhook with a bearer token: the seed's ChatBot call, with a configurable body.

The body template is JSON with ``${field}`` placeholders in its strings. It is parsed once, and each
string is filled with :class:`string.Template` (never eval), so alert text cannot break the JSON. A
string that is exactly one placeholder keeps the field's type (numbers stay numbers).

>>> render_template({"status": "${status}", "v": "${value}", "d": "${series} is ${direction}"},
...                 {"status": "firing", "value": 3.5, "series": "api", "direction": "spike"})
{'status': 'firing', 'v': 3.5, 'd': 'api is spike'}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from string import Template
from typing import Any

from rushhour.errors import ConfigError
from rushhour.notify.registry import Delivery, delivery_headers, post_json, register, secret
from rushhour.settings import WebhookNotify

_WHOLE = re.compile(r"^\$\{(\w+)\}$")


def parse_template(text: str, source: str = "template") -> Any:
    """The template's JSON structure; a clear error when it is not JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source}: not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            hint='write a JSON object such as {"status": "${status}", "text": "${sentence}"}',
        ) from exc


def render_template(node: Any, fields: Mapping[str, Any]) -> Any:
    """Fill placeholders in every string of a JSON structure; unknown ones stay as written."""
    if isinstance(node, str):
        whole = _WHOLE.match(node)
        if whole and whole.group(1) in fields:
            return fields[whole.group(1)]
        return Template(node).safe_substitute({k: _text(v) for k, v in fields.items()})
    if isinstance(node, list):
        return [render_template(x, fields) for x in node]
    if isinstance(node, dict):
        return {k: render_template(v, fields) for k, v in node.items()}
    return node


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return str(v)


def template_fields(delivery: Delivery) -> dict[str, Any]:
    """Fields a template can use: every field of the first alert's summary, and group fields."""
    first = delivery.alerts[0]
    fields = {k: v for k, v in first.summary_json().items()}
    fields.update(
        status=delivery.status,
        sentence=delivery.text(),
        count=len(delivery.alerts),
        dedupe_key=delivery.key,
        title=first.title(),
    )
    return fields


class WebhookChannel:
    """POSTs the rendered template with ``Authorization: Bearer <token>``."""

    uses_image = False  # text only: no plot is rendered for it

    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        template: str | Any = None,
        name: str = "webhook",
        min_severity: str = "warning",
        timeout: float = 10.0,
    ) -> None:
        from rushhour.settings import CHATBOT_TEMPLATE

        self.url = url
        self.name = name
        self.min_severity = min_severity
        self.timeout = timeout
        self._token = token
        text = CHATBOT_TEMPLATE if template is None else template
        self.template = parse_template(text, f"notify {name}") if isinstance(text, str) else text

    def body(self, delivery: Delivery) -> Any:
        return render_template(self.template, template_fields(delivery))

    def deliver(self, delivery: Delivery) -> None:
        headers = delivery_headers(delivery.key, self._token)
        post_json(
            self.url,
            self.body(delivery),
            headers=headers,
            timeout=self.timeout,
            what=f"webhook {self.name}",
            secrets=(self._token,),
        )


@register("webhook")
def _build(cfg: WebhookNotify, environ: Mapping[str, str]) -> WebhookChannel:
    return WebhookChannel(
        cfg.url,
        token=secret(
            environ, cfg.token_env, f"notify webhook {cfg.url}", required=bool(cfg.token_env)
        ),
        template=cfg.template,
        name=cfg.channel_name(),
        min_severity=cfg.min_severity,
        timeout=cfg.timeout,
    )
