"""Traffic data in: flow logs, CloudWatch subscription payloads, metric dumps and plain series files.

Every reader turns its input into an iterator of :class:`~rushhour.ingest.batch.RecordBatch`;
:func:`~rushhour.ingest.detect_format.read_records` picks the reader, and
:class:`~rushhour.series.bucketing.Bucketizer` turns batches into bucketed series.
"""

from rushhour.ingest.batch import RecordBatch, Rejections
from rushhour.ingest.detect_format import FORMATS, detect_format, read_records

__all__ = ["FORMATS", "RecordBatch", "Rejections", "detect_format", "read_records"]
