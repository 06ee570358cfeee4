"""Assemble a live pipeline from settings: sources, processor, detector bank, retraining schedule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rushhour.errors import ConfigError
from rushhour.pipeline import sources as source_registry
from rushhour.pipeline.clock import Clock
from rushhour.pipeline.detectors import DetectorBank
from rushhour.pipeline.processor import Processor
from rushhour.pipeline.retrain import next_run, train
from rushhour.pipeline.runtime import Runtime
from rushhour.settings import Settings
from rushhour.store.db import Store
from rushhour.timeutil import bucket_seconds


def pipeline_width(settings: Settings) -> int:
    """The bucket width: the settings' own, which every source that names one must agree with."""
    width = settings.bucket_width()
    for i, spec in enumerate(settings.source):
        if spec.bucket is not None and bucket_seconds(spec.bucket) != width:
            raise ConfigError(
                f"source {i + 1} ({spec.source_name()}) has bucket {spec.bucket}, the pipeline {settings.bucket}",
                hint="give every source the same bucket as the top-level `bucket` setting",
            )
    return width


def build_runtime(
    settings: Settings,
    store: Store,
    clock: Clock,
    channels: Sequence[Any] = (),
    *,
    base: Path | None = None,
    extra_sources: Sequence[Any] = (),
    notifier: Any = None,
    **runtime_kw: Any,
) -> Runtime:
    width = pipeline_width(settings)
    bank = DetectorBank(settings)
    bank.swap(bank.load(store))
    if notifier is None and channels:
        # channels given directly (tests, embedding) hear alerts through a notifier like any other
        from rushhour.notify.notifier import Notifier

        notifier = Notifier.from_settings(settings, store)
        notifier.channels = list(channels)
    processor = Processor(settings, store, bank, clock, notifier=notifier)
    srcs = [
        source_registry.build(spec, base=base, clock=clock, width=width, settings=settings)
        for spec in settings.source
    ]
    srcs.extend(extra_sources)

    def retrain() -> Any:
        report = train(settings, store, datetime.fromtimestamp(clock.wall(), UTC))
        return report.models

    def schedule(now: datetime) -> datetime | None:
        return next_run(settings.pipeline.retrain_cron, now, settings.timezone)

    if notifier is not None and "delivery" not in runtime_kw:
        runtime_kw["delivery"] = notifier.worker(clock)
    return Runtime(
        processor,
        srcs,
        clock,
        queue_size=settings.pipeline.queue_size,
        retrain=retrain,
        next_retrain=schedule,
        **runtime_kw,
    )
