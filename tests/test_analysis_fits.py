"""Scaling-law fits against numpy/scipy and against rows generated from a known law."""

import math

import numpy as np
import pytest
from scipy import stats

from lightning_dims.analysis.fits import (
    correlate,
    domain_gap,
    fit_line,
    generalization_fits,
    representation_summary,
    required_training_size,
    robustness_fits,
)


def test_fit_line_matches_scipy(rng):
    x = rng.normal(size=40)
    y = 2.5 - 0.7 * x + rng.normal(scale=0.1, size=40)
    fit = fit_line(x, y)
    reference = stats.linregress(x, y)
    assert fit.slope == pytest.approx(reference.slope, rel=1e-12)
    assert fit.intercept == pytest.approx(reference.intercept, rel=1e-12)
    assert fit.slope_stderr == pytest.approx(reference.stderr, rel=1e-9)
    assert fit.r2 == pytest.approx(reference.rvalue**2, rel=1e-9)


def test_correlations_match_scipy_and_bootstrap_ci_brackets_them(rng):
    x = rng.normal(size=60)
    y = x + rng.normal(scale=0.5, size=60)
    y[3] = y[4]  # a tie for the rank correlation
    result = correlate(x, y, n_bootstrap=500)
    assert result.pearson == pytest.approx(stats.pearsonr(x, y)[0], rel=1e-12)
    assert result.spearman == pytest.approx(stats.spearmanr(x, y)[0], rel=1e-12)
    assert result.pearson_ci[0] < result.pearson < result.pearson_ci[1]
    assert result.spearman_ci[0] < result.spearman < result.spearman_ci[1]


def law_rows(domain, k_f, d_values, sizes, rng, noise=0.0):
    """Runs obeying log L = log K_F - log N / d + 3 exactly (plus optional noise)."""
    return [
        {
            "domain": domain,
            "arch": "resnet18",
            "dataset": f"{domain}-{d}",
            "train_size": n,
            "d_data": d,
            "label_sharpness": k_f,
            "test_loss": math.exp(math.log(k_f) - math.log(n) / d + 3 + noise * rng.normal()),
        }
        for d in d_values
        for n in sizes
    ]


def test_generalization_fits_recover_the_law_and_the_k_f_gap(rng):
    rows = law_rows("medical", 3e-4, [6, 10, 16], [500, 1000, 1750], rng) + law_rows(
        "natural", 1e-4, [9, 12, 18], [500, 1000, 1750], rng
    )
    fits = generalization_fits(rows)
    for domain in ("medical", "natural"):
        law = fits[(domain,)]["log_loss_vs_log_n_over_d_data"]
        assert law["slope"] == pytest.approx(-1.0, abs=1e-9) and law["r2"] == pytest.approx(1.0)
        assert fits[(domain,)]["log_loss_vs_d_data"]["slope"] > 0  # more dimensions, more loss
    gap = domain_gap(fits)
    assert gap["intercept_gap"] == pytest.approx(math.log(3.0), rel=1e-9)
    assert gap["log_label_sharpness_ratio"] == pytest.approx(math.log(3.0), rel=1e-12)


def test_required_training_size_inverts_the_law(rng):
    law = generalization_fits(law_rows("medical", 2e-4, [5, 8, 11], [400, 800, 1600], rng))[("medical",)]
    law = law["log_loss_vs_log_n_over_d_data"]
    target = math.exp(math.log(2e-4) - math.log(1200) / 8 + 3)
    assert required_training_size(law, d_data=8, target_loss=target) == pytest.approx(1200, rel=1e-6)
    with pytest.raises(ValueError, match="does not decrease"):
        required_training_size({"slope": 0.2, "intercept": 0.0}, 8, 0.1)


def test_groups_without_enough_runs_are_skipped(rng):
    rows = law_rows("medical", 1e-4, [7], [500, 1000], rng)  # two runs
    assert generalization_fits(rows) == {}


def test_robustness_and_representation_summaries(rng):
    rows = []
    for i, k_f in enumerate(np.linspace(1e-4, 4e-4, 12)):
        rows.append({"arch": "resnet18" if i % 2 else "vgg16", "label_sharpness": k_f,
                     "loss_penalty": 1000 * k_f + 0.01 * rng.normal(), "d_repr": 5.0 + i, "d_data": 10.0})
    pooled = robustness_fits(rows)[()]
    assert pooled["pearson"] > 0.95 and pooled["n"] == 12
    assert set(robustness_fits(rows, by=("arch",))) == {("resnet18",), ("vgg16",)}
    summary = representation_summary(rows)
    assert summary == {"n_runs": 12, "fraction_below": 6 / 12}
