"""RidgeCV pinned against himalaya (K-fold) and scikit-learn (leave-one-out)."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import RidgeCV as SkRidgeCV
from sklearn.model_selection import KFold

from alignpatterns.measures import RidgeCV
from alignpatterns.measures.ridge import kfold_splits

himalaya = pytest.importorskip("himalaya")
from himalaya.backend import set_backend  # noqa: E402
from himalaya.ridge import RidgeCV as HimalayaRidgeCV  # noqa: E402

ALPHAS = np.logspace(-2, 6, 17)


def _data(n, p, t, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    W = rng.standard_normal((p, t)) * rng.uniform(0, 0.3, t)  # varied SNR: varied alphas
    Y = X @ W + rng.standard_normal((n, t)) + 0.5
    X_test = rng.standard_normal((25, p))
    return X, Y, X_test


def _himalaya(X, Y, **kw):
    set_backend("numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return HimalayaRidgeCV(alphas=ALPHAS, **kw).fit(X, Y)


def _rel(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize(("n", "p"), [(90, 20), (50, 120)])  # primal and kernel regimes
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_matches_himalaya_kfold(n, p, fit_intercept):
    X, Y, X_test = _data(n, p, 40, seed=n + p)
    ours = RidgeCV(ALPHAS, cv=5, fit_intercept=fit_intercept).fit(X, Y)
    ref = _himalaya(X, Y, cv=5, fit_intercept=fit_intercept)
    np.testing.assert_allclose(ours.best_alphas_, np.asarray(ref.best_alphas_), rtol=1e-10)
    assert len(np.unique(ours.best_alphas_)) >= 3  # the fixture exercises per-target alphas
    assert _rel(ours.predict(X_test), np.asarray(ref.predict(X_test))) < 1e-6
    assert _rel(ours.coef_, np.asarray(ref.coef_)) < 1e-6
    np.testing.assert_allclose(ours.cv_scores_, np.asarray(ref.cv_scores_), rtol=1e-8)
    assert ours.coef_.shape == (p, 40)


def test_shared_alpha_matches_himalaya():
    X, Y, X_test = _data(80, 15, 30, seed=3)
    ours = RidgeCV(ALPHAS, cv=4, shared_alpha=True).fit(X, Y)
    ref = _himalaya(X, Y, cv=4, solver_params={"local_alpha": False})
    assert len(np.unique(ours.best_alphas_)) == 1
    np.testing.assert_allclose(ours.best_alphas_, np.asarray(ref.best_alphas_), rtol=1e-10)
    assert _rel(ours.predict(X_test), np.asarray(ref.predict(X_test))) < 1e-6


def test_splitter_object_matches_himalaya():
    X, Y, X_test = _data(70, 12, 10, seed=4)
    cv = KFold(3, shuffle=True, random_state=0)
    ours = RidgeCV(ALPHAS, cv=cv).fit(X, Y)
    ref = _himalaya(X, Y, cv=cv)
    np.testing.assert_allclose(ours.best_alphas_, np.asarray(ref.best_alphas_), rtol=1e-10)
    assert _rel(ours.predict(X_test), np.asarray(ref.predict(X_test))) < 1e-6
    # shuffling changes the folds, hence (for some target) the selection
    unshuffled = RidgeCV(ALPHAS, cv=3).fit(X, Y)
    assert not np.allclose(unshuffled.cv_scores_, ours.cv_scores_)


@pytest.mark.parametrize(("n", "p"), [(60, 15), (40, 90)])
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_loo_matches_sklearn(n, p, fit_intercept):
    X, Y, X_test = _data(n, p, 20, seed=n * p)
    ours = RidgeCV(ALPHAS, cv=None, fit_intercept=fit_intercept).fit(X, Y)
    ref = SkRidgeCV(alphas=ALPHAS, alpha_per_target=True, fit_intercept=fit_intercept).fit(X, Y)
    np.testing.assert_allclose(ours.best_alphas_, ref.alpha_, rtol=1e-12)
    assert _rel(ours.predict(X_test), ref.predict(X_test)) < 1e-6
    np.testing.assert_allclose(-ours.cv_scores_, -ref.best_score_, rtol=1e-8)


def test_loo_equals_explicit_leave_one_out():
    X, Y, _ = _data(25, 6, 3, seed=9)
    ours = RidgeCV(ALPHAS, cv=None).fit(X, Y)
    explicit = RidgeCV(ALPHAS, cv=25).fit(X, Y)  # K-fold with K = n is leave-one-out
    np.testing.assert_allclose(ours.alpha_scores_, explicit.alpha_scores_, rtol=1e-9)
    np.testing.assert_array_equal(ours.best_alphas_, explicit.best_alphas_)


def test_kfold_splits_match_sklearn():
    for n, k in [(10, 3), (23, 5), (5, 5)]:
        ours = kfold_splits(n, k)
        ref = list(KFold(k).split(np.zeros(n)))
        for (a, b), (c, d) in zip(ours, ref, strict=True):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


def test_ties_take_first_alpha_and_batches_agree():
    X, Y, X_test = _data(40, 8, 7, seed=5)
    Y[:, 2] = 0.0  # every alpha scores the same
    full = RidgeCV(ALPHAS, cv=5).fit(X, Y)
    assert full.best_alphas_[2] == ALPHAS[0]
    batched = RidgeCV(ALPHAS, cv=5, n_targets_batch=2).fit(X, Y)
    np.testing.assert_array_equal(full.best_alphas_, batched.best_alphas_)
    np.testing.assert_allclose(full.predict(X_test), batched.predict(X_test), rtol=1e-12)


def test_one_dimensional_target():
    X, Y, X_test = _data(50, 5, 1, seed=6)
    m = RidgeCV(ALPHAS).fit(X, Y[:, 0])
    assert m.coef_.shape == (5,)
    assert m.predict(X_test).shape == (25,)
    np.testing.assert_allclose(m.predict(X_test), RidgeCV(ALPHAS).fit(X, Y).predict(X_test)[:, 0])


def test_errors():
    X, Y, _ = _data(30, 4, 2, seed=7)
    with pytest.raises(ValueError, match="positive"):
        RidgeCV([1.0, -1.0]).fit(X, Y)
    with pytest.raises(ValueError, match="same number of samples"):
        RidgeCV(ALPHAS).fit(X[:-1], Y)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        RidgeCV(ALPHAS).fit(bad, Y)
    with pytest.raises(RuntimeError, match="not fitted"):
        RidgeCV(ALPHAS).predict(X)
    with pytest.raises(ValueError, match="features"):
        RidgeCV(ALPHAS).fit(X, Y).predict(X[:, :3])
    with pytest.raises(ValueError, match="n_splits"):
        RidgeCV(ALPHAS, cv=1).fit(X, Y)
    with pytest.raises(ValueError, match="unknown backend"):
        RidgeCV(ALPHAS, backend="cupy").fit(X, Y)


@pytest.mark.parametrize(("n", "p"), [(60, 15), (40, 90)])  # primal and kernel regimes
@pytest.mark.parametrize("cv", [5, None])
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_torch_backend_equals_numpy(n, p, cv, fit_intercept):
    pytest.importorskip("torch")
    X, Y, X_test = _data(n, p, 12, seed=n + p + 1)
    ref = RidgeCV(ALPHAS, cv=cv, fit_intercept=fit_intercept, backend="numpy").fit(X, Y)
    ours = RidgeCV(ALPHAS, cv=cv, fit_intercept=fit_intercept, backend="torch_cpu").fit(X, Y)
    assert ours.backend_ == "torch_cpu" and ref.backend_ == "numpy"
    np.testing.assert_array_equal(ours.best_alphas_, ref.best_alphas_)
    # LOO residuals divide by 1 - h, which is ~1e-3 at the smallest alpha when p > n
    np.testing.assert_allclose(ours.alpha_scores_, ref.alpha_scores_, rtol=1e-8)
    np.testing.assert_allclose(ours.predict(X_test), ref.predict(X_test), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-10, atol=1e-12)
    assert isinstance(ours.predict(X_test), np.ndarray)


def test_many_alphas_few_test_samples_use_both_product_orders():
    # k = p small: Y is projected on the basis first; k = n_train: the basis is folded in
    for n, p in [(200, 5), (60, 400)]:
        X, Y, X_test = _data(n, p, 6, seed=p)
        ours = RidgeCV(ALPHAS, cv=5).fit(X, Y)
        ref = _himalaya(X, Y, cv=5)
        np.testing.assert_allclose(ours.best_alphas_, np.asarray(ref.best_alphas_), rtol=1e-10)
        np.testing.assert_allclose(ours.cv_scores_, np.asarray(ref.cv_scores_), rtol=1e-8)
