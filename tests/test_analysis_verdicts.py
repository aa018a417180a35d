"""Verdicts across tasks: three states, leave one task out, Holm over exploratory scopes, the law's value at
the measured d_data, seed-to-seed reliability, permutation p and power, each against an independent computation."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from statsmodels.stats.multitest import multipletests

from lightning_dims.analysis.analyse import analyse
from lightning_dims.analysis.findings import findings, sharpness_makes_fragile
from lightning_dims.analysis.health import excluded_runs
from lightning_dims.analysis.laws import _across, law_loss_slope
from lightning_dims.analysis.reliability import intraclass
from lightning_dims.analysis.robustness import PenaltyScope, adjust_exploratory
from lightning_dims.analysis.rows import rows_from_records
from lightning_dims.analysis.scopes import ALPHA, law_scopes
from lightning_dims.analysis.stats import Correlation, permutation_p
from lightning_dims.analysis.verdicts import CONSISTENT, REJECTED, UNINFORMATIVE, state_of, tasks_for_power, verdict
from tests.helpers.analysis_records import law_record
from tests.helpers.meta_reference import brute_force


def test_three_states_and_the_direction():
    assert state_of((0.2, 1.5), 1.0) == CONSISTENT
    assert state_of((-0.5, 2.0), 1.0) == UNINFORMATIVE  # holds both 0 and the law's value
    assert state_of((-3.0, -0.1), 1.0) == REJECTED and state_of((1.5, 6.0), 1.0) == REJECTED
    assert state_of((-0.5, 0.7), 1.0) == REJECTED  # excludes the law's value, though it holds 0
    assert state_of((1.0 + 2e-13, 1.0 + 3e-13), 1.0) == CONSISTENT  # an exact fit: width 0 at the law's value


# Six tasks on y = x with small errors, one far-off task with a tiny error: random effects, not 1/SE^2,
# decide how much it weighs. Datasets: three, so the clustered check can be made.
X = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
Y = np.array([0.1, 0.9, 2.2, 2.8, 4.1, 5.0, -2.0])
SE = np.array([0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.01])
TASKS = ["a", "b", "c", "d", "e", "f", "outlier"]
DATASETS = ["one", "one", "two", "two", "three", "three", "three"]


def test_the_primary_across_task_fit_is_random_effects_not_the_scaled_weighted_line():
    fit = _across("resnet18", "x", "y", [(t, x, y, se, 2, d) for t, x, y, se, d in zip(TASKS, X, Y, SE, DATASETS)], [])
    tau2, beta, cov = brute_force(X, Y, SE)
    primary = fit.verdict.primary
    assert primary.tau2 == pytest.approx(tau2, rel=1e-3)
    assert primary.slope == pytest.approx(beta[1], rel=1e-4)
    assert primary.slope_interval()[1] - primary.slope == pytest.approx(stats.t.ppf(0.975, 5) * math.sqrt(cov[1, 1]), rel=1e-3)
    w = 1 / SE**2  # the sensitivity line: 1/SE^2, where the outlier carries almost all the weight
    assert fit.fit.slope == pytest.approx(np.polyfit(X, Y, 1, w=np.sqrt(w))[0], rel=1e-9)
    assert abs(fit.fit.slope - primary.slope) > 0.1
    assert fit.verdict.by_dataset is not None and fit.verdict.by_dataset.n_clusters == 3


def test_leave_one_out_names_the_task_the_verdict_hinges_on():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 10.0])
    y = np.array([0.3, -0.2, 0.1, -0.3, 0.2, 9.0])  # flat, except one far task that makes the slope
    judged = verdict(x, y, np.full(6, 0.2), list("abcdef"), list("uvwxyz"), 1.0, "the law's slope")
    assert judged.direction == "holds"
    loo = judged.leave_one_out
    assert loo is not None and loo.hinges == ("f",)
    without_f = verdict(x[:5], y[:5], np.full(5, 0.2), list("abcde"), list("uvwxy"), 1.0, "the law's slope")
    assert loo.low == pytest.approx(without_f.primary.slope, rel=1e-9)
    assert dict((t, st) for t, _, _, st, _ in loo.without)["f"] == without_f.state


def _scope(name: str, p: float | None) -> PenaltyScope:
    correlation = None if p is None else Correlation(0.5, (0.1, 0.8), p, 0.5, (0.1, 0.8), p, 10, 0.95, None, p)
    return PenaltyScope("resnet18", name, 10, 5, correlation, None, None, correlation, None, None)


def test_exploratory_scopes_are_holm_adjusted_and_the_primary_is_not():
    raw = {"domain medical": 0.04, "domain natural": 0.01, "N = 100": 0.03, "N = 250": 0.20, "N = 600": None}
    scopes = adjust_exploratory([_scope("pooled", 0.02)] + [_scope(n, p) for n, p in raw.items()])
    assert scopes[0].holm_p is None and not scopes[0].exploratory
    # Holm by hand over the four defined p: sorted 0.01, 0.03, 0.04, 0.20 times 4, 3, 2, 1, running maximum, cap 1.
    expected = {"domain natural": 0.04, "N = 100": 0.09, "domain medical": 0.09, "N = 250": 0.20}
    got = {s.scope: s.holm_p for s in scopes[1:]}
    assert got.pop("N = 600") is None
    assert got == pytest.approx(expected, rel=1e-12)
    assert all(s.exploratory for s in scopes[1:])


def test_the_laws_slope_of_loss_on_k_f_at_the_measured_d_data():
    log_k_f = np.log([1e-3, 2e-3, 4e-3, 8e-3])
    assert law_loss_slope(log_k_f, [5.0] * 4, 245.0) == pytest.approx(1.0, rel=1e-12)  # equal d_data: the law's 1
    d = np.array([3.7, 4.0, 4.3, 4.7])  # d_data rising with K_F: log(N_c)/d falls, the loss rises faster
    by_hand = stats.linregress(log_k_f, log_k_f - math.log(245.0) / d).slope
    assert law_loss_slope(log_k_f, d, 245.0) == pytest.approx(by_hand, rel=1e-12) and by_hand > 1


def test_intraclass_correlation_against_the_one_way_anova_by_hand():
    groups = [[1.0, 1.2], [2.0, 2.5], [3.1, 2.9], [0.4, 0.9]]
    values = np.array(groups)
    k, g = 2, 4
    ms_between = k * ((values.mean(1) - values.mean()) ** 2).sum() / (g - 1)
    ms_within = ((values - values.mean(1, keepdims=True)) ** 2).sum() / (g * (k - 1))
    single, of_mean, k0 = intraclass(groups)
    assert k0 == pytest.approx(2.0)
    assert single == pytest.approx((ms_between - ms_within) / (ms_between + (k - 1) * ms_within), rel=1e-12)
    assert of_mean == pytest.approx((ms_between - ms_within) / ms_between, rel=1e-12)


def test_task_permutation_p_is_exact_for_few_tasks():
    x, y = np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([1.2, 1.9, 3.5, 3.6, 5.2])
    observed = abs(stats.pearsonr(x, y).statistic)
    as_extreme = [abs(stats.pearsonr(x, np.array(p)).statistic) >= observed - 1e-12 for p in itertools.permutations(y)]
    assert permutation_p(x, y) == pytest.approx(sum(as_extreme) / 120, rel=1e-12)


def test_tasks_for_80_percent_power_match_cohens_table():
    # Cohen (1988), Table 3.4.1: r = 0.30, two-sided alpha 0.05, power 0.80 -> n = 85; r = 0.50 -> 29 (Fisher z gives 30).
    assert tasks_for_power(0.30) == 85
    assert tasks_for_power(0.50) in (29, 30)
    assert tasks_for_power(0.70) == 14


def test_the_health_rule_excludes_runs_that_did_not_learn_or_are_off_protocol_and_says_why():
    records = [{**law_record(f"r{n}", "mnist", "natural", n, 4, 1e-3), "n_test": 500} for n in (100, 200, 400)]
    records.append({**law_record("weak", "mnist", "natural", 800, 4, 1e-3, acc=0.55), "n_test": 500})
    records.append({**law_record("small-test", "breastmnist", "medical", 100, 4, 1e-3), "n_test": 100})
    rows, _ = rows_from_records(records)
    excluded = excluded_runs(rows)
    assert set(excluded) == {"weak", "small-test"}
    assert excluded["weak"].startswith("not learned (test accuracy 0.550 < 0.65)")
    assert excluded["small-test"] == "off protocol (test set of 100 images; most runs 500)"


def _fit_with_slope(arch: str, slope: float, law_value: float):
    x = np.arange(6.0)
    scatter = np.array([0.3, -0.4, 0.2, -0.1, 0.4, -0.3])
    return _across(arch, "x", "y", [(t, xi, slope * xi + s, 0.05, 2, d) for t, xi, s, d in zip("abcdef", x, scatter, "uuvvww")],
                   [], law_value, "the law's slope")


def test_law_scopes_declare_one_primary_and_read_the_others_after_holm():
    fits = {"a": _fit_with_slope("a", 1.0, 0.3), "b": _fit_with_slope("b", 0.3, 0.3), "c": _fit_with_slope("c", 0.0, 0.3)}
    scopes = law_scopes(fits, {}, [])[ALPHA]
    assert [(s.arch, s.primary, s.listed) for s in scopes] == [("a", True, True), ("b", False, True), ("c", False, True)]
    assert scopes[0].adjusted is None
    raw = [s.fit.verdict.primary.slope_p(0.0) for s in scopes[1:]]
    assert [s.adjusted.holm_zero for s in scopes[1:]] == pytest.approx(multipletests(raw, method="holm")[1], rel=1e-12)
    b = scopes[1]
    assert b.fit.verdict.state == CONSISTENT and raw[0] < 0.05  # alone it would pass ...
    assert b.adjusted.holm_zero == pytest.approx(2 * raw[0]) and b.adjusted.state == UNINFORMATIVE  # ... not among two
    assert b.adjusted.direction == "not established" and b.adjusted.family == 2


def test_an_exploratory_law_finding_states_its_holm_reading_and_holds_only_after_it():
    # Three archs on the same six tasks: alpha = 0.2 + 1/d on resnet18 (the primary) and with scatter on the
    # vgg ones, where vgg13 alone would read consistent (p of slope 0 about 0.03) but not among two scopes.
    scatter = np.array([0.09, -0.12, 0.06, -0.03, 0.12, -0.09])
    records = []
    for arch, sign in (("resnet18", 0), ("vgg13", 1), ("vgg16", -1)):
        for t, d in enumerate((2.0, 3.0, 4.0, 5.0, 6.0, 8.0)):
            alpha = 0.2 + 1 / d + sign * scatter[t]
            for n in (100, 200, 400):
                record = law_record(f"{arch}-{t}-{n}", f"set{t}", "natural", n, d, 1e-3, loss=math.exp(2 - alpha * math.log(n)))
                record["arch"] = arch
                records.append(record)
    analysis = analyse(records)
    listed = [f for f in findings(analysis) if f.claim == "alpha rises with 1/d_data"]
    assert [f.primary for f in listed] == [True, False, False]
    explored, scope = listed[1], analysis.law_scopes[ALPHA][1]
    assert scope.arch == "vgg13" and scope.fit.verdict.state == CONSISTENT and scope.adjusted.state == UNINFORMATIVE
    assert explored.state == UNINFORMATIVE and not explored.holds
    assert "(exploratory)" in explored.text and "Holm-adjusted over the 2 exploratory scopes shown" in explored.text
    assert "unadjusted consistent" in explored.text and "after adjustment uninformative" in explored.text
    assert "Holm" not in listed[0].text and listed[0].holds


def test_an_exploratory_fragility_finding_holds_only_after_holm():
    primary = _scope("pooled", 0.02)
    other = replace(_scope("pooled", 0.03), arch="vgg13", exploratory=True, holm_p=0.09, holm_family=3)
    analysis = SimpleNamespace(series=[], penalties=[primary, other], healthy=None)
    first, second = sharpness_makes_fragile(analysis)
    assert first.primary and first.holds and "Holm" not in first.text  # the same interval, the declared test
    assert not second.primary and not second.holds and second.state == "not established"
    assert "Holm-adjusted over the 3 exploratory scopes shown p = 0.09" in second.text
    assert "Not established after Holm's adjustment" in second.text
