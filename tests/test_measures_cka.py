"""Linear CKA against direct formulas, an independent unbiased-centring implementation,
and its invariances."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from alignpatterns.measures import cka_from_grams, gram, linear_cka


def _direct_biased(X, Y):
    n = X.shape[0]
    H = np.eye(n) - 1.0 / n
    K, L = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    return np.trace(K @ L) / np.sqrt(np.trace(K @ K) * np.trace(L @ L))


def _hsic_u(K, L):
    """HSIC_u exactly as written in SPEC §2."""
    n = K.shape[0]
    Kt, Lt = K.copy(), L.copy()
    np.fill_diagonal(Kt, 0)
    np.fill_diagonal(Lt, 0)
    one = np.ones(n)
    return (
        np.trace(Kt @ Lt)
        + (one @ Kt @ one) * (one @ Lt @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ Kt @ Lt @ one)
    ) / (n * (n - 3))


def _direct_debiased(X, Y):
    K, L = X @ X.T, Y @ Y.T
    return _hsic_u(K, L) / np.sqrt(_hsic_u(K, K) * _hsic_u(L, L))


def _kornblith_debiased(X, Y):
    """Kornblith et al. (2019) colab: unbiased centring of the Gram matrix."""

    def centre(g):
        g = g.copy()
        n = g.shape[0]
        np.fill_diagonal(g, 0)
        means = np.sum(g, 0) / (n - 2)
        means -= np.sum(means) / (2 * (n - 1))
        g -= means[:, None]
        g -= means[None, :]
        np.fill_diagonal(g, 0)
        return g

    K, L = centre(X @ X.T), centre(Y @ Y.T)
    return np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))


@pytest.fixture
def XY():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 8)) + 3.0
    Y = X @ rng.standard_normal((8, 5)) + rng.standard_normal((30, 5))
    return X, Y


@pytest.mark.parametrize("wide", [False, True])
def test_biased_matches_direct(XY, wide):
    X, Y = XY
    if wide:  # more features than samples: Gram route
        rng = np.random.default_rng(1)
        X = np.hstack([X, rng.standard_normal((30, 60))])
        Y = np.hstack([Y, rng.standard_normal((30, 50))])
    value = linear_cka(X, Y)
    assert value == pytest.approx(_direct_biased(X, Y), abs=1e-12)
    assert value == pytest.approx(cka_from_grams(gram(X), gram(Y)), abs=1e-12)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    formula = np.sum((Xc.T @ Yc) ** 2) / np.sqrt(
        np.sum((Xc.T @ Xc) ** 2) * np.sum((Yc.T @ Yc) ** 2)
    )
    assert value == pytest.approx(formula, abs=1e-12)


@pytest.mark.parametrize("wide", [False, True])
def test_debiased_matches_hsic_u(XY, wide):
    X, Y = XY
    if wide:
        rng = np.random.default_rng(2)
        X = np.hstack([X, rng.standard_normal((30, 60))])
        Y = np.hstack([Y, rng.standard_normal((30, 50))])
    value = linear_cka(X, Y, debiased=True)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    assert value == pytest.approx(_direct_debiased(Xc, Yc), abs=1e-12)
    assert value == pytest.approx(_kornblith_debiased(X, Y), abs=1e-12)
    assert value == pytest.approx(cka_from_grams(gram(X), gram(Y), debiased=True), abs=1e-12)
    # raw (uncentred) Gram matrices give the same value: HSIC_u is translation invariant
    assert value == pytest.approx(cka_from_grams(X @ X.T, Y @ Y.T, debiased=True), abs=1e-10)
    assert value != pytest.approx(linear_cka(X, Y), abs=1e-3)


def test_debiased_near_zero_for_independent_and_can_be_negative():
    rng = np.random.default_rng(3)
    vals = [
        linear_cka(rng.standard_normal((40, 30)), rng.standard_normal((40, 30)), debiased=True)
        for _ in range(20)
    ]
    assert abs(np.mean(vals)) < 0.03
    assert min(vals) < 0
    biased = linear_cka(rng.standard_normal((40, 30)), rng.standard_normal((40, 30)))
    assert biased > 0.3  # the bias the debiased estimator removes


@pytest.mark.parametrize("debiased", [False, True])
def test_invariances(XY, debiased):
    X, Y = XY
    base = linear_cka(X, Y, debiased=debiased)
    Q = ortho_group.rvs(X.shape[1], random_state=4)
    assert linear_cka(X @ Q, Y, debiased=debiased) == pytest.approx(base, abs=1e-12)
    assert linear_cka(7.5 * X, 0.01 * Y, debiased=debiased) == pytest.approx(base, abs=1e-12)
    assert linear_cka(X + 100.0, Y, debiased=debiased) == pytest.approx(base, abs=1e-9)
    assert linear_cka(X, X, debiased=debiased) == pytest.approx(1.0, abs=1e-12)
    # not invariant to anisotropic scaling
    S = np.diag(np.linspace(0.1, 5, X.shape[1]))
    assert abs(linear_cka(X @ S, Y, debiased=debiased) - base) > 1e-3


def test_errors_and_degenerate():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((3, 4))
    with pytest.raises(ValueError, match="at least 4"):
        linear_cka(X, X, debiased=True)
    with pytest.raises(ValueError, match="same number of samples"):
        linear_cka(rng.standard_normal((6, 2)), rng.standard_normal((5, 2)))
    bad = rng.standard_normal((6, 2))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        linear_cka(bad, bad)
    with pytest.raises(ValueError, match="square"):
        cka_from_grams(np.ones((4, 3)), np.ones((4, 3)))
    with pytest.warns(RuntimeWarning, match="undefined"):
        assert np.isnan(linear_cka(np.ones((6, 3)), rng.standard_normal((6, 2))))


@pytest.mark.parametrize("debiased", [False, True])
@pytest.mark.parametrize(("p", "q"), [(6, 5), (300, 250)])  # feature route and Gram route
def test_torch_backend_and_chunks_equal_numpy(debiased, p, q):
    pytest.importorskip("torch")
    rng = np.random.default_rng(p)
    X = rng.standard_normal((30, p))
    Y = X[:, :1] @ rng.standard_normal((1, q)) + rng.standard_normal((30, q))
    ref = linear_cka(X, Y, debiased, backend="numpy")
    assert linear_cka(X, Y, debiased, backend="torch_cpu") == pytest.approx(ref, rel=1e-10)
    assert linear_cka(X, Y, debiased, backend="numpy", chunk_size=7) == pytest.approx(
        ref, rel=1e-10
    )
    assert linear_cka(X.astype(np.float32), Y, debiased, backend="numpy") == pytest.approx(
        linear_cka(X.astype(np.float32).astype(np.float64), Y, debiased), rel=1e-12
    )
