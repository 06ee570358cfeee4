"""The store: series, buckets, scores, anomalies, cut-offs, models and checkpoints.

SQLAlchemy 2 Core over SQLite (WAL, the default) or PostgreSQL, chosen by URL alone. The schema is
owned by Alembic migrations, applied when a store is opened. Times are stored as whole epoch seconds
(UTC), which both databases index and compare cheaply.
"""

from rushhour.store.db import Store, open_store

__all__ = ["Store", "open_store"]
