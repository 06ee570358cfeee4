"""An Alertmanager-compatible webhook payload (version 4), so existing receivers work unchanged.

>>> from datetime import datetime, UTC
>>> t = datetime(2026, 3, 2, 8, 12, tzinfo=UTC)
>>> a = Alert("api", {"region": "eu"}, "firing", t, t, 300.0, 100.0, 20.0, 10.0, "critical")
>>> p = payload(Delivery("k", [a], group_labels={"series": "api"}), receiver="rushhour")
>>> p["version"], p["status"], p["groupKey"], p["alerts"][0]["endsAt"]
('4', 'firing', '{}:{series="api"}', '0001-01-01T00:00:00Z')
>>> p["commonLabels"]["severity"], p["alerts"][0]["labels"]["alertname"]
('critical', 'TrafficAnomaly')
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rushhour.notify.alert import Alert
from rushhour.notify.registry import Delivery, delivery_headers, post_json, register, secret
from rushhour.settings import AlertmanagerNotify

ZERO_TIME = "0001-01-01T00:00:00Z"


def _ts(t: datetime | None) -> str:
    return ZERO_TIME if t is None else f"{t:%Y-%m-%dT%H:%M:%S}Z"


def alert_labels(a: Alert) -> dict[str, str]:
    return {"alertname": "TrafficAnomaly", **a.all_labels}


def alert_annotations(a: Alert) -> dict[str, str]:
    ann = {"summary": a.title(), "description": a.sentence(), "score": f"{a.score:.4g}"}
    for key, v in (
        ("value", a.value),
        ("expected", a.expected),
        ("sigma", a.sigma),
        ("deviation_pct", a.deviation_pct),
    ):
        if v is not None:
            ann[key] = f"{v:.4g}"
    if a.explanation:
        ann["drivers"] = ", ".join(a.top_features(3))
    return ann


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    first = dict(maps[0])
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def payload(delivery: Delivery, *, receiver: str) -> dict[str, Any]:
    """The JSON body Alertmanager sends to its webhook receivers."""
    alerts = delivery.alerts
    labels = [alert_labels(a) for a in alerts]
    # the delivery's dedupe key rides in the annotations (free-form in version 4), so a receiver
    # that reads bodies only can drop a repeat as well as one that reads Idempotency-Key
    annotations = [{**alert_annotations(a), "dedupe_key": delivery.key} for a in alerts]
    group = dict(sorted(delivery.group_labels.items()))
    inner = ",".join(f'{k}="{v}"' for k, v in group.items())
    return {
        "version": "4",
        "groupKey": f"{{}}:{{{inner}}}",
        "truncatedAlerts": 0,
        "status": delivery.status,
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": _common(labels),
        "commonAnnotations": _common(annotations),
        "externalURL": alerts[0].dashboard,
        "alerts": [
            {
                "status": a.status,
                "labels": lab,
                "annotations": ann,
                "startsAt": _ts(a.start),
                "endsAt": _ts(a.end),
                "generatorURL": a.link(),
                "fingerprint": a.fingerprint,
            }
            for a, lab, ann in zip(alerts, labels, annotations, strict=True)
        ],
    }


class AlertmanagerChannel:
    """POSTs the version-4 payload."""

    uses_image = False  # text only: no plot is rendered for it

    def __init__(
        self,
        url: str,
        *,
        token: str = "",
        receiver: str = "rushhour",
        name: str = "alertmanager",
        min_severity: str = "warning",
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.receiver = receiver
        self.name = name
        self.min_severity = min_severity
        self.timeout = timeout
        self._token = token

    def deliver(self, delivery: Delivery) -> None:
        headers = delivery_headers(delivery.key, self._token)
        post_json(
            self.url,
            payload(delivery, receiver=self.receiver),
            headers=headers,
            timeout=self.timeout,
            what=f"alertmanager {self.name}",
            secrets=(self._token,),
        )


@register("alertmanager")
def _build(cfg: AlertmanagerNotify, environ: Mapping[str, str]) -> AlertmanagerChannel:
    return AlertmanagerChannel(
        cfg.url,
        token=secret(environ, cfg.token_env, "notify alertmanager", required=bool(cfg.token_env)),
        receiver=cfg.receiver,
        name=cfg.channel_name(),
        min_severity=cfg.min_severity,
        timeout=cfg.timeout,
    )
