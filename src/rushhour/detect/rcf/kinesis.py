"""Kinesis Data Analytics' ``RANDOM_CUT_FOREST_WITH_EXPLANATION`` as a Python operator.

Every numeric column of the records is an input dimension (booleans, strings and the timestamp are
carried through untouched). Each record comes out with ``ANOMALY_SCORE`` and ``ANOMALY_EXPLANATION``,
a JSON string with, per input column, ``ATTRIBUTION_SCORE`` (high + low attribution, summed over the
shingle) and, with directionality, ``DIRECTION`` (the larger side) and ``STRENGTH`` (the attribution
on that side). Values are strings, as Kinesis emits them.

>>> import json
>>> rows = [{"ts": i, "rpm": float(i % 7), "errors": 1.0} for i in range(300)]
>>> rows.append({"ts": 300, "rpm": 50.0, "errors": 1.0})
>>> out = list(random_cut_forest_with_explanation(
...     rows, number_of_trees=20, sub_sample_size=64, with_directionality=True, seed=1,
...     exclude=("ts",)))
>>> last = out[-1]
>>> json.loads(last["ANOMALY_EXPLANATION"])["rpm"]["DIRECTION"], last["ANOMALY_SCORE"] > 2
('HIGH', True)
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from rushhour.detect.rcf.forest import RandomCutForest, RCFConfig
from rushhour.errors import InputError


def numeric_columns(record: Mapping[str, Any], exclude: Sequence[str] = ()) -> list[str]:
    """The columns Kinesis would feed to the forest: numeric values, not booleans, not excluded."""
    return [
        k
        for k, v in record.items()
        if k not in exclude and isinstance(v, numbers.Real) and not isinstance(v, bool)
    ]


def explanation(
    columns: Sequence[str], high: np.ndarray, low: np.ndarray, *, with_directionality: bool
) -> dict[str, dict[str, str]]:
    """The ANOMALY_EXPLANATION object of one record (before JSON encoding)."""
    out: dict[str, dict[str, str]] = {}
    for name, h, lo in zip(columns, high, low, strict=True):
        entry: dict[str, str] = {}
        if with_directionality:
            entry["DIRECTION"] = "HIGH" if h >= lo else "LOW"
            entry["STRENGTH"] = repr(float(max(h, lo)))
        entry["ATTRIBUTION_SCORE"] = repr(float(h + lo))
        out[name] = entry
    return out


def random_cut_forest_with_explanation(
    records: Iterable[Mapping[str, Any]],
    number_of_trees: int = 100,
    sub_sample_size: int = 256,
    time_decay: int = 100_000,
    shingle_size: int = 1,
    with_directionality: bool = False,
    *,
    seed: int | None = None,
    exclude: Sequence[str] = (),
    chunk: int = 1024,
    forest: RandomCutForest | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield each record plus ANOMALY_SCORE and ANOMALY_EXPLANATION, score-then-update per record.

    The input columns are fixed by the first record; a later record missing one of them, or with a
    non-numeric value there, is an :class:`InputError` naming the record and the column. Records are
    processed ``chunk`` at a time (the scores are the same as one by one).
    """
    model = forest or RandomCutForest(
        RCFConfig(
            number_of_trees=number_of_trees,
            sub_sample_size=sub_sample_size,
            time_decay=time_decay,
            shingle_size=shingle_size,
            seed=seed,
        )
    )
    columns: list[str] | None = None
    batch: list[Mapping[str, Any]] = []
    index = 0
    for record in records:
        if columns is None:
            columns = numeric_columns(record, exclude)
            if not columns:
                raise InputError(
                    "the first record has no numeric column",
                    line=1,
                    expected="at least one numeric column",
                )
        batch.append(record)
        if len(batch) >= chunk:
            yield from _emit(model, columns, batch, index, with_directionality)
            index += len(batch)
            batch = []
    if batch and columns is not None:
        yield from _emit(model, columns, batch, index, with_directionality)


def _emit(
    model: RandomCutForest,
    columns: list[str],
    batch: list[Mapping[str, Any]],
    first: int,
    with_directionality: bool,
) -> Iterator[dict[str, Any]]:
    X = np.empty((len(batch), len(columns)))
    for i, record in enumerate(batch):
        for j, name in enumerate(columns):
            value = record.get(name)
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise InputError(
                    f"record {first + i + 1} has {value!r} in column {name!r}",
                    line=first + i + 1,
                    field=name,
                    expected="a number",
                )
            X[i, j] = float(value)
    result = model.process(X, explain=True)
    assert result.high is not None and result.low is not None
    for i, record in enumerate(batch):
        out = dict(record)
        out["ANOMALY_SCORE"] = float(result.scores[i])
        out["ANOMALY_EXPLANATION"] = json.dumps(
            explanation(
                columns, result.high[i], result.low[i], with_directionality=with_directionality
            )
        )
        yield out
