"""The HTTP API and dashboard (``rushhour serve``, or inside ``rushhour run`` with ``api.enabled``)."""

from rushhour.api.app import ApiContext, create_app

__all__ = ["ApiContext", "create_app"]
