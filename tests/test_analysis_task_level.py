"""Inference with the task as the unit: each statistic against a hand computation, and the verdicts
on the stored 25-run reproduction (issue 18: runs of one task are not independent evidence about
the task's K_F)."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lightning_dims.analysis.analyse import analyse
from lightning_dims.analysis.findings import findings
from lightning_dims.analysis.paper import ComparisonRow, OurValue, domain_ratio
from lightning_dims.analysis.rows import MIN_TEST_IMAGES, rows_from_records
from lightning_dims.analysis.stats import (
    fit_weighted_line,
    geometric_mean_ratio,
    group_bootstrap,
    group_means,
    weighted_mean,
    weighted_pearson,
)
from tests.helpers.analysis_records import law_record

RECORDS = Path(__file__).resolve().parents[1] / "docs" / "reproduction" / "2026-11-29" / "records"


def test_weighted_fit_matches_the_normal_equations():
    x, y, se = np.array([1.0, 2, 3, 4, 5]), np.array([1.1, 1.9, 3.4, 3.9, 5.3]), np.array([0.1, 0.3, 0.2, 0.5, 0.1])
    fit = fit_weighted_line(x, y, se)
    design = np.column_stack([np.ones(5), x])
    w = np.diag(1 / se**2)
    normal = np.linalg.inv(design.T @ w @ design)
    intercept, slope = normal @ design.T @ w @ y
    chi2 = float((y - design @ [intercept, slope]) @ w @ (y - design @ [intercept, slope]))
    scale = max(1.0, chi2 / 3)
    t = stats.t.ppf(0.975, 3)
    assert (fit.slope, fit.intercept) == pytest.approx((slope, intercept), rel=1e-12)
    assert fit.slope_se == pytest.approx(math.sqrt(scale * normal[1, 1]), rel=1e-12)
    assert fit.slope_ci == pytest.approx((slope - t * fit.slope_se, slope + t * fit.slope_se), rel=1e-12)
    assert fit.intercept_ci[1] - intercept == pytest.approx(t * math.sqrt(scale * normal[0, 0]), rel=1e-12)
    assert fit.mean_se_at(2.5) ** 2 == pytest.approx(scale * np.array([1, 2.5]) @ normal @ [1, 2.5], rel=1e-12)
    noisy = fit_weighted_line(x, y, se * 1e-3)  # the points scatter more than their SEs say: the scale takes over
    assert noisy.slope == pytest.approx(slope, rel=1e-9) and noisy.residual_sd > 1
    assert noisy.slope_se == pytest.approx(fit.slope_se, rel=1e-6) if scale > 1 else noisy.slope_se > fit.slope_se * 1e-3


def test_an_uninformative_point_hardly_moves_the_weighted_slope():
    x, y = [1.0, 2, 3, 4], [1.0, 2.0, 3.0, 40.0]
    assert fit_weighted_line(x, y, [0.1, 0.1, 0.1, 100.0]).slope == pytest.approx(1.0, abs=0.01)
    assert stats.linregress(x, y).slope > 10  # unweighted, the one wild point decides


def test_whole_task_bootstrap_resamples_tasks_as_written_by_hand():
    x = np.array([1.0, 1, 2, 2, 2, 3, 3, 4, 5, 5])
    y = np.array([0.3, 0.5, 0.9, 1.4, 1.0, 1.2, 2.5, 1.9, 2.2, 3.1])
    tasks = ["a", "a", "b", "b", "b", "c", "c", "d", "e", "e"]
    result = group_bootstrap(weighted_pearson, (x, y), tasks, resamples=2000, seed=7)
    keys = ["a", "b", "c", "d", "e"]
    drawn = np.random.default_rng(7).integers(0, 5, size=(2000, 5))  # the same draws, one resample at a time
    by_hand = []
    for row in drawn:
        chosen = np.concatenate([np.flatnonzero(np.array(tasks) == keys[g]) for g in row])
        if np.ptp(x[chosen]) == 0:
            continue  # one task drawn five times: r undefined
        by_hand.append(stats.pearsonr(x[chosen], y[chosen]).statistic)
    assert result.undefined == 2000 - len(by_hand)
    assert result.ci == pytest.approx(tuple(np.percentile(by_hand, [2.5, 97.5])), rel=1e-9)
    mean = group_bootstrap(weighted_mean, (y,), tasks, resamples=500, seed=1)
    assert mean.n_groups == 5 and mean.n_points == 10 and mean.undefined == 0


def test_group_means_give_one_point_per_task():
    keys, means = group_means([1.0, 3.0, 10.0, 4.0], ["b", "b", "a", "a"])
    assert keys == ["b", "a"] and means.tolist() == [2.0, 7.0]


def test_ratio_of_geometric_means_with_welch_interval_by_hand():
    medical, natural = [2.33, 2.76, 1.9], [0.94, 1.32]
    ratio = geometric_mean_ratio(medical, natural)
    la, lb = np.log(medical), np.log(natural)
    va, vb = la.var(ddof=1) / 3, lb.var(ddof=1) / 2
    dof = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 1)
    half = stats.t.ppf(0.975, dof) * math.sqrt(va + vb)
    difference = la.mean() - lb.mean()
    assert ratio.ratio == pytest.approx(math.exp(difference), rel=1e-12) and ratio.dof == pytest.approx(dof, rel=1e-12)
    assert ratio.ci == pytest.approx((math.exp(difference - half), math.exp(difference + half)), rel=1e-12)


def value(dataset, domain, k_f, m=1000, task=None):
    return OurValue(dataset, task or dataset, domain, 1750, m, 10.0, k_f, "224px-1ch-max255", "measure")


def test_the_domain_ratio_counts_each_dataset_once_at_one_m():
    rows = [ComparisonRow("x", None, (value("mnist", "natural", 1.0, task="mnist 6 vs 7"), value("mnist", "natural", 3.0, task="mnist 4 vs 5"),
                                      value("fashion", "natural", 1.0), value("pneumonia", "medical", 4.0),
                                      value("brain", "medical", 4.0), value("breast", "medical", 9.0, m=280)))]
    ratio = domain_ratio(rows)
    assert ratio.m == 1000 and ratio.left_out == (("breast", 280),)  # K_F grows with M: not mixed in
    assert ratio.natural == (("fashion", 1.0), ("mnist", 2.0))  # MNIST's two tasks are one dataset
    assert ratio.ratio.ratio == pytest.approx(4.0 / math.sqrt(2.0), rel=1e-12)
    assert (ratio.ratio.n_numerator, ratio.ratio.n_denominator) == (2, 2)


def test_runs_tested_on_too_few_images_are_skipped_and_named():
    small = {**law_record("small", "a", "natural", 100, 4, 1e-3), "n_test": MIN_TEST_IMAGES - 1}
    enough = {**law_record("enough", "a", "natural", 200, 4, 1e-3), "n_test": MIN_TEST_IMAGES}
    rows, skips = rows_from_records([small, enough])
    assert [r.run_id for r in rows] == ["enough"]
    assert [(s.what, s.scope) for s in skips] == [("run", "small")] and f"floor of {MIN_TEST_IMAGES}" in skips[0].why


@pytest.fixture(scope="module")
def stored():
    records = [json.loads(p.read_text()) for p in sorted(RECORDS.glob("*.record.json"))]
    return {ref: findings(analyse(records, ref_n=ref)) for ref in (1200, 150)}


def test_the_stored_fgsm_finding_is_judged_at_the_task_level(stored):
    fgsm = next(f for f in stored[1200] if f.claim == "FGSM penalty rises with K_F")
    assert not fgsm.holds  # 0.87 over 20 runs is 0.88 [-0.01, 0.99] over 5 tasks
    assert "over 5 tasks of 4 datasets (20 runs)" in fgsm.text and "task-level Pearson r = 0.88 [-0.01, 0.99]" in fgsm.text
    assert "whole-task bootstrap of the run-level r [-0.21, 1.00]" in fgsm.text
    assert "partial r given the clean test loss 0.12 [-0.95, 0.97]" in fgsm.text


def test_no_stored_finding_calls_a_slope_outside_the_law_holds(stored):
    for finding in stored[1200] + stored[150]:
        if "the law's value is rejected" in finding.text:
            assert "This holds" not in finding.text and not finding.holds
        assert re.search(r"\d+ tasks", finding.text) and re.search(r"\d+ runs", finding.text), finding.text
