"""Helpers shared by the pipeline tests: configs, inputs with known totals, a runtime driver."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from rushhour.pipeline.clock import SystemClock
from rushhour.pipeline.service import build_runtime
from rushhour.settings import load_settings
from rushhour.store import open_store
from rushhour.testing import ListChannel


def write_config(
    path: Path,
    store_url: str,
    sources: list[dict[str, Any]],
    detect: dict[str, Any] | None = None,
    **top: Any,
) -> Path:
    lines = [f'{k} = "{v}"' for k, v in top.items()]
    lines += ["[store]", f'url = "{store_url}"', "[pipeline]", 'retrain_cron = ""']
    if detect:
        lines.append("[detect]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in detect.items()]
    for src in sources:
        lines.append("[[source]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in src.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def points_file(
    path: Path,
    start: int,
    minutes: int,
    series: str = "api",
    per_minute: int = 3,
    spikes: tuple[int, ...] = (),
) -> float:
    """A JSON-lines points file; returns the total value it holds. Minutes in ``spikes`` hold 40x
    their usual values (anomalies for the detectors)."""
    total = 0.0
    with path.open("w") as fh:
        for m in range(minutes):
            for j in range(per_minute):
                value = (1 + (m * 7 + j) % 5) * (40 if m in spikes else 1)
                total += value
                fh.write(
                    json.dumps(
                        {
                            "series": series,
                            "labels": {"region": "eu"},
                            "time": start + m * 60 + j * 13,
                            "value": value,
                        }
                    )
                    + "\n"
                )
    return total


def drain(
    config: Path, base: Path, channel: ListChannel | None = None, duration: float = 60
) -> Any:
    settings = load_settings(config, environ={})
    store = open_store(settings.store_url())
    runtime = build_runtime(settings, store, SystemClock(), [channel] if channel else [], base=base)
    try:
        return asyncio.run(runtime.run(duration=duration, until_idle=True))
    finally:
        store.close()


def rushhour(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSHHOUR_")}
    return subprocess.run(
        [sys.executable, "-m", "rushhour", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spawn(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUSHHOUR_")}
    return subprocess.Popen(
        [sys.executable, "-m", "rushhour", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
