"""The detectors' holiday calendar agrees with the one the generator and forecasters use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rushhour.detect.default import DetectorConfig, local_seconds, utc_ns
from rushhour.detect.holiday_calendar import HolidayCalendar
from rushhour.errors import UsageError
from rushhour.series.generate import day_classes


@pytest.mark.parametrize(
    ("tz", "country", "subdiv"),
    [("America/New_York", "US", None), ("Europe/Berlin", "DE", "BY"), ("UTC", "GB", "SCT")],
)
def test_the_detectors_holidays_are_the_generators(tz: str, country: str, subdiv: str) -> None:
    idx = pd.date_range("2025-12-20", "2027-01-10", freq="90min", tz="UTC")
    mask = HolidayCalendar(country, subdiv).mask(local_seconds(utc_ns(idx), tz))
    np.testing.assert_array_equal(mask, day_classes(idx, tz, country, subdiv) == 2)
    assert 10 <= len(set(idx[mask].tz_convert(tz).date)) <= 40


def test_an_unknown_calendar_is_refused() -> None:
    with pytest.raises(UsageError, match="no holiday calendar"):
        DetectorConfig(holidays_country="XX").validate()
    with pytest.raises(UsageError, match="no holiday calendar"):
        DetectorConfig(holidays_country="US", holidays_subdiv="ZZ").validate()
