"""Notifications: channels that deliver anomaly events to people and machines."""
