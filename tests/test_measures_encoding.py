"""The linear-predictivity pipeline against an independent scikit-learn + himalaya build."""

import warnings

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.model_selection import KFold
from sklearn.preprocessing import StandardScaler

from alignpatterns.measures import correlation_score, lp_oof_predict, lp_predict

pytest.importorskip("himalaya")
from himalaya.backend import set_backend  # noqa: E402
from himalaya.ridge import RidgeCV as HimalayaRidgeCV  # noqa: E402

ALPHAS = np.logspace(-1, 5, 13)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n, p, t = 100, 30, 12
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 5, p) + rng.uniform(-3, 3, p)
    Y = X @ rng.standard_normal((p, t)) * 0.2 + rng.standard_normal((n, t)) * 2 + 10
    return X[:80], Y[:80], X[80:], Y[80:]


def _reference(Xtr, Ytr, Xte, n_components=None, x_scaling="unit"):
    xs, ys = StandardScaler().fit(Xtr), StandardScaler().fit(Ytr)
    A, B = xs.transform(Xtr), xs.transform(Xte)
    if x_scaling == "global":  # centre, then one scale for all columns
        rms = np.sqrt(np.mean(Xtr.var(axis=0)))
        A, B = (Xtr - Xtr.mean(axis=0)) / rms, (Xte - Xtr.mean(axis=0)) / rms
    if n_components is not None:
        pca = PCA(n_components, svd_solver="full").fit(A)
        A, B = pca.transform(A), pca.transform(B)
    set_backend("numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = HimalayaRidgeCV(alphas=ALPHAS, cv=5, fit_intercept=False).fit(A, ys.transform(Ytr))
    return np.asarray(model.predict(B))


@pytest.mark.parametrize("x_scaling", ["unit", "global"])
@pytest.mark.parametrize("n_components", [None, 10])
def test_lp_predict_matches_reference(data, n_components, x_scaling):
    Xtr, Ytr, Xte, _ = data
    out = lp_predict(Xtr, Ytr, Xte, ALPHAS, inner_cv=5, n_components=n_components,
                     x_scaling=x_scaling)
    ref = _reference(Xtr, Ytr, Xte, n_components, x_scaling)
    assert out.shape == (20, 12)
    assert np.max(np.abs(out - ref)) / np.max(np.abs(ref)) < 1e-6


def test_global_scaling_keeps_geometry_and_unit_scaling_does_not(data):
    Xtr, Ytr, Xte, _ = data
    # a column's scale matters under global scaling (geometry kept) but not under z-scoring
    Xtr2, Xte2 = Xtr.copy(), Xte.copy()
    Xtr2[:, 0] *= 50
    Xte2[:, 0] *= 50
    unit = [lp_predict(a, Ytr, b, ALPHAS, x_scaling="unit") for a, b in ((Xtr, Xte), (Xtr2, Xte2))]
    glob = [lp_predict(a, Ytr, b, ALPHAS, x_scaling="global") for a, b in ((Xtr, Xte), (Xtr2, Xte2))]
    np.testing.assert_allclose(unit[0], unit[1], rtol=1e-8)
    assert np.max(np.abs(glob[0] - glob[1])) > 1e-3
    # an isotropic rescaling of all columns changes nothing under either
    np.testing.assert_allclose(lp_predict(Xtr * 7, Ytr, Xte * 7, ALPHAS, x_scaling="global"),
                               glob[0], rtol=1e-8)
    with pytest.raises(ValueError, match="x_scaling"):
        lp_predict(Xtr, Ytr, Xte, ALPHAS, x_scaling="per-voxel")


def test_lp_predict_uses_no_test_statistics(data):
    Xtr, Ytr, Xte, _ = data
    full = lp_predict(Xtr, Ytr, Xte, ALPHAS)
    part = lp_predict(Xtr, Ytr, Xte[:5] * 1.0, ALPHAS)
    np.testing.assert_allclose(part, full[:5], rtol=1e-12)


def test_lp_predict_constant_columns(data):
    Xtr, Ytr, Xte, _ = data
    Xtr, Ytr = Xtr.copy(), Ytr.copy()
    Xtr[:, 3] = 4.0
    Ytr[:, 0] = -2.0
    out = lp_predict(Xtr, Ytr, Xte, ALPHAS)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, 0], 0.0)
    # the constant feature carries nothing: same as dropping it
    dropped = lp_predict(np.delete(Xtr, 3, 1), Ytr, np.delete(Xte, 3, 1), ALPHAS)
    np.testing.assert_allclose(out, dropped, atol=1e-10)


def test_lp_oof_matches_manual_loop_and_recovers_signal(data):
    Xtr, Ytr, _, _ = data
    oof = lp_oof_predict(Xtr, Ytr, ALPHAS, outer_cv=4, inner_cv=5)
    manual = np.empty_like(Ytr)
    for tr, te in KFold(4).split(Xtr):
        manual[te] = _reference(Xtr[tr], Ytr[tr], Xtr[te])
    assert np.max(np.abs(oof - manual)) / np.max(np.abs(manual)) < 1e-6
    assert np.mean(correlation_score(Ytr, oof)) > 0.5


def test_lp_oof_has_no_leakage(data):
    Xtr, Ytr, _, _ = data
    base = lp_oof_predict(Xtr, Ytr, ALPHAS, outer_cv=4)
    Y2 = Ytr.copy()
    Y2[:20] = np.random.default_rng(9).standard_normal((20, Ytr.shape[1]))  # fold 0's held-out
    changed = lp_oof_predict(Xtr, Y2, ALPHAS, outer_cv=4)
    np.testing.assert_allclose(changed[:20], base[:20], rtol=1e-12)
    assert not np.allclose(changed[20:], base[20:])


def test_errors(data):
    Xtr, Ytr, Xte, _ = data
    with pytest.raises(ValueError, match="same number of samples"):
        lp_predict(Xtr[:-1], Ytr, Xte, ALPHAS)
    with pytest.raises(ValueError, match="features"):
        lp_predict(Xtr, Ytr, Xte[:, :-1], ALPHAS)
    with pytest.raises(ValueError, match="n_components"):
        lp_predict(Xtr, Ytr, Xte, ALPHAS, n_components=31)
    with pytest.raises(ValueError, match="2-D"):
        lp_predict(Xtr, Ytr[:, 0], Xte, ALPHAS)
    with pytest.raises(ValueError, match="partition"):
        lp_oof_predict(Xtr, Ytr, ALPHAS, outer_cv=[(np.arange(40, 80), np.arange(40))])


def test_model_brain_uses_reduced_features_for_lp_only(tmp_path):
    """With ``features.reduction`` the feature file holds ``lp/...`` copies: linear
    predictivity reads them, RSA and CKA the unreduced layers (SPEC.md §1)."""
    import json

    from alignpatterns import io, pipeline
    from alignpatterns.data.bmd import ROIData, SubjectData
    from alignpatterns.data.prepared import save_subject
    from alignpatterns.patterns.alignment import LPOptions, model_brain_scores

    rng = np.random.default_rng(0)
    n_tr, n_te, v = 30, 12, 8
    rois = {}
    for name in ("A", "B", "C"):
        tr = rng.standard_normal((n_tr, 3, v))
        te = rng.standard_normal((n_te, 4, v))
        rois[name] = ROIData(np.arange(v), tr, te, tr.mean(1), te.mean(1), np.ones(v),
                             np.ones(v), 4.0)
    sd = SubjectData("01", [f"vid{i:04d}" for i in range(1, n_tr + 1)],
                     [f"vid{i:04d}" for i in range(n_tr + 1, n_tr + n_te + 1)], rois)
    save_subject(sd, tmp_path / "sub-01.npz")
    Z = rng.standard_normal((n_tr + n_te, 40))
    R = Z @ rng.standard_normal((40, 6))  # a different (reduced) representation
    io.save_arrays(tmp_path / "m.npz", {"layer/00/L": Z.astype(np.float32),
                                        "lp/00/L": R.astype(np.float32),
                                        "ids": np.array(sd.train_ids + sd.test_ids),
                                        "n_train": np.array(n_tr)})
    (tmp_path / "info.json").write_text(json.dumps({"lp_n_components": None}))
    cfg = {"seed": 1, "rois": ["A", "B", "C"], "apa": {"n_permutations": 3},
           "measures": ["cka-linear-debiased", "lp-ridge-pearson"],
           "lp": {"alphas": [1.0, 10.0], "inner_folds": 3, "outer_folds": 3},
           "models": [{"name": "m", "weights": "random"}]}
    pipeline.model_brain(cfg, "m", str(tmp_path / "m.npz"), str(tmp_path / "sub-01.npz"),
                         str(tmp_path / "info.json"), str(tmp_path / "mb.parquet"),
                         str(tmp_path / "null.npz"))
    got = io.read_table(tmp_path / "mb.parquet").set_index(["measure", "roi", "split"])["score"]
    opts = LPOptions(alphas=(1.0, 10.0), inner_cv=3, outer_cv=3, n_components=None)
    f32 = {k: (x.astype(np.float32).astype(np.float64)[:n_tr],
               x.astype(np.float32).astype(np.float64)[n_tr:]) for k, x in (("L", Z),)}
    r32 = {"L": (R.astype(np.float32).astype(np.float64)[:n_tr],
                 R.astype(np.float32).astype(np.float64)[n_tr:])}
    for measure, feats in (("cka-linear-debiased", f32), ("lp-ridge-pearson", r32)):
        rows, _ = model_brain_scores(feats, sd, ["A", "B", "C"], [measure], opts)
        for row in rows:
            assert got[measure, row["roi"], row["split"]] == pytest.approx(row["score"],
                                                                           abs=1e-12)
    # and the LP scores are not those of the unreduced layer
    rows, _ = model_brain_scores(f32, sd, ["A", "B", "C"], ["lp-ridge-pearson"], opts)
    assert any(abs(got["lp-ridge-pearson", r["roi"], r["split"]] - r["score"]) > 1e-6
               for r in rows)


@pytest.mark.parametrize("shape", [(40, 300), (60, 50)])
def test_top_components_match_the_thin_svd(shape):
    from alignpatterns.measures.encoding import _top_components

    rng = np.random.default_rng(5)
    X = rng.standard_normal(shape) * np.geomspace(10, 0.1, shape[1])
    X -= X.mean(axis=0)
    scores, comps = _top_components(X, 8)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    signs = np.sign(np.sum(comps * Vt[:8], axis=1))
    np.testing.assert_allclose(comps * signs[:, None], Vt[:8], atol=1e-10)
    np.testing.assert_allclose(scores * signs, U[:, :8] * s[:8], atol=1e-9)
    np.testing.assert_allclose(comps @ comps.T, np.eye(8), atol=1e-12)


def test_top_components_of_a_rank_deficient_matrix_fall_back_to_the_svd():
    from alignpatterns.measures.encoding import _top_components

    rng = np.random.default_rng(6)
    X = rng.standard_normal((30, 3)) @ rng.standard_normal((3, 100))  # rank 3 < k = 5
    scores, comps = _top_components(X, 5)
    assert np.all(np.isfinite(comps)) and np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, X @ comps.T, atol=1e-10)
    np.testing.assert_allclose(comps @ comps.T, np.eye(5), atol=1e-10)
