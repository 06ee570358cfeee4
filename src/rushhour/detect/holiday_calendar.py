"""Public holidays for the detectors: which local days of a stretch of buckets are holidays.

The detectors work on local wall-clock epoch seconds (:func:`rushhour.detect.default.local_seconds`),
so a day is ``floor(seconds / 86400)`` days after 1970-01-01, local time. The calendar is the one
the rest of rushhour uses (the ``holidays`` library, by country and subdivision: settings
``holidays_country`` / ``holidays_subdiv``); days already looked up are remembered.

>>> cal = HolidayCalendar("US")
>>> secs = (np.datetime64("2026-01-19T10:00") - np.datetime64("1970-01-01T00:00")) / np.timedelta64(1, "s")
>>> cal.mask(np.array([secs, secs + 86400.0])).tolist()   # Martin Luther King Jr. Day, then a Tuesday
[True, False]
>>> HolidayCalendar(None).mask(np.array([secs])).tolist()   # no calendar: no holidays
[False]
"""

from __future__ import annotations

from datetime import date, timedelta

import holidays as holidays_lib
import numpy as np

from rushhour.errors import UsageError

DAY = 86400.0
EPOCH = date(1970, 1, 1)


class HolidayCalendar:
    """The public holidays of ``country`` (and ``subdiv``); none when ``country`` is None or empty."""

    def __init__(self, country: str | None, subdiv: str | None = None):
        self.country = country or None
        self.subdiv = subdiv or None
        self._days: dict[int, bool] = {}
        self._cal: holidays_lib.HolidayBase | None = None
        if self.country is not None:
            try:
                self._cal = holidays_lib.country_holidays(self.country, subdiv=self.subdiv)
            except NotImplementedError as exc:
                raise UsageError(
                    f"no holiday calendar for country {self.country!r} region {self.subdiv!r}"
                ) from exc

    def mask(self, local_seconds: np.ndarray) -> np.ndarray:
        """True for buckets (local wall-clock epoch seconds) whose local day is a public holiday."""
        secs = np.asarray(local_seconds, dtype=float)
        if self._cal is None or secs.size == 0:
            return np.zeros(secs.shape, dtype=bool)
        days = np.floor(secs / DAY).astype(np.int64)
        unique = np.unique(days)
        for d in unique.tolist():
            if d not in self._days:
                self._days[d] = (EPOCH + timedelta(days=d)) in self._cal
        hol = np.array([self._days[d] for d in unique.tolist()], dtype=bool)
        return np.asarray(hol[np.searchsorted(unique, days)])
