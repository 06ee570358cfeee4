"""Folders the inbox source watches: a local directory, or a prefix in an S3-compatible bucket.

Both offer the same four operations, so the inbox logic (process, then move to ``finished/``, or to
``failed/`` with a ``.error`` beside it) is written once. Names are listed oldest first.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Protocol

from rushhour.errors import ServiceUnavailable

IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload")


class Folder(Protocol):
    def prepare(self) -> None: ...

    def list(self) -> list[str]: ...

    def read(self, name: str) -> bytes | None: ...

    def move(self, name: str, area: str, new_name: str) -> str | None: ...

    def write(self, area: str, name: str, text: str) -> None: ...

    def local_path(self, name: str) -> Path | None: ...


def _wanted(name: str) -> bool:
    return bool(name) and not name.startswith(".") and not name.endswith(IGNORED_SUFFIXES)


class LocalFolder:
    """``inbox/`` with ``finished/`` and ``failed/`` beside it."""

    def __init__(self, inbox: Path) -> None:
        self.inbox = inbox
        self.areas = {"finished": inbox.parent / "finished", "failed": inbox.parent / "failed"}

    def prepare(self) -> None:
        for d in (self.inbox, *self.areas.values()):
            d.mkdir(parents=True, exist_ok=True)

    def list(self) -> list[str]:
        files = [p for p in self.inbox.iterdir() if p.is_file() and _wanted(p.name)]
        return [p.name for p in sorted(files, key=lambda p: (p.stat().st_mtime, p.name))]

    def read(self, name: str) -> bytes | None:
        try:
            return (self.inbox / name).read_bytes()
        except FileNotFoundError:
            return None

    def move(self, name: str, area: str, new_name: str) -> str | None:
        target = self.areas[area] / new_name
        try:
            shutil.move(str(self.inbox / name), target)
        except FileNotFoundError:
            return None
        return str(target)

    def write(self, area: str, name: str, text: str) -> None:
        (self.areas[area] / name).write_text(text)

    def local_path(self, name: str) -> Path | None:
        path = self.inbox / name
        return path if path.is_file() else None


class S3Folder:
    """Objects under ``prefix`` (e.g. ``inbox/``) of a bucket; ``finished/`` and ``failed/`` are sibling
    prefixes. Needs the ``s3`` extra (boto3); credentials come from the usual AWS environment."""

    def __init__(self, bucket: str, prefix: str, endpoint_url: str | None = None) -> None:
        try:
            import boto3
        except ImportError as exc:
            raise ServiceUnavailable(
                "the s3 source needs boto3", hint="install the extra: pip install 'rushhour[s3]'"
            ) from exc
        self.bucket = bucket
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        parent = self.prefix.rstrip("/").rpartition("/")[0]
        base = f"{parent}/" if parent else ""
        self.areas = {"finished": f"{base}finished/", "failed": f"{base}failed/"}
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def prepare(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable(f"cannot reach bucket {self.bucket!r}: {exc}") from exc

    def list(self) -> list[str]:
        objects: list[dict[str, Any]] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        ):
            objects.extend(page.get("Contents", []))
        names = [(o["LastModified"], o["Key"][len(self.prefix) :]) for o in objects]
        return [n for _, n in sorted(names) if "/" not in n and _wanted(n)]

    def read(self, name: str) -> bytes | None:
        try:
            return bytes(
                self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()
            )
        except self.client.exceptions.NoSuchKey:
            return None

    def move(self, name: str, area: str, new_name: str) -> str | None:
        key = self.areas[area] + new_name
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": self.prefix + name},
            )
        except self.client.exceptions.NoSuchKey:
            return None
        self.client.delete_object(Bucket=self.bucket, Key=self.prefix + name)
        return key

    def local_path(self, name: str) -> Path | None:
        return None

    def write(self, area: str, name: str, text: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.areas[area] + name, Body=text.encode())
