"""The Gaussian tail surprises the detector stages share, against scipy.stats.norm."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import norm

from rushhour.detect.likelihood import gaussian_surprise, tail_surprise, two_sided_surprise

# up to z = 37 the upper tail is above float64's smallest normal number: norm.sf is exact there
_Z = st.floats(min_value=-37.0, max_value=37.0, allow_nan=False)
# far out, norm.logsf still is (z = 1000: a tail of 10^-217,000)
_FAR = st.floats(min_value=-1000.0, max_value=1000.0, allow_nan=False)


@given(st.lists(_Z, min_size=1, max_size=20))
def test_the_upper_tail_is_minus_log10_of_the_survival_function(zs: list[float]) -> None:
    z = np.array(zs)
    want = -np.log10(norm.sf(z))
    np.testing.assert_allclose(gaussian_surprise(z), want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(tail_surprise(z), want, rtol=1e-9, atol=1e-12)


@given(_FAR)
def test_far_in_the_tail_it_follows_the_log_survival_function(z: float) -> None:
    want = -norm.logsf(z) / math.log(10.0)
    assert math.isclose(
        float(gaussian_surprise(np.array([z]))[0]), want, rel_tol=1e-9, abs_tol=1e-12
    )


@given(_Z, _Z)
def test_the_upper_tail_grows_with_z(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    u = gaussian_surprise(np.array([lo, hi]))
    assert u[0] <= u[1]


@given(st.lists(_Z, min_size=1, max_size=20))
def test_the_two_sided_tail_is_minus_log10_of_twice_the_survival_of_abs_z(zs: list[float]) -> None:
    z = np.array(zs)
    want = -np.log10(2.0 * norm.sf(np.abs(z)))
    got = two_sided_surprise(z)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(got, two_sided_surprise(-z))  # symmetric
    assert np.all(got >= -1e-15)


def test_nothing_known_reads_as_no_surprise() -> None:
    nan = np.array([np.nan, 0.0])
    np.testing.assert_allclose(tail_surprise(nan), [0.0, math.log10(2.0)], rtol=1e-15, atol=0)
    np.testing.assert_allclose(two_sided_surprise(nan), [0.0, 0.0], rtol=0, atol=1e-15)
