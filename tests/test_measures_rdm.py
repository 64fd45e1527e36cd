"""RDMs pinned against scipy pdist and rsatoolbox."""

import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from alignpatterns.measures import permute_rdm, rdm

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.data import Dataset  # noqa: E402
from rsatoolbox.rdm import calc_rdm, calc_rdm_crossnobis  # noqa: E402


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return rng.standard_normal((15, 40)) + rng.standard_normal(40)


def _rsa_crossnobis(Xr):
    """rsatoolbox crossnobis of (stimuli, reps, units), rows shuffled on purpose."""
    n, R, P = Xr.shape
    order = np.random.default_rng(5).permutation(n * R)
    meas = Xr.reshape(n * R, P)[order]
    stim = np.repeat(np.arange(n), R)[order]
    rep = np.tile(np.arange(R), n)[order]
    ds = Dataset(meas, obs_descriptors={"stim": stim, "rep": rep})
    return calc_rdm_crossnobis(ds, "stim", cv_descriptor="rep").get_vectors()[0]


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean", "sqeuclidean"])
def test_matches_pdist(X, metric):
    out = rdm(X, metric)
    assert out.dtype == np.float64
    assert out.shape == (15 * 14 // 2,)
    np.testing.assert_allclose(out, pdist(X, metric), rtol=1e-10, atol=1e-10)


def test_matches_rsatoolbox(X):
    ds = Dataset(X)
    corr = calc_rdm(ds, method="correlation").get_vectors()[0]
    np.testing.assert_allclose(rdm(X, "correlation"), corr, atol=1e-10)
    # rsatoolbox's 'euclidean' is squared Euclidean divided by the number of units
    eucl = calc_rdm(ds, method="euclidean").get_vectors()[0]
    np.testing.assert_allclose(rdm(X, "sqeuclidean") / X.shape[1], eucl, atol=1e-10)


def test_float32_input_gives_float64(X):
    out = rdm(X.astype(np.float32), "euclidean")
    assert out.dtype == np.float64


# rsatoolbox's crossnobis emits a harmless numpy cast warning
RSA_CAST = pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")


@RSA_CAST
@pytest.mark.parametrize("R", [2, 3, 5])
def test_crossnobis_matches_rsatoolbox(R):
    rng = np.random.default_rng(R)
    n, P = 9, 30
    Xr = rng.standard_normal((n, 1, P)) * 2 + rng.standard_normal((n, R, P)) + 5.0
    np.testing.assert_allclose(rdm(Xr, "crossnobis"), _rsa_crossnobis(Xr), atol=1e-10)


def test_crossnobis_is_unbiased_for_noise():
    # pure noise: crossnobis averages to ~0, the squared distance of means does not
    rng = np.random.default_rng(1)
    Xr = rng.standard_normal((20, 4, 200))
    cn = rdm(Xr, "crossnobis")
    sq = rdm(Xr.mean(axis=1), "sqeuclidean") / 200
    assert abs(cn.mean()) < 0.02
    assert sq.mean() > 0.4


@RSA_CAST
def test_crossnobis_nan_repetitions_use_shared_repetitions():
    rng = np.random.default_rng(2)
    n, R, P = 6, 4, 12
    Xr = rng.standard_normal((n, R, P)) + rng.standard_normal((n, 1, P))
    Xn = Xr.copy()
    Xn[0, 3] = np.nan  # stimulus 0 lacks rep 3
    Xn[1, 0] = np.nan  # stimulus 1 lacks rep 0
    Xn[2, 1, 5] = np.nan  # a partial NaN drops the whole repetition
    out = squareform(rdm(Xn, "crossnobis"))
    valid = ~np.isnan(Xn).any(axis=2)
    for i in range(n):
        for j in range(i + 1, n):
            shared = valid[i] & valid[j]
            ref = _rsa_crossnobis(Xr[[i, j]][:, shared])
            np.testing.assert_allclose(out[i, j], ref[0], atol=1e-10, err_msg=f"pair {i},{j}")
    # complete pairs are unaffected by the NaNs elsewhere
    np.testing.assert_allclose(out[3:, 3:], squareform(rdm(Xr, "crossnobis"))[3:, 3:], atol=1e-12)


def test_crossnobis_too_few_shared_repetitions():
    rng = np.random.default_rng(3)
    Xr = rng.standard_normal((4, 3, 5))
    Xr[0, :2] = np.nan
    with pytest.raises(ValueError, match="share"):
        rdm(Xr, "crossnobis")


def test_permute_rdm_matches_squareform(X):
    d = rdm(X, "euclidean")
    perm = np.random.default_rng(4).permutation(X.shape[0])
    expected = squareform(squareform(d)[np.ix_(perm, perm)])
    np.testing.assert_array_equal(permute_rdm(d, perm), expected)
    np.testing.assert_allclose(permute_rdm(d, perm), rdm(X[perm], "euclidean"), atol=1e-12)
    stacked = permute_rdm(np.stack([d, 2 * d]), perm)
    np.testing.assert_array_equal(stacked[1], 2 * expected)


@pytest.mark.parametrize(
    ("bad", "metric", "match"),
    [
        (np.zeros((5,)), "euclidean", "2-D"),
        (np.ones((5, 2, 3)), "euclidean", "2-D"),
        (np.ones((5, 3)), "crossnobis", "3-D"),
        (np.arange(6.0).reshape(2, 3), "euclidean", "at least 3 stimuli"),
        (np.ones((2, 3, 4)), "crossnobis", "at least 3 stimuli"),
        (np.ones((4, 1, 4)), "crossnobis", "2 repetitions"),
        (np.array([[1.0, np.nan], [2, 3], [4, 5]]), "correlation", "non-finite"),
        (np.array([[1.0, np.inf], [2, 3], [4, 5]]), "sqeuclidean", "non-finite"),
        (np.array([[1.0, 1, 1], [2, 3, 1], [4, 5, 0]]), "correlation", "constant"),
        (np.array([[0.0, 0, 0], [2, 3, 1], [4, 5, 0]]), "cosine", "zeros"),
        (np.ones((4, 3)), "manhattan", "unknown"),
    ],
)
def test_errors(bad, metric, match):
    with pytest.raises(ValueError, match=match):
        rdm(bad, metric)


def test_crossnobis_rejects_inf():
    Xr = np.random.default_rng(0).standard_normal((4, 3, 5))
    Xr[1, 1, 1] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        rdm(Xr, "crossnobis")


def test_import_does_not_import_torch():
    code = "import sys, alignpatterns.measures, alignpatterns.measures.ceilings; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _crossnobis_data(seed=3):
    rng = np.random.default_rng(seed)
    Xr = rng.standard_normal((9, 4, 30)) + rng.standard_normal((9, 1, 30))
    Xr[2, 1, :] = np.nan  # a missing repetition
    return Xr


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean", "sqeuclidean"])
def test_chunked_equals_unchunked(X, metric):
    np.testing.assert_allclose(
        rdm(X, metric, chunk_size=7), rdm(X, metric), rtol=1e-12, atol=1e-12
    )


def test_crossnobis_chunked_equals_unchunked():
    Xr = _crossnobis_data()
    np.testing.assert_allclose(
        rdm(Xr, "crossnobis", chunk_size=4), rdm(Xr, "crossnobis"), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean", "sqeuclidean"])
def test_torch_backend_equals_numpy(X, metric):
    pytest.importorskip("torch")
    np.testing.assert_allclose(
        rdm(X, metric, backend="torch_cpu", chunk_size=11),
        rdm(X, metric, backend="numpy"),
        rtol=1e-10,
        atol=1e-12,
    )


def test_torch_crossnobis_equals_numpy():
    pytest.importorskip("torch")
    Xr = _crossnobis_data()
    np.testing.assert_allclose(
        rdm(Xr, "crossnobis", backend="torch_cpu"),
        rdm(Xr, "crossnobis", backend="numpy"),
        rtol=1e-10,
        atol=1e-12,
    )


def test_memmap_input_memory_is_bounded(tmp_path):
    import tracemalloc

    n, p, chunk = 40, 20_000, 500
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(n, p))
    mm[:] = np.random.default_rng(1).standard_normal((n, p)).astype(np.float32)
    mm.flush()
    X = np.load(tmp_path / "x.npy", mmap_mode="r")
    tracemalloc.start()
    out = rdm(X, "correlation", backend="numpy", chunk_size=chunk)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # a float64 copy of X would be 6.4 MB; chunks need ~n * chunk * 8 * (a few copies)
    assert peak < 8 * n * chunk * 6 + 8 * n * n * 4
    np.testing.assert_allclose(out, pdist(np.asarray(X, dtype=np.float64), "correlation"), atol=1e-10)


def test_bad_values_are_located():
    X = np.random.default_rng(0).standard_normal((5, 30))
    X[3, 17] = np.nan
    with pytest.raises(ValueError, match=r"index \(3, 17\)"):
        rdm(X, "euclidean", chunk_size=4)
    with pytest.raises(ValueError, match="unknown backend"):
        rdm(X[:, :3], "euclidean", backend="jax")


def test_auto_backend_does_not_import_torch_without_a_gpu_driver():
    from alignpatterns.measures._backend import _nvidia_driver_present

    if _nvidia_driver_present():
        pytest.skip("an NVIDIA driver is present: 'auto' may use CUDA here")
    code = (
        "import sys, numpy as np\n"
        "from alignpatterns.measures import RidgeCV, linear_cka, rdm\n"
        "X = np.random.default_rng(0).standard_normal((12, 5))\n"
        "RidgeCV([1.0, 10.0], cv=3).fit(X, X[:, :2]); rdm(X, 'euclidean'); linear_cka(X, X)\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
