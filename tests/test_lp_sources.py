"""LP source decompositions computed once per model (the ``decompose`` rule) give exactly the
scores of decomposing in every model × subject job, and a decomposition that does not fit the
settings is refused with the file named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alignpatterns.measures import lp_oof_predict, lp_predict
from alignpatterns.measures.encoding import (
    lp_decompose,
    lp_oof_predict_decomposed,
    lp_predict_decomposed,
)
from alignpatterns.patterns.alignment import LPOptions, model_brain_scores
from alignpatterns.patterns.lp_sources import (
    decompose_layers,
    load_decompositions,
    save_decompositions,
)
from tests.test_brain_avg import N_TEST, N_TRAIN, ROIS, _dataset

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0)
LP = "lp-ridge-pearson"


@pytest.mark.parametrize("n_components", [None, 4])
@pytest.mark.parametrize("x_scaling", ["unit", "global"])
def test_decomposed_predictions_equal_the_direct_pipeline(n_components, x_scaling):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 25)) * rng.uniform(0.2, 4, 25) + 3
    Y = X[:, :6] @ rng.standard_normal((6, 9)) + rng.standard_normal((60, 9))
    dec = lp_decompose(X[:45], X[45:], 5, n_components, x_scaling)
    assert dec.train.shape == (45, n_components or 25) and len(dec.folds) == 5
    direct = lp_predict(X[:45], Y[:45], X[45:], ALPHAS, 5, n_components, x_scaling)
    assert np.array_equal(lp_predict_decomposed(dec, Y[:45], ALPHAS, 5), direct)
    oof = lp_oof_predict(X[:45], Y[:45], ALPHAS, 5, 5, n_components, x_scaling)
    assert np.array_equal(lp_oof_predict_decomposed(dec, Y[:45], ALPHAS, 5), oof)
    test_only = lp_decompose(X[:45], X[45:], 5, n_components, x_scaling, folds=False)
    assert test_only.folds is None and np.array_equal(test_only.test, dec.test)
    with pytest.raises(ValueError, match="no outer folds"):
        lp_oof_predict_decomposed(test_only, Y[:45], ALPHAS, 5)
    with pytest.raises(ValueError, match="rows"):
        lp_predict_decomposed(dec, Y[:40], ALPHAS, 5)


def _features(seed=0, widths=(40, 12, 30)):
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_TEST
    out = {}
    for i, p in enumerate(widths):
        Z = rng.standard_normal((n, p)) ** 2
        out[f"block{i}"] = (Z[:N_TRAIN], Z[N_TRAIN:])
    return out


def _scores(feats, sd, lp, **kw):
    perms = {LP: np.random.default_rng(1).permuted(np.tile(np.arange(N_TEST), (7, 1)), axis=1)}
    rows, nulls = model_brain_scores(feats, sd, ROIS, [LP], lp, perms, **kw)
    return pd.DataFrame(rows), nulls[LP]


def test_model_brain_scores_with_stored_decompositions_are_identical(tmp_path):
    """Scores and permutation nulls from the stored decompositions equal the job's own,
    bit for bit, for two subjects (the decomposition does not depend on the subject)."""
    subs = _dataset(2, seed=4)
    feats = _features()
    lp = LPOptions(alphas=ALPHAS, inner_cv=3, outer_cv=4, n_components=8)
    path = tmp_path / "decomposed.npz"
    save_decompositions(path, decompose_layers(feats, lp), lp)
    decs = load_decompositions(path)
    assert list(decs) == list(feats)
    assert decs["block1"].n_components == 8 and len(decs["block0"].folds) == 4
    for sd in subs.values():
        ref, ref_null = _scores(feats, sd, lp)
        got, got_null = _scores(feats, sd, lp, decompositions=decs,
                                decompositions_file=str(path))
        pd.testing.assert_frame_equal(got, ref, check_exact=True)
        assert np.array_equal(got_null, ref_null, equal_nan=True)
        assert np.isfinite(ref["score"]).all()


def test_a_decomposition_made_with_other_settings_is_refused(tmp_path):
    sd = _dataset(1, seed=2)["01"]
    feats = _features(widths=(20, 15))
    lp = LPOptions(alphas=ALPHAS, inner_cv=3, outer_cv=4, n_components=6)
    path = str(tmp_path / "vgg.npz")
    for other, message in ((LPOptions(alphas=ALPHAS, inner_cv=3, outer_cv=4, n_components=5),
                            "n_components=5.*n_components=6"),
                           (LPOptions(alphas=ALPHAS, inner_cv=3, outer_cv=4, n_components=6,
                                      x_scaling="unit"), "x_scaling='unit'.*'global'"),
                           (LPOptions(alphas=ALPHAS, inner_cv=3, outer_cv=3, n_components=6),
                            "outer folds are not lp.outer_folds=4")):
        save_decompositions(path, decompose_layers(feats, other), other)
        with pytest.raises(ValueError, match=f"vgg.npz \\(layer 'block0'\\).*{message}"):
            _scores(feats, sd, lp, decompositions=load_decompositions(path),
                    decompositions_file=path)
    short = {k: (a[:-2], b) for k, (a, b) in feats.items()}
    save_decompositions(path, decompose_layers(short, lp), lp)
    with pytest.raises(ValueError, match=f"decomposed {N_TRAIN - 2} train"):
        _scores(feats, sd, lp, decompositions=load_decompositions(path),
                decompositions_file=path)
    with pytest.raises(ValueError, match="n_components is None"):
        decompose_layers(feats, LPOptions(n_components=None))


def test_a_file_that_is_not_a_decomposition_is_refused(tmp_path):
    from alignpatterns import io

    path = tmp_path / "features.npz"
    io.save_arrays(path, {"layers": np.array(["a"]), "x_scaling": np.array("global")})
    with pytest.raises(ValueError, match="features.npz: not an LP decomposition file"):
        load_decompositions(path)
