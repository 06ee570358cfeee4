"""Slots of the forest's ``meta`` counter array, shared by the kernels and the Python side."""

META_END = 0  # records held in the point store (the next record goes after them)
META_SEQ = 1  # records that reached the trees (sequence index of the next one)
META_WBASE = 2  # sequence index the stored sampler weights are relative to
META_SHINGLE = 3  # records per point: a point is ``shingle`` consecutive records of the store
META_HEAVY = (
    4  # an internal node with at least this mass gets a cached bounding box when one is free
)
META_SIZE = 5

EMPTY = -(2**31)  # the root reference of an empty tree in a frozen forest
