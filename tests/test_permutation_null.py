"""Stimulus-permutation nulls from stored test representations equal naive recomputation."""

import warnings

import numpy as np
import pytest

from alignpatterns.measures import (
    cka_from_grams,
    compare_rdms,
    correlation_score,
    gram,
    permute_rdm,
    rank_rdm,
    rdm,
)
from alignpatterns.patterns.alignment import permuted_cka, permuted_lp, permuted_rsa


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n = 14
    Z = rng.standard_normal((n, 6))
    Ys = [Z @ rng.standard_normal((6, v)) + rng.standard_normal((n, v)) for v in (5, 9)]
    perms = np.array([rng.permutation(n) for _ in range(25)])
    return Z, Ys, perms


def test_permuted_rsa_equals_compare_on_permuted_rdms(data):
    Z, Ys, perms = data
    a = rank_rdm(rdm(Z, "sqeuclidean"))
    B = np.stack([rank_rdm(rdm(Y, "correlation")) for Y in Ys])
    null = permuted_rsa(a, B, perms)
    for d, p in enumerate(perms):
        expect = compare_rdms(permute_rdm(a, p), B, "spearman", ranked=True)
        np.testing.assert_allclose(null[d], expect, rtol=1e-12)
        # permuting the source features gives the same RDM
        direct = rank_rdm(rdm(Z[p], "sqeuclidean"))
        np.testing.assert_allclose(direct, permute_rdm(a, p))


def test_permuted_cka_equals_cka_of_permuted_features(data):
    Z, Ys, perms = data
    K = gram(Z)
    Ls = [gram(Y) for Y in Ys]
    null = permuted_cka(K, Ls, perms)
    for d, p in enumerate(perms[:8]):
        for t, Y in enumerate(Ys):
            expect = cka_from_grams(gram(Z[p]), gram(Y), debiased=True)
            assert null[d, t] == pytest.approx(expect, rel=1e-10, abs=1e-12)


def test_permuted_lp_equals_rescoring_permuted_predictions(data):
    Z, Ys, perms = data
    Y = Ys[1].copy()
    Y[:, 3] = 1.0  # a constant vertex is left out, as in the observed score
    P = Z @ np.random.default_rng(1).standard_normal((6, Y.shape[1]))
    null = permuted_lp(Y, P, perms)
    for d, p in enumerate(perms):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expect = np.nanmean(correlation_score(Y, P[p]))
        assert null[d] == pytest.approx(expect, rel=1e-10)


def test_bad_permutations_are_refused(data):
    Z, Ys, perms = data
    a = rank_rdm(rdm(Z, "sqeuclidean"))
    bad = perms.copy()
    bad[0, 0] = bad[0, 1]
    with pytest.raises(ValueError, match="permutations"):
        permuted_rsa(a, a[None], bad)
