"""Slots of the forest's ``meta`` counter array, shared by the kernels and the Python side."""

META_FREE_N = 0  # free slots on the point-store free stack
META_SEQ = 1  # records that reached the trees (sequence index of the next one)
META_WBASE = 2  # sequence index the stored sampler weights are relative to
META_SIZE = 3

EMPTY = -(2**31)  # the root reference of an empty tree in a frozen forest
