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
from dataclasses import asdict, fields
from pathlib import Path
from typing import IO, Any

import numpy as np

from rushhour.detect.rcf.batch import BatchConfig, BatchRandomCutForest
from rushhour.detect.rcf.forest import ForestArrays, RandomCutForest, RCFConfig
from rushhour.detect.rcf.shingle import Shingler
from rushhour.errors import InputError

FORMAT = "rushhour-rcf"
# 2: the compact layout (threaded free lists, boxes cached for the heaviest nodes only, samplers
# holding leaf slots); version 1 files held every box and explicit free stacks
VERSION = 2

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
    if header.get("version") != VERSION:
        raise InputError(
            f"version {header.get('version')} is not supported",
            source=name,
            expected=f"version {VERSION}",
        )
    names = [f.name for f in fields(ForestArrays)]
    arrays = (
        ForestArrays.from_dict({k: content[f"forest.{k}"] for k in names})
        if f"forest.{names[0]}" in content
        else None
    )
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
