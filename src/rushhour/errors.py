"""Typed errors of the core.

Every expected failure is a :class:`RushhourError`. The core raises them with a message that names the
source and what was expected; the CLI and the API translate them once, at the edge, into a one-line
message with a next step (``hint``). Exit codes: 2 for usage and configuration errors, 1 for the rest.

>>> err = InputError("value is not a number", source="traffic.csv", line=7, field="value",
...                  expected="a number such as 1234")
>>> str(err)
"traffic.csv:7: field 'value': value is not a number (expected a number such as 1234)"
>>> err.exit_code
1
"""

from __future__ import annotations


class RushhourError(Exception):
    """Base of every error rushhour expects and explains."""

    exit_code = 1
    default_hint = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint


class UsageError(RushhourError):
    """The command line or a parameter was used wrongly."""

    exit_code = 2
    default_hint = "run the command with --help to see what it accepts"


class ConfigError(UsageError):
    """A setting (file, environment variable or flag) has an invalid value."""

    default_hint = "run `rushhour config` to see the effective settings and where they come from"


class InputError(RushhourError):
    """Input data was unreadable or malformed. Names the source, line and field where known."""

    default_hint = "fix the input and try again; the command's --help lists the formats it reads"

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.expected = expected
        super().__init__(self._compose(message), hint=hint)
        self.reason = message

    def _compose(self, message: str) -> str:
        where = ""
        if self.source is not None:
            where = self.source if self.line is None else f"{self.source}:{self.line}"
            where += ": "
        if self.field is not None:
            where += f"field {self.field!r}: "
        tail = f" (expected {self.expected})" if self.expected else ""
        return f"{where}{message}{tail}"


class NotFittedError(RushhourError):
    """A model was asked to predict or score before it was fitted."""

    default_hint = "fit the model first (`rushhour train`), or give it more history"


class StoreError(RushhourError):
    """The store could not be opened, migrated or written."""

    default_hint = "check [store] url in the config, and that the database is reachable"


class ServiceUnavailable(RushhourError):
    """An external service (database, broker, notification channel) could not be reached."""

    default_hint = "check that the service is running and its URL is right, then retry"


class DeliveryError(RushhourError):
    """A notification could not be delivered; it stays in the outbox and is retried."""
