"""The store contract, run on SQLite and on PostgreSQL."""

import pytest
from sqlalchemy import inspect

from rushhour.errors import StoreError
from rushhour.store import Store, open_store
from rushhour.store.db import AnomalyRecord, series_key


def test_migrations_create_every_table(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "series",
        "buckets",
        "scores",
        "anomalies",
        "cutoffs",
        "models",
        "checkpoints",
    } <= tables
    store.migrate()  # idempotent


def test_series_created_once_and_summarised(store: Store) -> None:
    with store.begin() as tx:
        a = store.ensure_series(tx, "requests", {"region": "eu", "status": "ok"}, 60)
        again = store.ensure_series(tx, "requests", {"status": "ok", "region": "eu"}, 60)
        b = store.ensure_series(tx, "requests", {"region": "us", "status": "ok"}, 60)
        store.write_buckets(tx, a.id, [0, 60, 120], [1.0, 2.0, 3.0])
    assert a.id == again.id != b.id
    summary = {row["key"]: row for row in store.series_summary()}
    row = summary["requests{region=eu,status=ok}"]
    assert (row["first"], row["last"], row["buckets"], row["total"]) == (0, 120, 3, 6.0)
    assert row["labels"] == {"region": "eu", "status": "ok"}
    assert summary["requests{region=us,status=ok}"]["buckets"] == 0


def test_bucket_upsert_overwrites_not_duplicates(store: Store) -> None:
    with store.begin() as tx:
        s = store.ensure_series(tx, "x", {}, 60)
        store.write_buckets(tx, s.id, [0, 60], [1.0, 2.0])
    with store.begin() as tx:
        store.write_buckets(tx, s.id, [60, 120], [5.0, 7.0])
    got = store.read_buckets(s.id)
    assert got.tolist() == [1.0, 5.0, 7.0]
    assert str(got.index.tz) == "UTC"
    assert store.read_buckets(s.id, start=60, end=120).tolist() == [5.0]


def test_failed_transaction_writes_nothing(store: Store) -> None:
    with store.begin() as tx:
        s = store.ensure_series(tx, "y", {}, 60)
    with pytest.raises(RuntimeError), store.begin() as tx:
        store.write_buckets(tx, s.id, [0], [1.0])
        store.set_checkpoint(tx, "src", {"offset": 1})
        raise RuntimeError("crash before commit")
    assert store.read_buckets(s.id).empty
    assert store.checkpoint("src") is None


def test_anomaly_recorded_once(store: Store) -> None:
    with store.begin() as tx:
        s = store.ensure_series(tx, "z", {}, 60)
        rec = AnomalyRecord(
            s.id, 600, "mean_band", 10.0, 100.0, 5.0, -18.0, 18.0, "drop", "critical", 1
        )
        assert store.add_anomalies(tx, [rec]) == 1
        assert store.add_anomalies(tx, [rec, rec]) == 0
    assert store.count_anomalies() == 1
    assert store.anomalies()[0]["direction"] == "drop"


def test_checkpoints_and_model_versions(store: Store) -> None:
    with store.begin() as tx:
        store.set_checkpoint(tx, "demo", {"next": 60})
        store.set_checkpoint(tx, "demo", {"next": 120})
    assert store.checkpoint("demo") == {"next": 120}
    assert store.save_model("m", "mean_predictor", b"one") == 1
    assert store.save_model("m", "mean_predictor", b"two", params={"k": 3}) == 2
    assert bytes(store.load_model("m")["artifact"]) == b"two"  # type: ignore[index]
    assert bytes(store.load_model("m", version=1)["artifact"]) == b"one"  # type: ignore[index]
    assert [m["version"] for m in store.list_models()] == [1, 2]


def test_series_key_is_canonical() -> None:
    assert (
        series_key("r", {"b": "2", "a": "1"})
        == series_key("r", {"a": "1", "b": "2"})
        == "r{a=1,b=2}"
    )


def test_unreachable_store_is_a_clear_error() -> None:
    with pytest.raises(
        StoreError, match=r"cannot open store postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/x"
    ):
        open_store("postgresql+psycopg://u:pw@127.0.0.1:1/x?connect_timeout=2")
    with pytest.raises(StoreError, match="cannot open store"):
        open_store("nosuchdb://x")
