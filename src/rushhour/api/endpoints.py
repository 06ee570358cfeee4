"""Model endpoints: how ``POST /models/{name}/invocations`` and ``GET /forecast/{id}`` reach a model.

Each stored model has a ``kind`` (the ``models`` table). An endpoint class per kind turns SageMaker-style
instances into predictions; other model families plug in with :func:`register_endpoint` (RCF registers
``rcf`` and answers ``{"scores": [...]}``; DeepAR registers ``deepar``). DeepAR and the Mean Predictor
answer SageMaker's DeepAR request: each instance has ``start`` and ``target`` (the recent history), and
the model forecasts the ``prediction_length`` steps that follow.

An endpoint's :meth:`ModelEndpoint.load` turns a stored artifact into the object its ``invoke`` and
``forecast`` use; :class:`LoadedModels` keeps the newest loaded versions, so a call reads and decodes the
artifact only the first time a model version is asked for.

Planners (``GET /plan/{id}``) plug in the same way with :func:`register_planner`.

>>> "mean_predictor" in ENDPOINTS
True
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from rushhour.api.errors import ApiError
from rushhour.errors import InputError
from rushhour.forecast.base import Forecast
from rushhour.forecast.mean_predictor import MeanPredictor
from rushhour.timeutil import utc

MAX_INSTANCES = 1000
MAX_PREDICTION_LENGTH = 10_080
#: the most sample-path values one request may make (instances x num_samples x steps)
MAX_SAMPLE_VALUES = 10_000_000
#: SageMaker DeepAR's default ``configuration.quantiles`` (its DEEPAR_INFERENCE_CONFIG default)
DEFAULT_QUANTILES = [f"0.{i}" for i in range(1, 10)]


@dataclass(frozen=True)
class Invocation:
    """A parsed invocation: instances and the request-wide ``configuration``."""

    instances: list[dict[str, Any]]
    configuration: dict[str, Any]


class ModelEndpoint:
    """Base of a model family's endpoint; a family overrides what it supports."""

    kind = ""
    #: the key of the response's list: ``scores`` (RCF) or ``predictions`` (forecasters)
    result_key = "predictions"

    def load(self, artifact: bytes, row: Mapping[str, Any]) -> Any:
        """The model object ``invoke`` and ``forecast`` get, from the stored artifact (cached)."""
        return artifact

    def invoke(self, model: Any, row: Mapping[str, Any], call: Invocation) -> list[dict[str, Any]]:
        raise ApiError(
            501, f"models of kind {self.kind!r} cannot be invoked", hint="GET /models lists kinds"
        )

    def forecast(
        self, model: Any, row: Mapping[str, Any], start: datetime, end: datetime
    ) -> Forecast:
        raise ApiError(
            501,
            f"models of kind {self.kind!r} do not forecast",
            hint="ask for a forecasting model with ?model=<kind>",
        )


class LoadedModels:
    """The newest ``size`` model versions loaded from one store, by (name, version).

    A version's artifact never changes (a retrained model is a new version), so a hit needs no read
    of the artifact; a miss reads it once (:meth:`Store.model_artifact`) and loads it with the
    family's :meth:`ModelEndpoint.load`. Thread-safe: routes call it from the thread pool.
    """

    def __init__(self, store: Any, size: int = 8) -> None:
        self.store = store
        self.size = size
        self._loaded: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._lock = threading.Lock()
        #: one lock per version being loaded: concurrent first calls load it once
        self._loading: dict[tuple[str, int], threading.Lock] = {}

    def get(self, row: Mapping[str, Any], endpoint: ModelEndpoint) -> Any:
        key = (str(row["name"]), int(row["version"]))
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._loaded:  # another call loaded it meanwhile
                    return self._loaded[key]
            try:
                model = endpoint.load(self.store.model_artifact(*key), row)
                with self._lock:
                    self._loaded[key] = model
                    while len(self._loaded) > self.size:
                        self._loaded.popitem(last=False)
            finally:
                with self._lock:
                    self._loading.pop(key, None)
        return model

    def __len__(self) -> int:
        return len(self._loaded)


ENDPOINTS: dict[str, ModelEndpoint] = {}


def register_endpoint(endpoint: ModelEndpoint) -> ModelEndpoint:
    """Make a model family invocable (``ENDPOINTS[endpoint.kind]``)."""
    ENDPOINTS[endpoint.kind] = endpoint
    return endpoint


def endpoint_for(kind: str) -> ModelEndpoint:
    found = ENDPOINTS.get(kind)
    if found is None:
        raise ApiError(
            501,
            f"no endpoint is installed for models of kind {kind!r}",
            hint=f"installed kinds: {', '.join(sorted(ENDPOINTS)) or 'none'}",
        )
    return found


class MeanPredictorEndpoint(ModelEndpoint):
    kind = "mean_predictor"
    result_key = "predictions"

    def load(self, artifact: bytes, row: Mapping[str, Any]) -> MeanPredictor:
        return MeanPredictor.restore(json.loads(artifact.decode()))

    def forecast(
        self, model: MeanPredictor, row: Mapping[str, Any], start: datetime, end: datetime
    ) -> Forecast:
        return model.predict(start, end)

    def invoke(
        self, mp: MeanPredictor, row: Mapping[str, Any], call: Invocation
    ) -> list[dict[str, Any]]:
        cfg = deepar_configuration(call.configuration)
        if "samples" in cfg["output_types"]:
            check_volume(len(call.instances), cfg["num_samples"], cfg["prediction_length"])
        step = pd.Timedelta(mp.freq)
        out = []
        for i, inst in enumerate(call.instances):
            start = parse_time(inst.get("start"), f"instances[{i}].start")
            target = inst.get("target", [])
            if not isinstance(target, list):
                raise InputError(
                    "target is not a list",
                    source="request",
                    field=f"instances[{i}].target",
                    expected="a list of numbers",
                )
            begin = pd.Timestamp(start) + step * len(target)
            index = pd.date_range(begin, periods=cfg["prediction_length"], freq=step)
            mean, dev = mp.expected(index)
            fc = Forecast.gaussian(index, mean, dev, tuple(float(q) for q in cfg["quantiles"]))
            out.append(format_prediction(fc, cfg))
        return out


def deepar_configuration(raw: dict[str, Any], trained_length: int | None = None) -> dict[str, Any]:
    """Validate DeepAR's ``configuration`` (num_samples, output_types, quantiles, prediction_length).

    ``trained_length`` is the fixed horizon of a trained DeepAR network; without one (the Mean
    Predictor) ``prediction_length`` may be chosen per request.

    >>> deepar_configuration({})["output_types"]
    ['mean', 'quantiles']
    >>> deepar_configuration({"prediction_length": 5}, trained_length=6)
    Traceback (most recent call last):
    rushhour.errors.InputError: request: field 'configuration.prediction_length': the model forecasts 6 steps, got 5 (expected 6, the prediction_length it was trained with; or leave it out)
    """
    cfg = {
        "num_samples": raw.get("num_samples", 100),
        "output_types": raw.get("output_types", ["mean", "quantiles"]),
        "quantiles": raw.get("quantiles", DEFAULT_QUANTILES),
        "prediction_length": raw.get("prediction_length", trained_length or 60),
    }
    if trained_length is not None and cfg["prediction_length"] != trained_length:
        raise InputError(
            f"the model forecasts {trained_length} steps, got {cfg['prediction_length']!r}",
            source="request",
            field="configuration.prediction_length",
            expected=f"{trained_length}, the prediction_length it was trained with; or leave it out",
        )
    for name, lo, hi in (("num_samples", 1, 1000), ("prediction_length", 1, MAX_PREDICTION_LENGTH)):
        v = cfg[name]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise InputError(
                f"{name} out of range, got {v!r}",
                source="request",
                field=f"configuration.{name}",
                expected=f"an integer in [{lo}, {hi}]",
            )
    allowed = {"mean", "quantiles", "samples"}
    types = cfg["output_types"]
    if not isinstance(types, list) or not types or not set(types) <= allowed:
        raise InputError(
            f"unknown output types {types!r}",
            source="request",
            field="configuration.output_types",
            expected=f"a non-empty list of {sorted(allowed)}",
        )
    qs = cfg["quantiles"]
    try:
        ok = isinstance(qs, list) and all(0 < float(q) < 1 for q in qs)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(
            f"quantiles not readable, got {qs!r}",
            source="request",
            field="configuration.quantiles",
            expected='a list of levels in (0, 1) such as ["0.1", "0.9"]',
        )
    cfg["quantiles"] = [str(q) for q in qs]
    return cfg


def check_volume(instances: int, samples: int, steps: int) -> None:
    """Refuse a request whose sample paths would not fit in memory (instances x samples x steps).

    >>> check_volume(1000, 1000, 60)
    Traceback (most recent call last):
    rushhour.errors.InputError: request: field 'configuration.num_samples': 1000 instances x 1000 samples x 60 steps is 60,000,000 values (expected at most 10,000,000: fewer instances per request, or fewer samples)
    """
    if instances * samples * steps > MAX_SAMPLE_VALUES:
        raise InputError(
            f"{instances} instances x {samples} samples x {steps} steps is "
            f"{instances * samples * steps:,} values",
            source="request",
            field="configuration.num_samples",
            expected=f"at most {MAX_SAMPLE_VALUES:,}: fewer instances per request, or fewer samples",
        )


def format_prediction(
    fc: Forecast, cfg: dict[str, Any], samples: np.ndarray | None = None
) -> dict[str, Any]:
    """One DeepAR-format prediction: ``mean``, ``quantiles`` and/or ``samples``. A model that samples
    passes its paths (``num_samples`` x steps); otherwise they are drawn from the normal band."""
    pred: dict[str, Any] = {}
    if "mean" in cfg["output_types"]:
        pred["mean"] = _floats(fc.mean)
    if "quantiles" in cfg["output_types"]:
        pred["quantiles"] = {q: _floats(fc.quantiles[float(q)]) for q in cfg["quantiles"]}
    if "samples" in cfg["output_types"]:
        if samples is None:
            rng = np.random.default_rng(0)
            std = np.nan_to_num(fc.std)
            draws = rng.normal(fc.mean, std, size=(cfg["num_samples"], len(fc.mean)))
            samples = np.maximum(draws, 0.0)
        pred["samples"] = [_floats(d) for d in samples]
    return pred


def _floats(a: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 4) for v in a]


def parse_time(value: Any, field: str) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` (UTC when naive, the seed's format) or ISO 8601 with a zone.

    >>> parse_time("2026-03-02 08:00:00", "start").isoformat()
    '2026-03-02T08:00:00+00:00'
    """
    if isinstance(value, str):
        try:
            return utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise InputError(
        f"time unreadable, got {value!r}",
        source="request",
        field=field,
        expected="'YYYY-MM-DD HH:MM:SS' (UTC) or ISO 8601 with a zone",
    )


class Planner(Protocol):
    """A capacity planner: ``GET /plan/{id}`` calls it with the series and the query parameters."""

    def __call__(self, context: Any, series: Any, params: dict[str, str]) -> dict[str, Any]: ...


PLANNERS: dict[str, Planner] = {}


def register_planner(name: str) -> Callable[[Planner], Planner]:
    def wrap(planner: Planner) -> Planner:
        PLANNERS[name] = planner
        return planner

    return wrap


register_endpoint(MeanPredictorEndpoint())
