"""Real HTTP servers on 127.0.0.1 for the notify tests: a Slack Web API double and a receiver.

Each records every request as it arrived (method, path, headers, raw body, parsed fields) and answers
through a function the test can replace, so tests check the exact request shapes and script faults.
"""

from __future__ import annotations

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

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = Request("POST", self.path, dict(self.headers.items()), body)
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


class SlackDouble:
    """Answers like Slack's Web API for the calls rushhour makes; checks the bot token."""

    def __init__(self, token: str = "xoxb-test-token") -> None:
        self.token = token
        self.server: Server | None = None
        self.uploads: dict[str, bytes] = {}
        self.fail: dict[str, list[Reply]] = {}  # method -> scripted replies before success

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
        if method == "chat.postMessage":
            return json_reply({"ok": True, "channel": "C0TRAFFIC", "ts": "1700000000.000100"})
        if method == "files.getUploadURLExternal":
            fid = f"F{len(self.uploads) + 1:04d}"
            return json_reply(
                {"ok": True, "upload_url": f"{self.server.url}/upload/{fid}", "file_id": fid}
            )
        if method == "files.completeUploadExternal":
            files = json.loads(req.form["files"])
            return json_reply({"ok": True, "files": [{"id": f["id"]} for f in files]})
        return json_reply({"ok": False, "error": "unknown_method"})


class Receiver:
    """A webhook receiver that counts deliveries by dedupe key; optional delay per request."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.by_key: dict[str, int] = {}
        self.script: list[Reply] = []  # replies to use before answering 200

    def __call__(self, req: Request) -> Reply:
        if self.script:
            return self.script.pop(0)
        if self.delay:
            time.sleep(self.delay)
        key = req.header("Idempotency-Key") or ""
        self.by_key[key] = self.by_key.get(key, 0) + 1
        return json_reply({"ok": True})
