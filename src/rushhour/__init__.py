"""rushhour: learn the rhythm of service traffic, flag deviations live, alert people, forecast demand.

Contracts stated once for the whole package:

* Datetimes are timezone-aware UTC inside rushhour. Local time (a configurable IANA zone) is used only
  where seasonality is computed and where times are shown to people.
* A series is a name plus labels; its values are counts per half-open bucket ``[start, end)``.
* Anomaly scores are "higher is more anomalous"; each detector documents its own scale.
* Core modules (parsers, bucketing, detectors, thresholds) do no I/O and never read the wall clock.
"""

__version__ = "0.1.0"
