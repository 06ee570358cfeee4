"""Shared fixtures: stores on SQLite and PostgreSQL, service discovery, the CLI runner.

Services come from the environment (defaults are this project's machines):
``RUSHHOUR_TEST_PG_URL`` (postgresql+psycopg://postgres@127.0.0.1:5432/test) and
``RUSHHOUR_TEST_NATS_URL`` (nats://127.0.0.1:4222). Where a service is absent its tests skip with the
reason, except under ``RUSHHOUR_REQUIRE_SERVICES=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from rushhour.store import Store, open_store

PG_URL = os.environ.get("RUSHHOUR_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NATS_URL = os.environ.get("RUSHHOUR_TEST_NATS_URL", "nats://127.0.0.1:4222")
REQUIRE = os.environ.get("RUSHHOUR_REQUIRE_SERVICES") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("postgresql+psycopg", "postgresql"))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def need_service(name: str, ok: bool, how: str) -> None:
    """Skip (or fail, in CI) when a service is missing."""
    if ok:
        return
    message = f"{name} is not reachable ({how})"
    if REQUIRE:
        pytest.fail(f"{message}; RUSHHOUR_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    need_service(
        "PostgreSQL", _reachable(PG_URL, 5432), f"set RUSHHOUR_TEST_PG_URL; tried {PG_URL}"
    )
    return PG_URL


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"rushhour_test_{uuid.uuid4().hex[:12]}"
    admin = pg_server_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_server_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def nats_url() -> str:
    need_service(
        "NATS", _reachable(NATS_URL, 4222), f"set RUSHHOUR_TEST_NATS_URL; tried {NATS_URL}"
    )
    return NATS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on both databases."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rushhour.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test from an empty directory, with no RUSHHOUR_* variables leaking in."""
    monkeypatch.chdir(tmp_path)
    keep = ("RUSHHOUR_TEST_", "RUSHHOUR_REQUIRE_SERVICES")
    for key in list(os.environ):
        if key.startswith("RUSHHOUR_") and not key.startswith(keep):
            monkeypatch.delenv(key)
    return tmp_path
