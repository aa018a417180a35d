"""MLE and TwoNN against scikit-dimension, an independent numpy TwoNN, and known manifolds."""

import warnings

import numpy as np
import pytest
import skdim
import torch
from scipy.spatial import cKDTree
from sklearn.datasets import make_swiss_roll

from lightning_dims import intrinsic_dimension
from lightning_dims.properties import MLE, DuplicateSamplesWarning, TwoNN


def linear_subspace(rng, n, d, ambient):
    basis = np.linalg.qr(rng.normal(size=(ambient, d)))[0]
    return rng.normal(size=(n, d)) @ basis.T


def sphere(rng, n, d):
    points = rng.normal(size=(n, d + 1))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def numpy_twonn(x: np.ndarray, discard_fraction: float = 0.0) -> float:
    """Facco et al. TwoNN, written independently with a k-d tree and numpy's least squares."""
    distances, _ = cKDTree(x).query(x, k=3)
    mu = np.sort(distances[:, 2] / distances[:, 1])
    n = len(mu)
    n_kept = min(n - 1, int(np.floor(n * (1 - discard_fraction))))
    log_mu = np.log(mu[:n_kept])[:, None]
    target = -np.log(1 - np.arange(1, n_kept + 1) / n)
    return float(np.linalg.lstsq(log_mu, target, rcond=None)[0][0])


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: linear_subspace(rng, 1500, 6, 40),
        lambda rng: sphere(rng, 1200, 3),
        lambda rng: rng.normal(size=(800, 25)),
    ],
    ids=["subspace", "sphere", "gaussian"],
)
def test_mle_matches_scikit_dimension(rng, make):
    x = make(rng)
    ours = intrinsic_dimension(x, "mle", k=20, unbiased=True)
    theirs = skdim.id.MLE(unbiased=True).fit(x, n_neighbors=20, comb="mle").dimension_
    assert float(ours) == pytest.approx(theirs, rel=1e-6)
    assert ours.n_samples == len(x) and ours.n_duplicates == 0 and ours.k == 20


def test_mle_float32_images_close_to_scikit_dimension(rng):
    images = rng.integers(0, 256, size=(600, 1, 12, 12)).astype(np.float32)
    ours = float(intrinsic_dimension(torch.from_numpy(images)))
    theirs = skdim.id.MLE(unbiased=True).fit(images.reshape(600, -1).astype(np.float64), n_neighbors=20, comb="mle").dimension_
    assert ours == pytest.approx(theirs, rel=1e-5)


@pytest.mark.parametrize("k", [20, 10])
def test_biased_normaliser_is_exactly_k_minus_1_over_k_minus_2(rng, k):
    x = linear_subspace(rng, 1000, 5, 30)
    unbiased = float(intrinsic_dimension(x, k=k, unbiased=True))
    biased = float(intrinsic_dimension(x, k=k, unbiased=False))
    assert biased / unbiased == pytest.approx((k - 1) / (k - 2), rel=1e-12)


@pytest.mark.parametrize("discard_fraction", [0.0, 0.1])
def test_twonn_matches_independent_numpy(rng, discard_fraction):
    x = sphere(rng, 1500, 4)
    ours = intrinsic_dimension(x, "twonn", discard_fraction=discard_fraction)
    assert float(ours) == pytest.approx(numpy_twonn(x, discard_fraction), rel=1e-9)
    assert ours.k == 2 and ours.options == {"discard_fraction": discard_fraction}


@pytest.mark.parametrize("discard_fraction", [0.1, 0.25])
@pytest.mark.parametrize(
    "make", [lambda rng: sphere(rng, 1500, 4), lambda rng: linear_subspace(rng, 1200, 7, 40)], ids=["sphere", "subspace"]
)
def test_twonn_matches_scikit_dimension(rng, make, discard_fraction):
    # skdim's TwoNN is Facco's linear fit with the same ECDF i/N (i = 1..N(1-f)); with f = 0 its
    # last target is -log(0), so it is compared at f > 0, where both drop the same largest ratios.
    x = make(rng)
    theirs = skdim.id.TwoNN(discard_fraction=discard_fraction).fit(x).dimension_
    assert float(intrinsic_dimension(x, "twonn", discard_fraction=discard_fraction)) == pytest.approx(theirs, rel=1e-9)
    assert numpy_twonn(x, discard_fraction) == pytest.approx(theirs, rel=1e-9)  # the numpy reference agrees too


KNOWN_MANIFOLDS = {
    "10-d linear subspace of R^200": (lambda rng: linear_subspace(rng, 4000, 10, 200), 10),
    "5-sphere in R^6": (lambda rng: sphere(rng, 4000, 5), 5),
    "swiss roll": (lambda rng: make_swiss_roll(4000, random_state=0)[0], 2),
}


@pytest.mark.parametrize("name", list(KNOWN_MANIFOLDS))
def test_mle_recovers_known_dimension_within_15_percent(rng, name):
    make, true_dimension = KNOWN_MANIFOLDS[name]
    estimate = float(intrinsic_dimension(make(rng), "mle", k=20))
    assert estimate == pytest.approx(true_dimension, rel=0.15)


def test_exact_duplicates_are_dropped_with_a_warning(rng):
    x = linear_subspace(rng, 2000, 8, 50)
    duplicated = np.concatenate([x, x[rng.choice(2000, 100, replace=False)]])  # 5% exact copies
    clean = float(intrinsic_dimension(x))
    with pytest.warns(DuplicateSamplesWarning, match="dropped 100 exact duplicate samples of 2100"):
        result = intrinsic_dimension(duplicated)
    assert result.n_duplicates == 100 and result.n_samples == 2000
    assert float(result) == pytest.approx(clean, rel=0.01)
    assert float(result) > 0  # never scikit-dimension's silent 0.0


def test_many_copies_of_one_sample_are_all_found(rng):
    x = rng.normal(size=(300, 6))
    x[100:160] = x[7]  # 60 copies: more than k + margin candidates
    with pytest.warns(DuplicateSamplesWarning, match="dropped 60"):
        result = intrinsic_dimension(x, k=10)
    assert result.n_samples == 240 and np.isfinite(float(result))


def test_scale_invariance(rng):
    x = linear_subspace(rng, 800, 4, 20)
    assert float(intrinsic_dimension(x * 37.5)) == pytest.approx(float(intrinsic_dimension(x)), rel=1e-9)


def test_estimator_api_is_scikit_dimension_like(rng):
    x = sphere(rng, 600, 2)
    mle = MLE(k=15).fit(x)
    assert mle.dimension_ == float(intrinsic_dimension(x, "mle", k=15))
    assert TwoNN().fit(x).dimension_ == float(intrinsic_dimension(x, "twonn"))


@pytest.mark.parametrize(
    "x, kwargs, message",
    [
        (np.random.default_rng(0).normal(size=(10, 3)), {"k": 20}, r"at least k \+ 1 = 21 samples"),
        (np.ones((2, 3)), {"estimator": "twonn"}, r"at least k \+ 1 = 3 samples"),
        (np.random.default_rng(0).normal(size=(50, 3)), {"estimator": "twonn", "k": 20}, "has no option"),
        (np.array([[0.0, np.inf]] * 30), {}, "NaN or inf"),
        (np.random.default_rng(0).normal(size=(50, 3)), {"estimator": "pca"}, "unknown estimator"),
    ],
)
def test_clear_errors(x, kwargs, message):
    with pytest.raises(ValueError, match=message):
        intrinsic_dimension(x, **kwargs)


def test_duplicates_leaving_too_few_distinct_samples_is_an_error():
    x = np.repeat(np.eye(5), 10, axis=0)  # 5 distinct samples, 50 rows
    with pytest.raises(ValueError, match="5 distinct of 50"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            intrinsic_dimension(x, k=20)


def test_too_few_samples_name_k_plus_one_and_few_samples_warn():
    from lightning_dims.properties import SmallSampleWarning

    with pytest.raises(ValueError, match=r"mle with k=20 neighbours needs at least k \+ 1 = 21 samples .* X has 2"):
        intrinsic_dimension(np.random.default_rng(0).normal(size=(2, 3)))
    x = np.random.default_rng(0).normal(size=(60, 8))
    with pytest.warns(SmallSampleWarning, match="N = 60 distinct samples with k = 20: below 5k = 100"):
        intrinsic_dimension(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallSampleWarning)
        intrinsic_dimension(x, k=12)  # 60 = 5 x 12: no warning
