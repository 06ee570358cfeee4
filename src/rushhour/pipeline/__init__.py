"""The pipeline: sources -> event-time buckets -> detectors -> thresholds -> anomalies -> store and alerts.

Time enters through an injected :class:`~rushhour.pipeline.clock.Clock`, so tests drive it.
"""
