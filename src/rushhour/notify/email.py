"""Email through SMTP (standard library), the plot attached.

The Message-ID derives from the delivery's dedupe key, so a retried mail is recognisably the same.
SMTP 4xx replies and connection failures are retried; 5xx replies are permanent.
"""

from __future__ import annotations

import smtplib
from collections.abc import Mapping
from email.message import EmailMessage

from rushhour.notify.registry import ChannelError, Delivery, redact, register, secret
from rushhour.settings import EmailNotify


class EmailChannel:
    """Sends one mail per delivery."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        to: list[str],
        starttls: bool = False,
        username: str | None = None,
        password: str = "",
        name: str = "email",
        min_severity: str = "warning",
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender, self.to = host, port, sender, list(to)
        self.starttls = starttls
        self.username = username
        self.name = name
        self.min_severity = min_severity
        self.timeout = timeout
        self._password = password

    def message(self, delivery: Delivery) -> EmailMessage:
        first = delivery.alerts[0]
        msg = EmailMessage()
        msg["Subject"] = first.title() + (
            f" (+{len(delivery.alerts) - 1} more)" if len(delivery.alerts) > 1 else ""
        )
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Message-ID"] = f"<{delivery.key.replace(':', '.')}@rushhour>"
        links = [a.link() for a in delivery.alerts if a.link()]
        body = delivery.text() + ("\n\n" + "\n".join(links) if links else "") + "\n"
        msg.set_content(body)
        if delivery.image:
            msg.add_attachment(
                delivery.image, maintype="image", subtype="png", filename=f"{first.id}.png"
            )
        return msg

    def deliver(self, delivery: Delivery) -> None:
        msg = self.message(delivery)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self._password)
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            text = redact(f"email: SMTP {exc.smtp_code} {exc.smtp_error!r}", self._password)
            raise ChannelError(text, permanent=500 <= exc.smtp_code < 600) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise ChannelError(
                f"email: recipients refused: {list(exc.recipients)}", permanent=True
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(
                redact(f"email: {type(exc).__name__}: {exc}", self._password)
            ) from exc


@register("email")
def _build(cfg: EmailNotify, environ: Mapping[str, str]) -> EmailChannel:
    return EmailChannel(
        host=cfg.host,
        port=cfg.port,
        sender=cfg.sender,
        to=cfg.to,
        starttls=cfg.starttls,
        username=cfg.username,
        password=secret(environ, cfg.password_env, "notify email", required=bool(cfg.password_env)),
        name=cfg.channel_name(),
        min_severity=cfg.min_severity,
        timeout=cfg.timeout,
    )
