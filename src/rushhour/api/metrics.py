"""Prometheus metrics of one API process (its own registry, so tests and apps do not collide).

Pipeline counters are read from the runtime's :class:`~rushhour.pipeline.runtime.Stats` at scrape
time; HTTP and ingest latencies are observed as they happen. Alert deliveries are counted by whoever
delivers (the alerts feature calls :meth:`ApiMetrics.delivery`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _PipelineCollector(Collector):
    def __init__(self) -> None:
        self.runtime: Any = None

    def collect(self) -> Iterator[Any]:
        rt = self.runtime
        if rt is None:
            return
        s = rt.stats
        for name, value, doc in (
            ("rushhour_records_in", s.points, "points accepted by the pipeline"),
            ("rushhour_batches", s.batches, "batches processed"),
            ("rushhour_buckets_closed", s.closed, "buckets closed and scored"),
            ("rushhour_anomalies", s.anomalies, "anomalous buckets stored"),
            (
                "rushhour_late_records",
                s.late_records,
                "records that arrived after their bucket closed",
            ),
            ("rushhour_duplicate_batches", s.duplicates, "redelivered batches skipped"),
            (
                "rushhour_recovered_messages",
                s.recovered,
                "messages a stopped run left uncommitted, read back at start ahead of newer ones",
            ),
            ("rushhour_retrains", s.retrains, "scheduled retrainings"),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        rejected = CounterMetricFamily(
            "rushhour_records_rejected", "records rejected, by reason", labels=["reason"]
        )
        for reason, n in s.rejected.items():
            rejected.add_metric([reason], n)
        yield rejected
        yield CounterMetricFamily(
            "rushhour_stage_process_seconds",
            "time spent in the processing stage (bucketize, score, commit)",
            value=s.process_seconds,
        )
        lat = np.asarray(s.close_latency[-1000:], dtype=float)
        lag = GaugeMetricFamily(
            "rushhour_lag_seconds",
            "close latency of the newest scored bucket: wall time after its end",
            value=float(lat[-1]) if len(lat) else 0.0,
        )
        yield lag
        yield SummaryMetricFamily(
            "rushhour_close_latency_seconds",
            "how long after its end each recent bucket was scored",
            count_value=len(lat),
            sum_value=float(lat.sum()) if len(lat) else 0.0,
        )
        yield GaugeMetricFamily(
            "rushhour_queue_depth", "batches waiting for processing", value=rt.queue.qsize()
        )


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._pipeline = _PipelineCollector()
        self.registry.register(self._pipeline)
        self.requests = Counter(
            "rushhour_http_requests",
            "HTTP requests, by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rushhour_stage_latency_seconds",
            "latency per stage: http (whole request), ingest_parse, ingest_commit",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.deliveries = Counter(
            "rushhour_alert_deliveries",
            "alert deliveries, by channel and result",
            ["channel", "result"],
            registry=self.registry,
        )

    def attach(self, runtime: Any) -> None:
        self._pipeline.runtime = runtime

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels("http").observe(seconds)

    def stage(self, stage: str, seconds: float) -> None:
        self.latency.labels(stage).observe(seconds)

    def delivery(self, channel: str, result: str) -> None:
        self.deliveries.labels(channel, result).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
