"""Real HTTP servers on 127.0.0.1 for the notify tests: a Slack Web API double and a receiver.

Each records every request as it arrived (method, path, headers, raw body, parsed fields) and answers
through a function the test can replace, so tests check the exact request shapes and script faults.
Both can *hold* a request after acting on it (the message is posted, the delivery recorded) and
before answering, so a test can kill the sender exactly while its request is in flight.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    json: Any = None

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


Reply = tuple[int, dict[str, str], bytes]
Responder = Callable[[Request], Reply]


def json_reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(data).encode(),
    )


class Server:
    """A threaded HTTP server; ``respond`` decides each answer."""

    def __init__(self, respond: Responder | None = None) -> None:
        self.requests: list[Request] = []
        self.respond: Responder = respond or (lambda r: json_reply({"ok": True}))
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # Slack's read methods (conversations.*) are GETs
                self._handle("GET", b"")

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                self._handle("POST", self.rfile.read(n) if n else b"")

            def _handle(self, method: str, body: bytes) -> None:
                req = Request(method, self.path, dict(self.headers.items()), body)
                ctype = (self.headers.get("Content-Type") or "").lower()
                query = {k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()}
                req.form.update(query)
                if "json" in ctype and body:
                    req.json = json.loads(body)
                elif "x-www-form-urlencoded" in ctype:
                    try:
                        text = body.decode()
                    except UnicodeDecodeError:  # raw bytes (Slack's upload step)
                        text = ""
                    req.form.update({k: v[0] for k, v in parse_qs(text).items()})
                with outer.lock:
                    outer.requests.append(req)
                status, headers, data = outer.respond(req)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def paths(self) -> list[str]:
        return [urlparse(r.path).path for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serving(respond: Responder | None = None) -> Iterator[Server]:
    s = Server(respond)
    s.thread.start()
    try:
        yield s
    finally:
        s.close()


class Hold:
    """Hold the ``nth`` matching request after it took effect: ``reached`` is set then, and the
    answer waits until ``release()`` (or 60 s)."""

    def __init__(self, nth: int = 1) -> None:
        self.nth = nth
        self.seen = 0
        self.reached = threading.Event()
        self.released = threading.Event()

    def __call__(self) -> None:
        self.seen += 1
        if self.seen == self.nth:
            self.reached.set()
            self.released.wait(60)

    def release(self) -> None:
        self.released.set()


class SlackDouble:
    """Answers like Slack's Web API for the calls rushhour makes; checks the bot token.

    It keeps channels and their messages the way Slack does: ``chat.postMessage`` stores a bot
    message (with its ``metadata``) at a fresh ``ts``; ``files.completeUploadExternal`` with a
    ``thread_ts`` adds a file-share reply in that thread; ``conversations.history`` lists the
    top-level messages newest first between ``oldest`` and ``latest`` (exclusive unless
    ``inclusive``), with ``metadata`` only under ``include_all_metadata``, cursor-paginated by
    ``limit``; ``conversations.replies`` lists a thread (parent first); ``conversations.list`` the
    channels. Response fields follow Slack's published shapes.
    """

    BOT_USER, BOT_ID, APP_ID, TEAM = "U0BOT00001", "B0BOT00001", "A0APP00001", "T0TEAM0001"

    def __init__(self, token: str = "xoxb-test-token") -> None:
        self.token = token
        self.server: Server | None = None
        self.uploads: dict[str, bytes] = {}
        self.filenames: dict[str, str] = {}
        self.fail: dict[str, list[Reply]] = {}  # method -> scripted replies before success
        self.hold: dict[str, Hold] = {}  # method -> hold a request after it took effect
        self.channels = {"C0TRAFFIC": "traffic-alerts", "C0OTHER01": "other"}
        self.messages: dict[str, list[dict[str, Any]]] = {c: [] for c in self.channels}
        self.lock = threading.Lock()
        self._seq = itertools.count(1)

    def _ts(self) -> str:
        # Slack's ts: epoch seconds and a per-channel sequence, unique and increasing
        return f"{int(time.time())}.{next(self._seq):06d}"

    def _channel(self, ref: str) -> str | None:
        if ref in self.channels:
            return ref
        return next((i for i, n in self.channels.items() if n == ref.lstrip("#")), None)

    def __call__(self, req: Request) -> Reply:
        assert self.server is not None
        path = urlparse(req.path).path
        method = path.rsplit("/", 1)[-1]
        if self.fail.get(method):
            return self.fail[method].pop(0)
        if path.startswith("/upload/"):
            self.uploads[path.rsplit("/", 1)[-1]] = req.body
            return 200, {"Content-Type": "text/plain"}, b"OK - %d" % len(req.body)
        if req.header("Authorization") != f"Bearer {self.token}":
            return json_reply({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return json_reply({"ok": False, "error": "unknown_method"})
        with self.lock:
            reply = handler(req.json if req.json is not None else req.form)
        if method in self.hold:
            self.hold[method]()
        return reply

    # -- writes ---------------------------------------------------------------------------------
    def _chat_postMessage(self, args: dict[str, Any]) -> Reply:
        channel = self._channel(str(args.get("channel", "")))
        if channel is None:
            return json_reply({"ok": False, "error": "channel_not_found"})
        blocks = args.get("blocks")
        message: dict[str, Any] = {
            "user": self.BOT_USER,
            "type": "message",
            "ts": self._ts(),
            "bot_id": self.BOT_ID,
            "app_id": self.APP_ID,
            "text": args.get("text", ""),
            "team": self.TEAM,
            "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks or [],
        }
        meta = args.get("metadata")
        if meta:
            message["metadata"] = json.loads(meta) if isinstance(meta, str) else meta
        self.messages[channel].append(message)
        return json_reply({"ok": True, "channel": channel, "ts": message["ts"], "message": message})

    def _files_getUploadURLExternal(self, args: dict[str, Any]) -> Reply:
        assert self.server is not None
        fid = f"F{len(self.filenames) + 1:04d}"
        self.filenames[fid] = str(args["filename"])
        return json_reply(
            {"ok": True, "upload_url": f"{self.server.url}/upload/{fid}", "file_id": fid}
        )

    def _files_completeUploadExternal(self, args: dict[str, Any]) -> Reply:
        files = json.loads(args["files"])
        shared = [
            {
                "id": f["id"],
                "name": self.filenames.get(f["id"], ""),
                "title": f.get("title", ""),
                "mimetype": "image/png",
                "filetype": "png",
                "user": self.BOT_USER,
            }
            for f in files
        ]
        channel, thread = args.get("channel_id"), args.get("thread_ts")
        if channel:
            if channel not in self.messages:
                return json_reply({"ok": False, "error": "channel_not_found"})
            reply: dict[str, Any] = {
                "type": "message",
                "text": "",
                "files": shared,
                "upload": False,
                "user": self.BOT_USER,
                "display_as_bot": False,
                "ts": self._ts(),
            }
            if thread:
                reply.update(thread_ts=thread, parent_user_id=self.BOT_USER)
            self.messages[channel].append(reply)
        return json_reply(
            {"ok": True, "files": [{"id": f["id"], "title": f["title"]} for f in shared]}
        )

    # -- reads ----------------------------------------------------------------------------------
    def _conversations_history(self, args: dict[str, Any]) -> Reply:
        channel = args.get("channel", "")
        if channel not in self.messages:
            return json_reply({"ok": False, "error": "channel_not_found"})
        oldest, latest = (
            float(args.get("oldest") or 0),
            float(args.get("latest") or time.time() + 1),
        )
        inclusive = _flag(args.get("inclusive"))
        with_meta = _flag(args.get("include_all_metadata"))

        def within(ts: float) -> bool:
            return (oldest <= ts <= latest) if inclusive else (oldest < ts < latest)

        top = [
            self._summary(channel, m, with_meta)
            for m in self.messages[channel]
            if m.get("thread_ts") in (None, m["ts"]) and within(float(m["ts"]))
        ]
        top.sort(key=lambda m: float(m["ts"]), reverse=True)
        page, more, cursor = _page(top, args)
        body: dict[str, Any] = {"ok": True, "messages": page, "has_more": more, "pin_count": 0}
        body["response_metadata"] = {"next_cursor": cursor}
        return json_reply(body)

    def _conversations_replies(self, args: dict[str, Any]) -> Reply:
        channel, ts = args.get("channel", ""), args.get("ts", "")
        msgs = self.messages.get(channel)
        if msgs is None:
            return json_reply({"ok": False, "error": "channel_not_found"})
        parent = next((m for m in msgs if m["ts"] == ts), None)
        if parent is None:
            return json_reply({"ok": False, "error": "thread_not_found"})
        with_meta = _flag(args.get("include_all_metadata"))
        thread = [self._summary(channel, parent, with_meta)] + [
            _strip(m, with_meta) for m in msgs if m.get("thread_ts") == ts and m is not parent
        ]
        page, more, cursor = _page(thread, args)
        return json_reply(
            {
                "ok": True,
                "messages": page,
                "has_more": more,
                "response_metadata": {"next_cursor": cursor},
            }
        )

    def _conversations_list(self, args: dict[str, Any]) -> Reply:
        chans = [
            {
                "id": cid,
                "name": name,
                "is_channel": True,
                "is_group": False,
                "is_im": False,
                "is_private": False,
                "is_archived": False,
                "is_member": True,
                "created": 1700000000,
            }
            for cid, name in self.channels.items()
        ]
        page, _, cursor = _page(chans, args)
        return json_reply(
            {"ok": True, "channels": page, "response_metadata": {"next_cursor": cursor}}
        )

    def _summary(self, channel: str, m: dict[str, Any], with_meta: bool) -> dict[str, Any]:
        """A top-level message as history shows it: with thread fields once it has replies."""
        out = _strip(m, with_meta)
        replies = [
            r for r in self.messages[channel] if r.get("thread_ts") == m["ts"] and r is not m
        ]
        if replies:
            out.update(
                thread_ts=m["ts"],
                reply_count=len(replies),
                reply_users_count=1,
                latest_reply=replies[-1]["ts"],
                reply_users=[self.BOT_USER],
                is_locked=False,
                subscribed=False,
            )
        return out

    # -- test helpers ---------------------------------------------------------------------------
    def posted(self, channel: str = "C0TRAFFIC") -> list[dict[str, Any]]:
        """Top-level messages of a channel, oldest first."""
        return [m for m in self.messages[channel] if "thread_ts" not in m]

    def thread_files(self, ts: str, channel: str = "C0TRAFFIC") -> list[str]:
        """File names shared in a message's thread."""
        return [
            f["name"]
            for m in self.messages[channel]
            if m.get("thread_ts") == ts
            for f in m["files"]
        ]


def _flag(v: Any) -> bool:
    return str(v).lower() in ("1", "true")


def _strip(m: dict[str, Any], with_meta: bool) -> dict[str, Any]:
    return {k: v for k, v in m.items() if with_meta or k != "metadata"}


def _page(items: list[dict[str, Any]], args: dict[str, Any]) -> tuple[list[Any], bool, str]:
    """Cursor pagination as Slack does it: an opaque base64 ``next_cursor``, empty at the end."""
    limit = max(1, min(int(args.get("limit") or 100), 1000))
    cursor = args.get("cursor") or ""
    start = int(base64.b64decode(cursor).decode().split(":")[1]) if cursor else 0
    page = items[start : start + limit]
    more = start + limit < len(items)
    nxt = base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""
    return page, more, nxt


class Receiver:
    """A webhook receiver that drops repeats by dedupe key, as receivers should.

    The key is the ``Idempotency-Key`` header, else a ``dedupe_key`` field of the JSON body.
    ``by_key`` counts requests per key (a repeat after a crash shows as 2), ``delivered`` keeps the
    first body per key: the deliveries the receiver acted on. A repeat is answered 200 again.
    """

    def __init__(self, delay: float = 0.0, hold: Hold | None = None) -> None:
        self.delay = delay
        self.hold = hold
        self.by_key: dict[str, int] = {}
        self.delivered: dict[str, Any] = {}
        self.script: list[Reply] = []  # replies to use before answering 200
        self.lock = threading.Lock()

    def __call__(self, req: Request) -> Reply:
        if self.script:
            return self.script.pop(0)
        if self.delay:
            time.sleep(self.delay)
        body = req.json if isinstance(req.json, dict) else {}
        key = req.header("Idempotency-Key") or str(body.get("dedupe_key", ""))
        with self.lock:
            self.by_key[key] = self.by_key.get(key, 0) + 1
            self.delivered.setdefault(key, req.json)
        if self.hold is not None:
            self.hold()
        return json_reply({"ok": True})
