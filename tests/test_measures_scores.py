"""Per-target scores against scipy and scikit-learn."""

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

from alignpatterns.measures import correlation_score, r2_score


@pytest.fixture
def yy():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((40, 6))
    return y, 0.5 * y + rng.standard_normal((40, 6)) + 3.0


def test_correlation_matches_scipy(yy):
    y, p = yy
    r = correlation_score(y, p)
    expected = [scipy.stats.pearsonr(y[:, j], p[:, j]).statistic for j in range(6)]
    np.testing.assert_allclose(r, expected, atol=1e-12)
    assert isinstance(correlation_score(y[:, 0], p[:, 0]), float)


def test_r2_matches_sklearn(yy):
    y, p = yy
    expected = sklearn.metrics.r2_score(y, p, multioutput="raw_values")
    np.testing.assert_allclose(r2_score(y, p), expected, atol=1e-12)
    assert np.all(r2_score(y, p) < 0)  # the offset makes these predictions worse than the mean


def test_constant_target_gives_nan_with_warning(yy):
    y, p = yy
    y = y.copy()
    y[:, 2] = 1.0
    with pytest.warns(RuntimeWarning, match="constant"):
        r = correlation_score(y, p)
    assert np.isnan(r[2]) and np.all(np.isfinite(np.delete(r, 2)))
    with pytest.warns(RuntimeWarning, match="constant"):
        assert np.isnan(r2_score(y, p)[2])
    with pytest.warns(RuntimeWarning):
        assert np.isnan(correlation_score(p[:, 0], np.zeros(40)))


def test_errors(yy):
    y, p = yy
    with pytest.raises(ValueError, match="same shape"):
        correlation_score(y, p[:, :3])
    bad = p.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        correlation_score(y, bad)
