"""Sources: plugins with one interface, registered in one table that the built-ins use too.

A source is opened with its last committed position, then polled: ``next_batch()`` returns a
:class:`~rushhour.pipeline.processor.Batch`, or ``None`` when it has nothing right now (it never
blocks the loop for long). A finite source sets ``finished`` when it is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from rushhour.errors import ConfigError
from rushhour.pipeline.processor import Batch


class Source(Protocol):
    name: str
    finished: bool

    async def open(self, position: dict[str, Any] | None) -> None: ...

    async def next_batch(self) -> Batch | None: ...

    async def close(self) -> None: ...


Factory = Callable[..., Source]
REGISTRY: dict[str, Factory] = {}


def register(kind: str) -> Callable[[Factory], Factory]:
    """Class decorator: ``@register("inbox")``."""

    def wrap(factory: Factory) -> Factory:
        REGISTRY[kind] = factory
        return factory

    return wrap


def build(spec: Any, **context: Any) -> Source:
    """The source a ``[[source]]`` entry describes."""
    from rushhour.pipeline.sources import inbox, nats, queue, replay, stream  # noqa: F401  (register)

    factory = REGISTRY.get(spec.type)
    if factory is None:
        raise ConfigError(
            f"source type {spec.type!r} is not available",
            hint=f"use one of {', '.join(sorted(REGISTRY))}, or install the extra it needs",
        )
    return factory(spec, **context)
