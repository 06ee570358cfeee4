"""Stream the ``Datapoints`` lists of a metrics dump (Python repr or JSON) without holding it whole.

A light scanner walks the text chunk by chunk and follows only strings and brackets. Each element of
a list under a ``Datapoints`` key is read on its own as soon as it is complete (by a pattern for the
usual datapoint shape, else :func:`json.loads`, else the safe literal parser), handed to
``on_point`` and dropped. Everything else (series names, labels, metadata: the skeleton) is kept as
text, each Datapoints list replaced by a marker string plus the newlines it held, so that line
numbers stay right; :meth:`DumpScanner.skeleton` reads it at the end with the same parsers. Code
anywhere in the file is therefore still rejected, and nothing is ever executed. Memory is one chunk,
one element and the skeleton, not the text or a syntax tree of it (a year of 4-6 minute datapoints
in three series is 36 MB of repr text; parsed whole it took 5.5 GB).

>>> seen = []
>>> sc = DumpScanner(lambda k, p: seen.append((k, p)), tz=UTC, source="d")
>>> for part in ["{'a': {'Label': 'x', 'Datapoi", "nts': [{'Timestamp': 60, 'Sum': 2.0},", " {'Timestamp': 120, 'Sum': 1.0}]}}"]:
...     sc.feed(part)
>>> sc.finish(); seen
[(0, {'Timestamp': 60, 'Sum': 2.0}), (0, {'Timestamp': 120, 'Sum': 1.0})]
>>> sc.skeleton()
{'a': {'Label': 'x', 'Datapoints': '__rushhour_datapoints_0__'}}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from rushhour.errors import InputError

MARK = "__rushhour_datapoints_{}__"
_TOKEN = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|[\[\]{}(),:]|['"]""")
_CLOSE = {"}": "{", "]": "[", ")": "("}
_INT = r"\s*(\d+)"
_DATAPOINT = re.compile(
    r"\{\s*'Timestamp':\s*datetime\.datetime\("
    + _INT
    + r",\s*(\d+),\s*(\d+)(?:,\s*(\d+))?(?:,\s*(\d+))?(?:,\s*(\d+))?(?:,\s*(\d+))?"
    r",\s*tzinfo=(tzlocal|tzutc)\(\)\),\s*"
    r"'(\w+)':\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?),\s*'Unit':\s*'[A-Za-z/ ]*'\s*\}"
)


_DATAPOINT_AT = re.compile(r"\s*(" + _DATAPOINT.pattern + r")(?=\s*[,\]])")


def _from_match(m: re.Match[str], tz: tzinfo, at: int = 0) -> dict[str, Any] | None:
    """The datapoint of a pattern match (groups from ``at``), None if its date is invalid."""
    g = m.groups()[at:]
    f = [int(x) if x is not None else 0 for x in g[:7]]
    try:
        zi = tz if g[7] == "tzlocal" else UTC
        when = datetime(f[0], f[1], f[2], f[3], f[4], f[5], f[6], tzinfo=zi)
    except ValueError:
        return None
    return {"Timestamp": when, g[8]: float(g[9])}


def read_literal(text: str, tz: tzinfo, source: str) -> Any:
    """A value written as JSON or as a Python repr (never evaluated), for one element or the
    skeleton; a syntax error names its line, counted from the first line of ``text``."""
    from rushhour.ingest.metrics import safe_literal

    body = text.lstrip()
    text = "\n" * text.count("\n", 0, len(text) - len(body)) + body  # no indent, same lines
    try:
        return json.loads(text)
    except ValueError:
        pass
    return safe_literal(text, tz=tz, source=source)


def read_datapoint(text: str, tz: tzinfo, source: str) -> Any:
    """One datapoint: the seed's usual shape by a pattern (only literals can match it), anything
    else by :func:`read_literal`."""
    m = _DATAPOINT.fullmatch(text.strip())
    point = None if m is None else _from_match(m, tz)
    if point is not None:
        return point
    return read_literal(text, tz, source)


class DumpScanner:
    """Feed text in pieces; see the module docstring."""

    def __init__(self, on_point: Callable[[int, Any], None], *, tz: tzinfo, source: str) -> None:
        self.on_point = on_point
        self.tz = tz
        self.source = source
        self.buf = ""
        self.line = 1  # line number of buf[0]
        self.scan = 0  # where scanning resumes in buf
        self.stack: list[str] = []
        self.key: list[str | None] = []  # per open bracket: the dict key being valued
        self.expect_key = False
        self.candidate: str | None = None
        self.colon = -1  # end of the last ':' after a Datapoints key
        self.parts: list[str] = []  # skeleton text
        self.skel = 0  # skeleton text not yet kept starts here in buf
        self.lists = 0
        self.depth: int | None = None  # stack depth inside the Datapoints list being read
        self.elem = 0  # start of the current element in buf
        self.newlines = 0  # newlines in the current Datapoints list
        self.at_element = False  # at the start of an element of that list

    def feed(self, text: str, final: bool = False) -> None:
        self.buf += text
        buf = self.buf
        end = pos = self.scan
        while True:
            if self.at_element:  # the usual datapoint shape in one match, no tokens
                dp = _DATAPOINT_AT.match(buf, pos)
                if dp is not None and (point := _from_match(dp, self.tz, 1)) is not None:
                    self.on_point(self.lists, point)
                    self.newlines += buf.count("\n", pos, dp.end())
                    end = pos = self.elem = dp.end()
                    self.at_element = False
                    continue
            m = _TOKEN.search(buf, pos)
            if m is None:
                end = len(buf) if final else end
                break
            tok = m.group()
            if tok in ("'", '"'):
                if not final:
                    break
                raise InputError(
                    "not a Python-repr or JSON metrics dump (unterminated string)",
                    source=self.source,
                    line=self._line(m.start()),
                )
            end = pos = m.end()
            self.at_element = False
            if len(tok) > 1:  # a string
                if self.expect_key and self.stack and self.stack[-1] == "{":
                    self.candidate = tok[1:-1]
                self.expect_key = False
            elif tok == ":":
                if self.stack and self.stack[-1] == "{" and self.candidate is not None:
                    self.key[-1] = self.candidate
                    self.colon = end if self.candidate == "Datapoints" else -1
                self.candidate = None
            elif tok in "{[(":
                self._open(tok, m.start(), end)
            elif tok in "}])":
                self._close(tok, m.start(), end)
            else:  # ','
                if self.depth is not None and len(self.stack) == self.depth:
                    self._element(m.start(), end)
                    self.at_element = True
                self.expect_key = bool(self.stack) and self.stack[-1] == "{"
                self.candidate = None
        self._shift(end, final)

    def finish(self) -> None:
        self.feed("", final=True)
        if self.stack:
            raise InputError(
                f"not a Python-repr or JSON metrics dump (it ends inside an open {self.stack[-1]!r})",
                source=self.source,
                line=self.line,
                expected="a complete Python-repr or JSON metrics dump",
            )

    def skeleton(self) -> Any:
        """The dump with every Datapoints list replaced by ``MARK.format(k)``."""
        return read_literal("".join(self.parts), self.tz, self.source)

    # -- internals --------------------------------------------------------------------------------
    def _line(self, pos: int) -> int:
        return self.line + self.buf.count("\n", 0, pos)

    def _open(self, tok: str, start: int, end: int) -> None:
        is_list = (
            tok == "["
            and self.depth is None
            and self.colon >= 0
            and not self.buf[self.colon : start].strip()
        )
        self.stack.append(tok)
        self.key.append(None)
        self.expect_key = tok == "{"
        self.candidate = None
        self.colon = -1
        if is_list:
            self.parts.append(self.buf[self.skel : start])
            self.depth, self.elem, self.newlines = len(self.stack), end, 0
            self.at_element = True

    def _close(self, tok: str, start: int, end: int) -> None:
        if not self.stack or self.stack[-1] != _CLOSE[tok]:
            raise InputError(
                f"not a Python-repr or JSON metrics dump (unbalanced {tok!r})",
                source=self.source,
                line=self._line(start),
                expected="a Python-repr or JSON metrics dump",
            )
        if self.depth is not None and len(self.stack) == self.depth:
            self._element(start, end)
            self.parts.append(repr(MARK.format(self.lists)) + "\n" * self.newlines)
            self.lists += 1
            self.depth = None
            self.skel = end
        self.stack.pop()
        self.key.pop()
        self.expect_key = False
        self.candidate = None

    def _element(self, start: int, end: int) -> None:
        text = self.buf[self.elem : start]
        if text.strip():
            try:
                point = read_datapoint(text, self.tz, self.source)
            except InputError as exc:
                if exc.line is None:
                    raise
                # the element's line in the file, counted only now that it is needed
                line = exc.line + self._line(self.elem) - 1
                raise InputError(
                    exc.reason, source=exc.source, line=line, expected=exc.expected
                ) from exc
            self.on_point(self.lists, point)
        self.newlines += self.buf.count("\n", self.elem, end)
        self.elem = end

    def _shift(self, end: int, final: bool) -> None:
        """Keep only what is still needed: the current element, or the unscanned tail."""
        if self.depth is None:
            self.parts.append(self.buf[self.skel : end])
            keep = end
        else:
            keep = min(self.elem, end)
        if final and self.depth is None:
            self.parts.append(self.buf[end:])
            keep = len(self.buf)
        self.line += self.buf.count("\n", 0, keep)
        self.buf = self.buf[keep:]
        self.scan = end - keep
        self.skel = 0
        self.elem -= keep
        if self.colon >= 0:
            self.colon = max(self.colon - keep, 0)
