"""Bearer tokens for write endpoints.

The token is the ``api.token`` setting (``RUSHHOUR_API__TOKEN``) or, without one, generated at first
start: only its SHA-256 is kept (``<data_dir>/api-token.sha256``) and the token itself is shown once.
Tokens are compared as digests in constant time.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> guard, shown = TokenGuard.resolve(None, d)
>>> guard.check(shown), guard.check("wrong"), TokenGuard.resolve(None, d)[1] is None
(True, False, True)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from rushhour.api.errors import ApiError

TOKEN_FILE = "api-token.sha256"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenGuard:
    """Knows the digest of the one valid token."""

    sha256: str

    @classmethod
    def resolve(cls, configured: str | None, data_dir: Path) -> tuple[TokenGuard, str | None]:
        """The guard, and the new token when one was generated now (to be shown exactly once)."""
        if configured:
            return cls(digest(configured)), None
        path = data_dir / TOKEN_FILE
        if path.is_file():
            return cls(path.read_text().strip()), None
        token = secrets.token_urlsafe(32)
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(digest(token) + "\n")
        path.chmod(0o600)
        return cls(digest(token)), token

    def check(self, token: str) -> bool:
        return hmac.compare_digest(digest(token), self.sha256)


def require_token(request: Request) -> None:
    """FastAPI dependency of every write endpoint."""
    guard: TokenGuard = request.app.state.ctx.guard
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "this endpoint needs a bearer token",
            hint="send 'Authorization: Bearer <token>' (api.token, or the token printed at first start)",
        )
    if not guard.check(token.strip()):
        raise ApiError(
            403,
            "the bearer token is not valid",
            hint="use the configured api.token (RUSHHOUR_API__TOKEN) or the token printed at first start",
        )
