"""Slots of the forest's ``meta`` counter array, shared by the kernels and the Python side."""

META_FREE_N = 0  # free slots in the point store
META_SEQ = 1  # records that reached the trees (sequence index of the next one)
META_WBASE = 2  # sequence index the stored sampler weights are relative to
META_FREE_HEAD = 3  # first free point-store slot (-1: none); the free list runs through ``pref``
META_HEAVY = (
    4  # an internal node with at least this mass gets a cached bounding box when one is free
)
META_SIZE = 5

EMPTY = -(2**31)  # the root reference of an empty tree in a frozen forest
