"""Save and load forests: a versioned ``.npz`` of plain arrays plus a JSON header, never a pickle.

The header names the format and version, the kind of forest and its parameters; the arrays are the
forest's own (point store, nodes, samplers, random states), so a loaded forest continues with exactly
the scores the saved one would have produced. Files are compressed; loading refuses object arrays.

>>> import io, numpy as np
>>> from rushhour.detect.rcf.forest import RandomCutForest, RCFConfig
>>> f = RandomCutForest(RCFConfig(number_of_trees=5, sub_sample_size=16, seed=3))
>>> f.update(np.arange(40.0))
>>> buf = io.BytesIO(); save(f, buf); _ = buf.seek(0)
>>> g = load(buf)
>>> f.process([7.5]).scores.tolist() == g.process([7.5]).scores.tolist()
True
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

import numpy as np

from rushhour.detect.rcf import kernels
from rushhour.detect.rcf.batch import BatchConfig, BatchRandomCutForest
from rushhour.detect.rcf.forest import (
    ForestArrays,
    RandomCutForest,
    RCFConfig,
    cut_shape,
    cut_type,
    index_type,
    mass_type,
    store_bound,
)
from rushhour.detect.rcf.layout import META_END, META_SEQ, META_SHINGLE
from rushhour.detect.rcf.shingle import Shingler
from rushhour.errors import InputError

FORMAT = "rushhour-rcf"
# 4: leaf masses stored minus one (a byte up to 256 samples), cut dimensions two bits each up to four
# dimensions; version 3 files held masses as int16 counts and a byte per cut (converted on load)
# 3: the point store holds records, a point is ``shingle`` consecutive ones (shared by overlapping
# shingles); version 2 files stored every point whole (they are converted on load)
# 2: the compact layout (threaded free lists, boxes cached for the heaviest nodes only, samplers
# holding leaf slots); version 1 files held every box and explicit free stacks
VERSION = 4

Forest = RandomCutForest | BatchRandomCutForest


def save(forest: Forest, target: str | Path | IO[bytes]) -> None:
    """Write ``forest`` to a path or binary file object."""
    if forest.arrays_ is None:
        arrays: dict[str, np.ndarray] = {}
    else:
        arrays = {f"forest.{k}": v for k, v in forest.arrays_.as_dict().items()}
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    if isinstance(forest, RandomCutForest):
        header |= {
            "kind": "streaming",
            "config": asdict(forest.config),
            "dimensions": forest.dimensions,
            "records": forest.records_,
            "seed": forest.seed_,
        }
        if forest.shingler_ is not None:
            arrays["shingle.buffer"] = forest.shingler_.buffer_
            header["shingle_seen"] = forest.shingler_.seen_
    else:
        header |= {
            "kind": "batch",
            "config": asdict(forest.config),
            "training_mean": forest.training_mean_,
            "training_std": forest.training_std_,
            "seed": forest.seed_,
        }
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    np.savez_compressed(target, **arrays)  # type: ignore[arg-type]


def load(source: str | Path | IO[bytes]) -> Forest:
    """Read a forest written by :func:`save`."""
    name = str(source) if isinstance(source, str | Path) else "<stream>"
    try:
        with np.load(source, allow_pickle=False) as data:
            content = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"not a forest file: {exc}", source=name) from exc
    if "header" not in content:
        raise InputError("no header in the file", source=name, expected=f"a {FORMAT} file")
    header = json.loads(content.pop("header").tobytes().decode())
    if header.get("format") != FORMAT:
        raise InputError(f"format is {header.get('format')!r}", source=name, expected=FORMAT)
    if header.get("version") == 1:
        raise InputError(
            "version 1 (saved before the compact forest layout) cannot be read",
            source=name,
            expected=f"version {VERSION}",
            hint="refit the forest: `rushhour train` for the pipeline's models, or rerun the stream",
        )
    if header.get("version") not in (2, 3, VERSION):
        raise InputError(
            f"version {header.get('version')} is not supported",
            source=name,
            expected=f"version {VERSION}",
        )
    stored = {k.removeprefix("forest."): v for k, v in content.items() if k.startswith("forest.")}
    if header["version"] == 2 and stored:
        stored = _from_v2(stored, header, content.get("shingle.buffer"))
    if header["version"] in (2, 3) and stored:
        stored = _from_v3(stored)
    arrays = ForestArrays.from_dict(stored) if stored else None
    if header["kind"] == "streaming":
        config = RCFConfig(**header["config"])
        forest = RandomCutForest(config)
        forest.seed_ = int(header["seed"])
        forest.dimensions = header["dimensions"]
        forest.arrays_ = arrays
        forest.records_ = int(header["records"])
        if forest.dimensions is not None:
            forest.shingler_ = Shingler(
                forest.dimensions,
                config.shingle_size,
                content["shingle.buffer"].astype(np.float32),
                int(header["shingle_seen"]),
            )
        return forest
    if header["kind"] == "batch":
        batch = BatchRandomCutForest(BatchConfig(**header["config"]))
        batch.seed_ = int(header["seed"])
        batch.arrays_ = arrays
        batch.training_mean_ = header["training_mean"]
        batch.training_std_ = header["training_std"]
        return batch
    raise InputError(f"unknown forest kind {header['kind']!r}", source=name)


def _from_v2(
    old: dict[str, np.ndarray], header: dict[str, Any], tail: Any
) -> dict[str, np.ndarray]:
    """A version 2 forest's arrays in the version 3 layout: each stored point becomes ``shingle``
    records of its own (the store is compacted as the forest goes on), the leaves' references
    follow, then the shingle's last records, which the next point starts with."""
    streaming = header["kind"] == "streaming"
    k = int(header["config"]["shingle_size"]) if streaming else 1
    pts, pref, meta = old["pts"], old["pref"], old["meta"]
    F, S = old["sw"].shape
    C = pts.shape[1] // k
    live = np.flatnonzero(pref > 0)
    vals = pts[live].reshape(len(live) * k, C)
    if streaming and k > 1 and meta[META_SEQ] > 0:
        vals = np.concatenate([vals, np.asarray(tail, dtype=np.float32).reshape(k - 1, C)])
    where = np.zeros(len(pref), dtype=np.int64)
    where[live] = np.arange(len(live)) * k
    lpt = old["lpt"].astype(np.int64)
    for t in range(F):
        used = np.unique(old["spt"][t, : old["sn"][t]])
        lpt[t, used] = where[lpt[t, used]]
    bound = store_bound(F, S, k)
    new = dict(old, vals=vals, lpt=lpt.astype(index_type(bound)))
    # v2 meta: free slots, sequence, weight base, free head, heavy; v3: records, ..., shingle, ...
    new["meta"] = meta.copy()
    new["meta"][META_END] = len(vals)
    new["meta"][META_SHINGLE] = k
    del new["pts"], new["pref"]
    return new


def _from_v3(old: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A version 3 forest's arrays in the version 4 layout: leaf masses minus one (free leaf slots
    held 0 or a stale count; they are rewritten when taken), cut dimensions packed when the points
    have few dimensions."""
    F, M = old["left"].shape
    S = old["lpt"].shape[1]
    dims = old["vals"].shape[1] * int(old["meta"][META_SHINGLE])
    masses = np.maximum(old["lmass"].astype(np.int64) - 1, 0)
    cdim = np.zeros(cut_shape(F, M, dims), dtype=cut_type(dims))
    kernels.pack_cut_dims(old["cdim"].astype(np.int64), cdim)
    return dict(old, lmass=masses.astype(mass_type(S)), cdim=cdim)
