"""Measuring detection quality: NAB scoring, event-level metrics and the causal evaluation runner."""
