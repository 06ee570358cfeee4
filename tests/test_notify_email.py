"""Email through a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from rushhour.notify.email import EmailChannel
from rushhour.notify.plot import example, render
from rushhour.notify.registry import ChannelError, Delivery, build_channel
from rushhour.settings import EmailNotify


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.reply: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply:
            return self.reply
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        yield inbox, port
    finally:
        ctl.stop()


def test_mail_with_sentence_link_and_png_attached(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    alert, data = example()
    png = render(alert, data)
    cfg = EmailNotify(
        type="email",
        port=port,
        sender="rushhour@example.org",
        to=["oncall@example.org", "b@example.org"],
    )  # type: ignore[call-arg]
    build_channel(cfg, {}).deliver(Delivery("m1:email", [alert], png))
    ((mail_from, rcpt, raw),) = inbox.messages
    assert mail_from == "rushhour@example.org" and rcpt == ["oncall@example.org", "b@example.org"]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "[CRITICAL] connected-drive spike"
    assert msg["Message-ID"] == "<m1.email@rushhour>"
    body = msg.get_body(("plain",))
    assert body is not None and alert.sentence() in body.get_content()
    assert alert.link() in body.get_content()
    parts = [p for p in msg.iter_attachments() if p.get_content_type() == "image/png"]
    assert len(parts) == 1 and parts[0].get_content() == png


def test_smtp_4xx_retries_5xx_is_permanent(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    alert, _ = example()
    ch = EmailChannel(host="127.0.0.1", port=port, sender="a@x", to=["b@x"])
    inbox.reply = "451 try again later"
    with pytest.raises(ChannelError, match="SMTP 451") as info:
        ch.deliver(Delivery("m2:email", [alert]))
    assert not info.value.permanent
    inbox.reply = "554 rejected"
    with pytest.raises(ChannelError, match="SMTP 554") as info:
        ch.deliver(Delivery("m2:email", [alert]))
    assert info.value.permanent


def test_no_server_is_retryable() -> None:
    alert, _ = example()
    ch = EmailChannel(host="127.0.0.1", port=_free_port(), sender="a@x", to=["b@x"], timeout=1)
    with pytest.raises(ChannelError) as info:
        ch.deliver(Delivery("m3:email", [alert]))
    assert not info.value.permanent
