"""Detectors: higher score = more anomalous; each detector documents its own scale.

Streaming detectors share two verbs (as in river): ``score_one`` looks at a point without changing the
detector, and ``learn_one`` updates it. Batch detectors ``fit`` and then ``score`` many points. A
detector scores 0 during its documented warm-up instead of raising. Thresholds that turn scores into
decisions live apart from detectors, in :mod:`rushhour.detect.thresholds`.
"""
