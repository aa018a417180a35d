"""The random-effects meta-regression against metafor's published numbers and a brute-force REML."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lightning_dims.analysis.meta import MetaRegression, random_effects
from tests.helpers.meta_reference import bcg_log_risk_ratios, brute_force

def test_bcg_against_metafor_published_and_brute_force():
    ablat, yi, se = bcg_log_risk_ratios()
    fit = random_effects(ablat, yi, se, labels=[f"trial {i + 1}" for i in range(13)])
    # metafor: rma(yi, vi, mods = ~ ablat, data = dat, test = "knha") (REML), printed to 4 decimals
    # (metafor documentation, meta-regression example on dat.bcg; Viechtbauer 2010, J. Stat. Softw. 36(3)):
    # tau^2 0.0764; intrcpt 0.2515 (se 0.2839, CI -0.3733 .. 0.8764); ablat -0.0291 (se 0.0082, CI -0.0472 .. -0.0110).
    assert fit.tau2 == pytest.approx(0.0764, abs=1e-4)
    assert fit.intercept == pytest.approx(0.2515, abs=1e-4)
    assert fit.slope == pytest.approx(-0.0291, abs=1e-4)
    assert np.sqrt(np.diag(fit.cov)) == pytest.approx([0.2839, 0.0082], abs=1e-4)
    assert fit.slope_interval() == pytest.approx((-0.0472, -0.0110), abs=1e-4)
    assert fit.df == 11 and fit.n == 13

    tau2, beta, cov = brute_force(ablat, yi, se)
    assert fit.tau2 == pytest.approx(tau2, rel=1e-4)
    assert [fit.intercept, fit.slope] == pytest.approx(beta, rel=1e-5)
    assert fit.cov == pytest.approx(cov, rel=1e-4)

    w = 1 / (se**2 + tau2)
    assert fit.weights == pytest.approx(w / w.sum(), rel=1e-4)
    assert fit.weights.sum() == pytest.approx(1.0)
    assert fit.heaviest == f"trial {int(np.argmax(w)) + 1}"
    assert fit.max_weight_share == pytest.approx((w / w.sum()).max(), rel=1e-4)

    t = stats.t.ppf(0.975, 11)
    design = np.array([1.0, 30.0])
    mean, (low, high) = fit.predict(30.0)
    assert mean == pytest.approx(beta[0] + 30 * beta[1], rel=1e-5)
    assert high - mean == pytest.approx(t * np.sqrt(design @ cov @ design + tau2), rel=1e-4)
    _, (low_line, high_line) = fit.predict(30.0, new_task=False)
    assert high_line - mean == pytest.approx(t * np.sqrt(design @ cov @ design), rel=1e-4)
    assert fit.slope_p() == pytest.approx(2 * stats.t.sf(abs(beta[1]) / np.sqrt(cov[1, 1]), 11), rel=1e-3)


def test_homogeneous_points_give_tau_zero_and_the_wls_line():
    """Points on a line with tiny errors: no between-task variance, the slope is the line's."""
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    y = 2.0 + 0.5 * x + np.array([0.01, -0.01, 0.0, 0.01, -0.01])
    fit = random_effects(x, y, np.full(5, 0.1))
    assert isinstance(fit, MetaRegression)
    assert fit.tau2 == pytest.approx(0.0, abs=1e-8)
    assert fit.slope == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-9)
    assert fit.labels == ("0", "1", "2", "3", "4")


@pytest.mark.parametrize(("x", "se", "message"), [
    ([1.0, 2.0], [0.1, 0.1], "at least 3"),
    ([1.0, 1.0, 1.0], [0.1, 0.1, 0.1], "same x"),
    ([1.0, 2.0, 3.0], [0.1, 0.0, 0.1], "standard error"),
])
def test_refusals_say_why(x, se, message):
    with pytest.raises(ValueError, match=message):
        random_effects(x, np.arange(len(x), dtype=float), se)
