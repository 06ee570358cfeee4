"""Series: bucketing of records into counts, cleaning, exports and the synthetic traffic generator.

A series' values are counts per epoch-aligned half-open bucket ``[start, start + width)``, indexed by
timezone-aware UTC timestamps. A covered bucket with no records is 0; an uncovered one is NaN (a gap).
"""
