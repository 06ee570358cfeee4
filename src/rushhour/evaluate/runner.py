"""Runs detectors causally over a labelled corpus, scores them and writes NAB-format results.

The corpus has NAB's layout: ``DATA_DIR/<category>/<name>.csv`` with ``timestamp,value`` columns, and a
labels JSON ``{"<category>/<name>.csv": [[start, end], ...]}``. Each file is fed to a fresh detector in
time order, one stretch at a time, so no bucket is scored with later data. Results mirror the corpus:
``RESULTS_DIR/<category>/<name>.csv`` with ``timestamp,value,anomaly_score,alert,label``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rushhour.detect.default import DefaultDetector, DetectorConfig
from rushhour.errors import InputError
from rushhour.evaluate import nab
from rushhour.evaluate.events import EventMetrics, event_metrics, total


@dataclass
class Series:
    """One labelled series: timestamps (UTC), values and label windows as inclusive row ranges."""

    name: str
    index: pd.DatetimeIndex
    values: np.ndarray
    windows: list[tuple[Any, Any]]

    @property
    def rows(self) -> list[tuple[int, int]]:
        return nab.window_indices(self.index.asi8, [(a.value, b.value) for a, b in self.windows])


def load_labels(path: Path) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """Read a NAB-style windows file; timestamps without a zone are taken as UTC."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read labels: {exc}", source=str(path)) from exc
    if not isinstance(data, dict):
        raise InputError(
            "labels must be a JSON object",
            source=str(path),
            expected='{"<category>/<name>.csv": [["start", "end"], ...]}',
        )
    out: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for name, wins in data.items():
        try:
            out[name] = [(_ts(a), _ts(b)) for a, b in wins]
        except (ValueError, TypeError) as exc:
            raise InputError(
                f"bad window {wins!r}: {exc}",
                source=str(path),
                field=name,
                expected='[["2014-04-10 07:15:00", "2014-04-11 16:45:00"], ...]',
            ) from exc
    return out


def _ts(text: str) -> pd.Timestamp:
    t = pd.Timestamp(text)
    return t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")


def load_series(data_dir: Path, name: str, windows: list[tuple[Any, Any]]) -> Series:
    path = data_dir / name
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read series: {exc}", source=str(path)) from exc
    for col in ("timestamp", "value"):
        if col not in frame.columns:
            raise InputError(
                f"missing column {col!r}",
                source=str(path),
                line=1,
                field=col,
                expected="a header timestamp,value",
            )
    try:
        idx = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"], utc=True))
    except (ValueError, TypeError) as exc:
        raise InputError(f"bad timestamp: {exc}", source=str(path), field="timestamp") from exc
    # rows are fed in file order, as a stream delivers them: NAB's own files hold repeated
    # timestamps (daylight-saving artefacts) and one step back, and NAB scores them in that order
    values = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(np.isnan(values) & frame["value"].notna().to_numpy())
    if bad.size:
        raise InputError(
            "value is not a number",
            source=str(path),
            line=int(bad[0]) + 2,
            field="value",
            expected="a number such as 1234",
        )
    return Series(name, idx, values, windows)


@dataclass
class FileResult:
    name: str
    score: np.ndarray
    alert: np.ndarray
    series: Series
    seconds: float


@dataclass
class Evaluation:
    """Everything ``rushhour evaluate`` reports."""

    files: list[FileResult]
    optimized: dict[str, nab.ProfileScore]
    shipped: dict[str, nab.ProfileScore]
    events: dict[str, EventMetrics]
    seconds: float
    config: dict[str, Any] = field(default_factory=dict)
    #: labelled files that DATA_DIR does not hold (not scored)
    missing: list[str] = field(default_factory=list)

    @property
    def overall_events(self) -> EventMetrics:
        return total(self.events.values())

    def to_json(self) -> dict[str, Any]:
        per_file = []
        for f in self.files:
            ev = self.events[f.name]
            per_file.append(
                {
                    "file": f.name,
                    "windows": len(f.series.rows),
                    "rows": len(f.score),
                    "seconds": round(f.seconds, 3),
                }
                | {f"nab_{p}": round(s.per_file[f.name], 4) for p, s in self.optimized.items()}
                | {f"shipped_{p}": round(s.per_file[f.name], 4) for p, s in self.shipped.items()}
                | ev.to_json()
            )
        return {
            "nab_optimized": {
                p: {"score": round(s.normalized, 2), "threshold": s.threshold} | s.counts
                for p, s in self.optimized.items()
            },
            "nab_shipped": {
                p: {"score": round(s.normalized, 2)} | s.counts for p, s in self.shipped.items()
            },
            "events": self.overall_events.to_json(),
            "files": len(self.files),
            "windows": sum(len(f.series.rows) for f in self.files),
            "seconds": round(self.seconds, 2),
            "config": self.config,
            "missing": self.missing,
            "per_file": per_file,
        }


def locate(
    data_dir: Path, labels: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]
) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """The labels keyed by each file's path under ``data_dir``.

    A key names its file relative to ``data_dir`` (NAB's ``<category>/<name>.csv``). A key that names no
    file there is matched to the one CSV under ``data_dir`` whose path ends with it (``rushhour
    generate`` labels its file by its bare name, wherever the corpus puts it); a key that is not found
    stays as it is (reported missing). Two keys for one file, or a key that ends several paths, are
    ambiguous and rejected."""
    if all((data_dir / n).is_file() for n in labels):
        return labels
    files = sorted(p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*.csv"))
    out: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for key, windows in labels.items():
        name = key
        if not (data_dir / key).is_file():
            tail = "/" + key.strip("/")
            found = [f for f in files if ("/" + f).endswith(tail)]
            if len(found) > 1:
                raise InputError(
                    f"label key {key!r} matches {len(found)} files: {', '.join(found[:5])}",
                    source=str(data_dir),
                    expected="label keys that name one file each, relative to DATA_DIR",
                    hint="write the key as one of those paths in the labels JSON",
                )
            name = found[0] if found else key
        if name in out:
            raise InputError(
                f"two label keys name the file {name!r}",
                source=str(data_dir),
                expected="one key per file",
            )
        out[name] = windows
    return out


DetectorFactory = Callable[[], DefaultDetector]


def evaluate_corpus(
    data_dir: Path,
    labels: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]],
    factory: DetectorFactory | None = None,
    profiles: tuple[nab.Profile, ...] = nab.PROFILES,
    chunk: int = 0,
    on_file: Callable[[int, int, str], None] | None = None,
) -> Evaluation:
    """Run a fresh detector over each labelled file (in ``chunk``-sized stretches; 0 = whole file)."""
    make = factory or (lambda: DefaultDetector(DetectorConfig()))
    started = time.perf_counter()
    labels = locate(data_dir, labels)
    names = sorted(n for n in labels if (data_dir / n).is_file())
    missing = sorted(n for n in labels if not (data_dir / n).is_file())
    if not names:
        raise InputError(
            "no labelled series found",
            source=str(data_dir),
            expected="files <category>/<name>.csv named in the labels JSON",
        )
    results: list[FileResult] = []
    for k, name in enumerate(names):
        if on_file:
            on_file(k, len(names), name)
        s = load_series(data_dir, name, labels[name])
        t0 = time.perf_counter()
        det = make()
        step = chunk or len(s.values) or 1
        scores, alerts = [], []
        for lo in range(0, len(s.values), step):
            res = det.run(s.index[lo : lo + step], s.values[lo : lo + step])
            scores.append(res.score)
            alerts.append(res.alert)
        score = np.concatenate(scores) if scores else np.zeros(0)
        alert = np.concatenate(alerts) if alerts else np.zeros(0, dtype=bool)
        results.append(FileResult(name, score, alert, s, time.perf_counter() - t0))
    evaluation = score_results(results, profiles, time.perf_counter() - started)
    evaluation.missing = missing
    return evaluation


def score_results(
    results: list[FileResult], profiles: tuple[nab.Profile, ...], seconds: float
) -> Evaluation:
    ts = [r.series.index.asi8 for r in results]
    wins = [[(a.value, b.value) for a, b in r.series.windows] for r in results]
    raw_files = [
        nab.prepare_file(r.name, t, r.score, w) for r, t, w in zip(results, ts, wins, strict=True)
    ]
    fixed = [
        nab.prepare_file(r.name, t, r.alert.astype(float), w)
        for r, t, w in zip(results, ts, wins, strict=True)
    ]
    optimized = {p.name: nab.optimize(raw_files, p) for p in profiles}
    shipped = {p.name: nab.score_at(fixed, p, 0.5) for p in profiles}
    events = {
        r.name: event_metrics(r.alert, r.series.rows, nab.probationary_length(len(r.score)))
        for r in results
    }
    return Evaluation(results, optimized, shipped, events, seconds)


def write_results(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    """NAB-format CSVs mirroring the corpus, plus ``summary.json``."""
    written = []
    for f in evaluation.files:
        label = np.zeros(len(f.score), dtype=int)
        for lo, hi in f.series.rows:
            label[lo : hi + 1] = 1
        frame = pd.DataFrame(
            {
                "timestamp": f.series.index.tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S"),
                "value": f.series.values,
                "anomaly_score": np.round(f.score, 6),
                "alert": f.alert.astype(int),
                "label": label,
            }
        )
        path = out_dir / f.name
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        written.append(path)
    summary = out_dir / "summary.json"
    summary.write_text(json.dumps(evaluation.to_json(), indent=2) + "\n")
    written.append(summary)
    return written
