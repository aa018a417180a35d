"""The report's statistics against hand computations and independent formulas (values, not ranges)."""

import math

import numpy as np
import pytest
from scipy import stats

from lightning_dims.analysis.stats import FitError, correlate, fit_line, partial_correlation, proportion


def test_line_fit_and_its_t_intervals_match_a_hand_computation():
    # x = 1..4, y = 1, 3, 2, 5: slope 5.5 / 5 = 1.1, intercept 0, residuals -0.1, 0.8, -1.3, 0.6 (SSR 2.7)
    fit = fit_line([1, 2, 3, 4], [1, 3, 2, 5])
    t = 4.302652729911275  # t_{0.975, 2}
    se_slope = math.sqrt(2.7 / 2 / 5)
    se_intercept = math.sqrt(2.7 / 2 * (1 / 4 + 2.5**2 / 5))
    assert fit.slope == pytest.approx(1.1, abs=1e-12) and fit.intercept == pytest.approx(0.0, abs=1e-12)
    assert fit.slope_ci == pytest.approx((1.1 - t * se_slope, 1.1 + t * se_slope), rel=1e-9)
    assert fit.intercept_ci == pytest.approx((-t * se_intercept, t * se_intercept), rel=1e-9)
    assert fit.r2 == pytest.approx(1 - 2.7 / 8.75, rel=1e-12)  # SST = sum (y - 2.75)^2 = 8.75
    mean, interval = fit.mean_at(2.5)  # at the mean of x the interval is s / sqrt(n)
    half = t * math.sqrt(2.7 / 2) / 2
    assert mean == pytest.approx(2.75) and interval == pytest.approx((2.75 - half, 2.75 + half), rel=1e-9)


def test_line_fit_refuses_what_has_no_uncertainty():
    with pytest.raises(FitError, match="needs at least 3"):
        fit_line([1, 2], [3, 4])
    with pytest.raises(FitError, match="same x"):
        fit_line([2, 2, 2], [1, 2, 3])


def test_pearson_interval_is_fishers_and_spearman_is_scipys(rng):
    x = rng.normal(size=30)
    y = 0.6 * x + rng.normal(size=30)
    c = correlate(x, y)
    r = float(np.corrcoef(x, y)[0, 1])
    half = 1.959963984540054 / math.sqrt(30 - 3)
    assert c.pearson == pytest.approx(r, rel=1e-12)
    assert c.pearson_ci == pytest.approx((math.tanh(math.atanh(r) - half), math.tanh(math.atanh(r) + half)), rel=1e-9)
    ranks_x, ranks_y = stats.rankdata(x), stats.rankdata(y)
    assert c.spearman == pytest.approx(float(np.corrcoef(ranks_x, ranks_y)[0, 1]), rel=1e-12)
    assert c.spearman_ci[0] < c.spearman < c.spearman_ci[1] and c.note is None


def test_a_monotone_relation_has_rank_interval_one_and_too_few_points_say_why():
    x = np.arange(30.0)
    c = correlate(x, np.exp(x / 10))
    assert c.spearman == 1.0 and c.spearman_ci == (1.0, 1.0)
    few = correlate([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])  # resamples with one value repeat often
    assert few.spearman_ci == (None, None) and "constant" in few.note
    with pytest.raises(FitError, match="at least 4"):
        correlate([1, 2, 3], [1, 2, 3])


def test_partial_correlation_matches_the_correlation_matrix_formula(rng):
    z = rng.normal(size=40)
    x = z + 0.5 * rng.normal(size=40)
    y = z + 0.3 * x + 0.5 * rng.normal(size=40)
    result = partial_correlation(x, y, z, covariate="z")
    r = np.corrcoef([x, y, z])
    expected = (r[0, 1] - r[0, 2] * r[1, 2]) / math.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))
    assert result.r == pytest.approx(expected, rel=1e-10)
    half = 1.959963984540054 / math.sqrt(40 - 4)
    assert result.ci == pytest.approx((math.tanh(math.atanh(expected) - half), math.tanh(math.atanh(expected) + half)), rel=1e-9)
    t = expected * math.sqrt(37 / (1 - expected**2))
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(t), 37), rel=1e-9)


def test_partial_correlation_removes_a_shared_cause():
    z = np.linspace(0, 1, 50)
    wiggle = np.sin(np.arange(50.0))  # independent of z and of the other wiggle
    x, y = z + 0.01 * wiggle, 2 * z + 0.01 * np.cos(np.arange(50.0) * 2.3)
    assert correlate(x, y).pearson > 0.99
    assert abs(partial_correlation(x, y, z).r) < 0.3


def test_proportion_interval_is_clopper_pearson():
    p = proportion(20, 20)
    assert p.fraction == 1.0 and p.ci == pytest.approx((0.025 ** (1 / 20), 1.0), rel=1e-9)
    half = proportion(5, 10)
    assert half.ci == pytest.approx((stats.beta.ppf(0.025, 5, 6), stats.beta.ppf(0.975, 6, 5)), rel=1e-9)
