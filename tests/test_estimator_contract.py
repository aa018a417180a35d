"""The contract every registered intrinsic-dimension estimator keeps (runs over the registry, so a new
estimator is checked the moment it is registered): scikit-dimension's API, its own options, NaN
refused, duplicates dropped, invariance to scale, and equality with an independent reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import skdim

from lightning_dims.properties import (
    ESTIMATORS,
    DuplicateSamplesWarning,
    intrinsic_dimension,
    make_estimator,
)

REFERENCES = {
    "mle": lambda x: skdim.id.MLE(unbiased=True).fit(x, n_neighbors=20, comb="mle").dimension_,
    "twonn": lambda x: skdim.id.TwoNN(discard_fraction=0.1).fit(x).dimension_,
}
"""estimator -> (its scikit-dimension equivalent at the options below). A new estimator needs one."""

REFERENCE_OPTIONS = {"mle": {"k": 20}, "twonn": {"discard_fraction": 0.1}}


def points(seed: int = 0, n: int = 600, d: int = 5, ambient: int = 12) -> np.ndarray:
    """A d-dimensional Gaussian linearly embedded in R^ambient (float64)."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, ambient))


@pytest.fixture(params=sorted(ESTIMATORS))
def name(request) -> str:
    return request.param


def test_fit_returns_self_and_sets_dimension(name):
    estimator = make_estimator(name)
    assert estimator.fit(points()) is estimator
    assert estimator.dimension_ == estimator.result_.dimension and estimator.result_.estimator == name
    assert set(estimator.options()) == set(type(estimator).option_names())


def test_options_belong_to_their_estimator(name):
    with pytest.raises(ValueError, match=f"estimator '{name}' has no option"):
        make_estimator(name, no_such_option=1)
    assert make_estimator(name, **REFERENCE_OPTIONS[name]).options() == {
        **make_estimator(name).options(),
        **REFERENCE_OPTIONS[name],
    }


def test_nan_and_inf_are_refused(name):
    x = points()
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        intrinsic_dimension(x, name)


def test_duplicates_are_dropped_with_a_count(name):
    x = points()
    clean = float(intrinsic_dimension(x, name))
    with pytest.warns(DuplicateSamplesWarning, match="dropped 40"):
        result = intrinsic_dimension(np.concatenate([x, x[:40]]), name)
    assert result.n_duplicates == 40 and float(result) == pytest.approx(clean, rel=1e-9)


def test_invariant_to_a_global_scale(name):
    x = points()
    assert float(intrinsic_dimension(x * 123.0, name)) == pytest.approx(float(intrinsic_dimension(x, name)), rel=1e-9)


def test_equal_to_its_independent_reference(name):
    assert name in REFERENCES, f"register a scikit-dimension (or brute-force) reference for estimator {name!r}"
    x = points(seed=1, n=800)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = float(REFERENCES[name](x))
    ours = float(intrinsic_dimension(x, name, **REFERENCE_OPTIONS[name]))
    assert ours == pytest.approx(reference, rel=1e-6)
