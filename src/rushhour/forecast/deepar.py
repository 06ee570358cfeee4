"""DeepAR (GluonTS, on torch, CPU): a probabilistic RNN trained across series.

Inputs are the target, two dynamic features (the holiday and the weekend flag of the local calendar)
and categorical series ids (``cat``), either from a DeepAR JSON-lines export
(:meth:`DeepAR.fit_records`) or from one series (:meth:`DeepAR.fit`, series id 0). Forecasts are
sample paths, summarised as mean, standard deviation and quantiles. Training shows a rich progress
bar when ``progress`` is on. :meth:`save` and :meth:`load` keep the network (GluonTS's own
serialisation) and the parameters (JSON) in one folder; :meth:`to_bytes` packs that folder into one
archive, the artifact the store keeps for a deployed model. :meth:`sample_paths` answers SageMaker's
DeepAR inference: sample paths after each given series.

GluonTS, lightning and torch are the optional extra ``deepar``; they are imported on first use only,
so the rest of rushhour runs without them.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rushhour.errors import InputError, NotFittedError, UsageError
from rushhour.forecast.adaptive import QUANTILES
from rushhour.forecast.base import Forecast, check_history, step_index
from rushhour.forecast.calendar import holiday_mask, infer_step, regular
from rushhour.forecast.deepar_format import DeepARRecord
from rushhour.timeutil import parse_duration, zone

SNAPSHOT_VERSION = 1


def calendar_features(
    index: pd.DatetimeIndex, tz: str, country: str | None, subdiv: str | None
) -> np.ndarray:
    """Rows ``[holiday, weekend]`` (0/1) for each timestamp, in the local calendar."""
    hol = holiday_mask(index, tz, country, subdiv).astype(float)
    weekend = np.asarray(index.tz_convert(zone(tz)).dayofweek >= 5, dtype=float)
    return np.vstack([hol, weekend])


def freq_string(step: pd.Timedelta) -> str:
    """A pandas frequency GluonTS understands: ``30min``, ``1h``, ``90s``."""
    seconds = int(step.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}min"
    return f"{seconds}s"


@contextmanager
def _sampling_steps(predictor: Any, steps: int) -> Iterator[None]:
    """Sample paths only ``steps`` ahead (a 3-hour forecast need not unroll a week of samples).

    The network is the same; GluonTS's DeepAR unrolls ``model.prediction_length`` steps, which is
    lowered for the call and restored afterwards. Without that attribute, it samples the full length.
    """
    net = getattr(getattr(predictor, "prediction_net", None), "model", None)
    full = getattr(net, "prediction_length", None)
    if net is None or full is None or steps >= full:
        yield
        return
    net.prediction_length = steps
    try:
        yield
    finally:
        net.prediction_length = full


@dataclass
class DeepAR:
    """Parameters: ``prediction_length`` and ``context_length`` (durations), ``epochs``,
    ``num_batches_per_epoch``, ``hidden_size``, ``num_layers``, ``batch_size``, ``num_samples`` (sample
    paths per forecast), ``lr``, ``seed``, ``progress`` (rich progress bar while training), and the
    calendar of the features. ``max_context_weeks`` bounds the history given to each forecast."""

    prediction_length: str = "1w"
    context_length: str = "1d"
    epochs: int = 15
    num_batches_per_epoch: int = 50
    hidden_size: int = 40
    num_layers: int = 2
    batch_size: int = 32
    num_samples: int = 100
    lr: float = 1e-3
    seed: int = 0
    progress: bool = False
    max_context_weeks: int = 5
    timezone: str = "UTC"
    holidays_country: str | None = "US"
    holidays_subdiv: str | None = None
    quantiles: tuple[float, ...] = QUANTILES
    step_: pd.Timedelta | None = field(default=None, repr=False)
    predictor_: Any = field(default=None, repr=False)
    context_: pd.Series | None = field(default=None, repr=False)
    cat_: list[int] = field(default_factory=list, repr=False)
    cardinality_: list[int] = field(default_factory=list, repr=False)
    n_feat_: int = field(default=2, repr=False)

    def _validate(self) -> None:
        for name in ("epochs", "num_batches_per_epoch", "hidden_size", "num_layers", "batch_size"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_samples < 2:
            raise UsageError(f"num_samples must be >= 2, got {self.num_samples}")

    def _steps(self, span: str) -> int:
        assert self.step_ is not None
        return max(int(pd.Timedelta(parse_duration(span)) / self.step_), 1)

    # -- training -------------------------------------------------------------------------------
    def fit(self, history: pd.Series) -> DeepAR:
        """Train on one series (series id 0), with calendar features."""
        values = check_history(history, min_points=2).dropna()
        step = infer_step(values.index)
        y = regular(values, step)
        record = DeepARRecord(
            start=y.index[0],
            target=y.to_numpy(dtype=float),
            cat=[0],
            dynamic_feat=self._features(y.index),
        )
        self.fit_records([record], step)
        self.context_, self.cat_ = y, [0]
        return self

    def fit_records(self, records: list[DeepARRecord], step: pd.Timedelta | str) -> DeepAR:
        """Train on the series of a DeepAR export (all at the same ``step``)."""
        self._validate()
        self.step_ = pd.Timedelta(parse_duration(step)) if isinstance(step, str) else step
        n_feat = {r.dynamic_feat.shape[0] for r in records}
        if len(n_feat) > 1:
            raise InputError(
                f"records disagree on the number of dynamic features: {sorted(n_feat)}"
            )
        n_cat = {len(r.cat) for r in records}
        if len(n_cat) > 1:
            raise InputError(f"records disagree on the number of categories: {sorted(n_cat)}")
        self.n_feat_ = next(iter(n_feat))
        self.cardinality_ = [max(r.cat[i] for r in records) + 1 for i in range(next(iter(n_cat)))]
        import lightning.pytorch as pl

        pl.seed_everything(self.seed, verbose=False)
        with tempfile.TemporaryDirectory(prefix="rushhour-deepar-") as workdir:
            self._train(records, workdir)
        last = records[-1]
        index = pd.date_range(last.start, periods=len(last.target), freq=self.step_)
        self.context_ = pd.Series(last.target, index=index)
        self.cat_ = list(last.cat)
        return self

    def _train(self, records: list[DeepARRecord], workdir: str) -> None:
        """Lightning writes checkpoints under ``workdir``, a folder that is removed afterwards."""
        from gluonts.torch.model.deepar import DeepAREstimator

        assert self.step_ is not None
        callbacks: list[Any] = []
        if self.progress:
            from lightning.pytorch.callbacks import RichProgressBar

            callbacks.append(RichProgressBar())
        estimator = DeepAREstimator(
            freq=freq_string(self.step_),
            prediction_length=self._steps(self.prediction_length),
            context_length=self._steps(self.context_length),
            num_layers=self.num_layers,
            hidden_size=self.hidden_size,
            lr=self.lr,
            num_feat_dynamic_real=self.n_feat_,
            num_feat_static_cat=len(self.cardinality_),
            cardinality=self.cardinality_ or None,
            batch_size=self.batch_size,
            num_batches_per_epoch=self.num_batches_per_epoch,
            num_parallel_samples=self.num_samples,
            nonnegative_pred_samples=True,
            trainer_kwargs={
                "max_epochs": self.epochs,
                "accelerator": "cpu",
                "enable_progress_bar": self.progress,
                "enable_model_summary": False,
                "logger": False,
                "callbacks": callbacks,
                "default_root_dir": workdir,
            },
        )
        dataset = [self._entry(r, len(r.target)) for r in records]
        self.predictor_ = estimator.train(dataset, cache_data=True)

    def _features(self, index: pd.DatetimeIndex) -> np.ndarray:
        return calendar_features(index, self.timezone, self.holidays_country, self.holidays_subdiv)

    def _entry(
        self, record: DeepARRecord, length: int, feats: np.ndarray | None = None
    ) -> dict[str, Any]:
        assert self.step_ is not None
        entry: dict[str, Any] = {
            "start": pd.Period(record.start.tz_convert(None), freq=freq_string(self.step_)),
            "target": record.target[-length:] if length < len(record.target) else record.target,
        }
        dyn = record.dynamic_feat if feats is None else feats
        if dyn.shape[0]:
            entry["feat_dynamic_real"] = dyn
        if self.cardinality_:
            entry["feat_static_cat"] = np.asarray(record.cat, dtype=int)
        return entry

    def update(self, history: pd.Series) -> DeepAR:
        """New context for the next forecast, without retraining."""
        if self.predictor_ is None or self.step_ is None:
            return self.fit(history)
        values = check_history(history, min_points=2).dropna()
        self.context_ = regular(values, self.step_)
        return self

    # -- forecasting ----------------------------------------------------------------------------
    def predict(self, start: datetime, end: datetime) -> Forecast:
        """Forecast ``[start, end)`` from the context (the history the model saw last)."""
        if self.predictor_ is None or self.step_ is None or self.context_ is None:
            raise NotFittedError("the DeepAR model is not fitted")
        index = step_index(start, end, self.step_)
        ctx = self.context_.iloc[-self.max_context_weeks * int(pd.Timedelta("7D") / self.step_) :]
        horizon = self._steps(self.prediction_length)
        future = pd.date_range(ctx.index[-1] + self.step_, periods=horizon, freq=self.step_)
        if len(index) and index[-1] > future[-1]:
            raise UsageError(
                f"DeepAR was trained for {self.prediction_length} ahead of its history; "
                f"{index[-1]} is further",
                hint="train with a longer prediction_length",
            )
        full = ctx.index.append(future)
        record = DeepARRecord(
            start=ctx.index[0],
            target=ctx.to_numpy(dtype=float),
            cat=self.cat_,
            dynamic_feat=np.zeros((0, 0)),
        )
        n_feat = self.n_feat_
        feats = self._features(full)[:n_feat] if n_feat else np.zeros((0, len(full)))
        entry = self._entry(record, len(ctx), feats)
        pos = np.asarray((index - future[0]) / self.step_, dtype=np.int64)
        pos = np.clip(pos, 0, horizon - 1)
        with _sampling_steps(self.predictor_, int(pos.max()) + 1 if len(pos) else horizon):
            fc = next(iter(self.predictor_.predict([entry])))
        samples = np.asarray(fc.samples, dtype=float)
        s = samples[:, pos]
        qs = {q: np.quantile(s, q, axis=0) for q in self.quantiles}
        return Forecast(index=index, mean=s.mean(axis=0), std=s.std(axis=0), quantiles=qs)

    @property
    def horizon_steps(self) -> int:
        """The number of steps forecast after a target (the trained ``prediction_length``)."""
        if self.step_ is None:
            raise NotFittedError("the DeepAR model is not fitted")
        return self._steps(self.prediction_length)

    def sample_paths(self, records: list[DeepARRecord], num_samples: int) -> list[np.ndarray]:
        """SageMaker's DeepAR inference: for each record (``cat`` as trained, ``dynamic_feat`` covering its
        target and the :attr:`horizon_steps` after it), ``num_samples`` sample paths of those steps."""
        if self.predictor_ is None or self.step_ is None:
            raise NotFittedError("the DeepAR model is not fitted")
        entries = [self._entry(r, len(r.target)) for r in records]
        forecasts = self.predictor_.predict(entries, num_samples=num_samples)
        return [np.asarray(fc.samples, dtype=float)[:num_samples] for fc in forecasts]

    # -- persistence ----------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        """Write the network and ``rushhour-deepar.json`` (parameters, context) into ``directory``."""
        if self.predictor_ is None or self.step_ is None or self.context_ is None:
            raise NotFittedError("the DeepAR model is not fitted; nothing to save")
        directory.mkdir(parents=True, exist_ok=True)
        self.predictor_.serialize(directory)
        meta = {
            "kind": "deepar",
            "version": SNAPSHOT_VERSION,
            "params": {
                k: getattr(self, k)
                for k in (
                    "prediction_length",
                    "context_length",
                    "epochs",
                    "num_batches_per_epoch",
                    "hidden_size",
                    "num_layers",
                    "batch_size",
                    "num_samples",
                    "lr",
                    "seed",
                    "max_context_weeks",
                    "timezone",
                    "holidays_country",
                    "holidays_subdiv",
                )
            }
            | {"quantiles": list(self.quantiles)},
            "step_seconds": self.step_.total_seconds(),
            "cat": self.cat_,
            "cardinality": self.cardinality_,
            "n_feat": self.n_feat_,
            "context_start": self.context_.index[0].isoformat(),
            "context": [None if np.isnan(v) else float(v) for v in self.context_.to_numpy()],
        }
        (directory / "rushhour-deepar.json").write_text(json.dumps(meta))
        return directory

    def to_bytes(self) -> bytes:
        """The folder :meth:`save` writes, as one gzip'd tar archive."""
        buf = io.BytesIO()
        with tempfile.TemporaryDirectory(prefix="rushhour-deepar-") as tmp:
            folder = self.save(Path(tmp) / "model")
            with tarfile.open(fileobj=buf, mode="w:gz") as tar:
                for path in sorted(folder.iterdir()):
                    tar.add(path, arcname=path.name)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DeepAR:
        """Rebuild a model packed by :meth:`to_bytes`."""
        with tempfile.TemporaryDirectory(prefix="rushhour-deepar-") as tmp:
            try:
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise InputError(f"not a packed DeepAR model: {exc}", source="artifact") from exc
            return cls.load(Path(tmp))

    @classmethod
    def load(cls, directory: Path) -> DeepAR:
        """Rebuild a trained model saved by :meth:`save`."""
        meta_path = directory / "rushhour-deepar.json"
        if not meta_path.exists():
            raise InputError(
                "not a saved DeepAR model (no rushhour-deepar.json)", source=str(directory)
            )
        meta = json.loads(meta_path.read_text())
        if meta.get("kind") != "deepar" or meta.get("version") != SNAPSHOT_VERSION:
            raise UsageError(f"not a version-{SNAPSHOT_VERSION} DeepAR model", hint="retrain it")
        from gluonts.model.predictor import Predictor

        params = dict(meta["params"])
        params["quantiles"] = tuple(params["quantiles"])
        model = cls(**params)
        model.step_ = pd.Timedelta(seconds=meta["step_seconds"])
        model.predictor_ = Predictor.deserialize(directory)
        model.cat_, model.cardinality_ = list(meta["cat"]), list(meta["cardinality"])
        model.n_feat_ = int(meta["n_feat"])
        context = np.array([np.nan if v is None else v for v in meta["context"]], dtype=float)
        index = pd.date_range(
            pd.Timestamp(meta["context_start"]), periods=len(context), freq=model.step_
        )
        model.context_ = pd.Series(context, index=index)
        return model
