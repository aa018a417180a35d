"""Tasks, reference properties, exponents and the law across tasks, on records generated from known laws."""

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from lightning_dims.analysis.laws import centre_loss_vs_sharpness, exponent_vs_inverse_dimension, loss_vs_dimension_at_each_n
from lightning_dims.analysis.meta import random_effects
from lightning_dims.analysis.rows import rows_from_records
from lightning_dims.analysis.series import analyse_series, controlled_series
from lightning_dims.analysis.tasks import reference_properties, task_exponents
from tests.helpers.analysis_records import law_record

SIZES = (200, 400, 800, 1600)


def law_records(tasks, sizes=SIZES, noise=None):
    """tasks: (dataset, domain, d, K_F, classes, options); one record per task and size."""
    records = []
    for t, (dataset, domain, d, k_f, classes, options) in enumerate(tasks):
        for s, n in enumerate(sizes):
            eps = 0.0 if noise is None else noise[t][s]
            records.append(law_record(f"t{t}n{n}", dataset, domain, n, d, k_f, classes=classes, options=options, noise=eps))
    return records


def test_class_pairs_and_options_are_separate_tasks_with_readable_names():
    records = law_records([
        ("mnist", "natural", 9, 1e-3, [6, 7], None), ("mnist", "natural", 11, 1e-3, [4, 5], None),
        ("pneumoniamnist", "medical", 10, 2e-3, [0, 1], None),
        ("synthetic", "synthetic", 4, 1e-3, [0, 1], {"d": 4, "contrast": 1.0, "n": 4000}),
        ("synthetic", "synthetic", 8, 1e-3, [0, 1], {"d": 8, "contrast": 1.0, "n": 4000}),
    ], sizes=(100,))
    rows, skips = rows_from_records(records + [law_record("bad", "mnist", "natural", 100, 9, 1e-3, status="failed")])
    assert [r.task for r in rows] == ["mnist 6 vs 7", "mnist 4 vs 5", "pneumoniamnist", "synthetic d=4", "synthetic d=8"]
    assert [(s.what, s.scope) for s in skips] == [("run", "bad")] and "failed" in skips[0].why


def test_exponents_recover_one_over_d_and_the_law_across_tasks_has_slope_one():
    records = law_records([("a", "natural", d, 1e-3, [0, 1], {"d": d}) for d in (2, 4, 8, 16)])
    rows, _ = rows_from_records(records)
    exponents, skips = task_exponents(rows)
    properties, _ = reference_properties(rows)
    assert skips == []
    for d in (2, 4, 8, 16):
        e = exponents[("resnet18", f"a d={d}")]
        assert e.alpha == pytest.approx(1 / d, rel=1e-9) and e.r2 == pytest.approx(1.0)
        assert e.alpha_ci == pytest.approx((1 / d, 1 / d), abs=1e-7)  # exact data: no residual, no width
        assert e.centre_n == pytest.approx(math.sqrt(200 * 1600)) and not e.extrapolated
        assert e.loss_at_centre == pytest.approx(1e-3 * math.exp(8) * e.centre_n ** (-1 / d), rel=1e-9)
    across, _ = exponent_vs_inverse_dimension(exponents, properties)
    assert across["resnet18"].fit.slope == pytest.approx(1.0, rel=1e-9)
    assert across["resnet18"].fit.intercept == pytest.approx(0.0, abs=1e-9)
    assert across["resnet18"].correlation.pearson == pytest.approx(1.0)


def test_exponent_interval_is_the_t_interval_of_log_loss_on_log_n():
    noise = [[0.05, -0.03, 0.04, -0.06]]
    rows, _ = rows_from_records(law_records([("a", "natural", 5, 1e-3, [0, 1], None)], noise=noise))
    e = task_exponents(rows)[0][("resnet18", "a")]
    x, y = np.log(SIZES), np.log([r.test_loss for r in rows])
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (intercept + slope * x)
    se = math.sqrt(residual @ residual / 2 / ((x - x.mean()) @ (x - x.mean())))
    t = 4.302652729911275
    assert e.alpha == pytest.approx(-slope, rel=1e-9)
    assert e.alpha_ci == pytest.approx((-slope - t * se, -slope + t * se), rel=1e-9)


def test_loss_at_the_centre_rises_with_k_f_with_slope_one_at_equal_d():
    records = law_records([("s", "synthetic", 4, k, [0, 1], {"contrast": c}) for k, c in ((1e-3, 1), (2e-3, .5), (4e-3, .25), (8e-3, .125))])
    rows, _ = rows_from_records(records)
    exponents, _ = task_exponents(rows)
    properties, _ = reference_properties(rows)
    fit = centre_loss_vs_sharpness(exponents, properties)[0]["resnet18"]
    assert fit.fit.slope == pytest.approx(1.0, rel=1e-9) and fit.fit.n == 4


def test_reference_properties_are_one_value_per_task_at_one_size():
    records = [law_record(f"r{n}s{s}", "a", "natural", n, d=5 + n / 1000 + s, k_f=1e-3 * (1 + s), seed=s)
               for n in (200, 400) for s in (0, 1)]
    records += [law_record("small", "b", "medical", 100, d=7, k_f=2e-3)]
    rows, _ = rows_from_records(records)
    properties, skips = reference_properties(rows)  # no N common to both tasks: the largest N, 400
    a = properties[("resnet18", "a")]
    assert a.ref_n == 400 and a.runs_at_ref == 2
    assert a.d_data == pytest.approx(np.mean([5.4, 6.4])) and a.label_sharpness == pytest.approx(1.5e-3)
    assert ("resnet18", "b") not in properties
    assert [s.scope for s in skips] == ["resnet18 b"] and "no run at the reference N = 400" in skips[0].why
    chosen, _ = reference_properties(rows, ref_n=100)
    assert chosen[("resnet18", "b")].d_data == 7 and ("resnet18", "a") not in chosen
    records += [law_record("b200", "b", "medical", 200, d=7.5, k_f=2e-3), law_record("b300", "b", "medical", 300, d=8, k_f=2e-3)]
    common, skips = reference_properties(rows_from_records(records)[0])  # the largest N every task has: 200
    assert common[("resnet18", "b")].ref_n == 200 and common[("resnet18", "b")].d_data == 7.5
    assert common[("resnet18", "a")].d_data == pytest.approx(np.mean([5.2, 6.2])) and skips == []


def test_k_f_over_a_different_m_is_left_out_with_the_reason():
    records = [law_record(f"{name}{n}", name, "natural", n, 5, 1e-3, m=m) for name, m in (("a", 1000), ("b", 1000), ("c", 500))
               for n in (400,)]
    properties, skips = reference_properties(rows_from_records(records)[0])
    assert properties[("resnet18", "c")].label_sharpness is None and properties[("resnet18", "a")].label_sharpness == 1e-3
    assert [s.scope for s in skips] == ["resnet18 c"] and "M = 500" in skips[0].why


def test_fits_without_enough_sizes_or_tasks_say_why():
    rows, _ = rows_from_records(law_records([("a", "natural", 5, 1e-3, [0, 1], None)], sizes=(200, 400)))
    exponents, skips = task_exponents(rows)
    assert exponents == {} and skips[0].scope == "resnet18 a" and "2 training size(s) with a test loss (200, 400): needs 3" in skips[0].why
    across, skips = exponent_vs_inverse_dimension({}, {})
    assert across == {} and skips == []


def test_fig2_slope_at_each_n_is_the_per_domain_slope_of_log_loss_on_d():
    # at each N, log L = log(0.5) + b_domain * d exactly, b = 0.1 (medical), 0.02 (natural)
    records = []
    for domain, b in (("medical", 0.1), ("natural", 0.02)):
        for d in (6, 9, 12, 15):
            for n in (250, 500, 1000):
                loss = 0.5 * math.exp(b * d) * (1000 / n)
                records.append(law_record(f"{domain}{d}-{n}", f"{domain}{d}", domain, n, d, 1e-3, loss=loss))
    records.append(law_record("medical20-500", "medical20", "medical", 500, 20, 1e-3, loss=9.0))  # one size: no curve
    rows, _ = rows_from_records(records)
    properties, _ = reference_properties(rows, ref_n=500)
    slopes, skips = loss_vs_dimension_at_each_n(rows, properties, task_exponents(rows)[0])
    assert [(s.domain, s.n_train) for s in slopes] == [(d, n) for d in ("medical", "natural") for n in (250, 500, 1000)]
    assert [s.verdict.primary.slope for s in slopes] == pytest.approx([0.1] * 3 + [0.02] * 3, rel=1e-6)
    assert [s.fit.slope for s in slopes] == pytest.approx([0.1] * 3 + [0.02] * 3, rel=1e-9)
    assert [s.scope for s in skips if s.what == "Fig. 2 point"] == ["resnet18 medical N = 500 medical20"]
    few, skips = loss_vs_dimension_at_each_n([r for r in rows if r.dataset in ("medical6", "medical9")], properties,
                                             task_exponents(rows)[0])
    assert few == [] and "2 task(s)" in skips[0].why


def test_fig2_slope_is_random_effects_over_task_means_with_their_curves_errors_and_holm_over_scopes():
    # Five tasks, two seeds at each of three sizes; the task at d = 15 scatters widely around its curve
    # and sits far off the others' line: random effects weigh it down, OLS over the task means does not.
    scale = {6: 0.02, 8: 0.05, 10: 0.03, 12: 0.04, 15: 0.9}
    records = []
    for d, noise in scale.items():
        for s, n in enumerate((250, 500, 1000)):
            for seed in (0, 1):
                wobble = noise * math.sin(3 * d + 5 * s + 7 * seed) + (0.5 if d == 15 else 0.0)
                loss = 0.5 * math.exp(0.1 * d + wobble) * (1000 / n) ** 0.5
                records.append(law_record(f"t{d}-{n}-{seed}", f"set{d}", "medical", n, d, 1e-3, loss=loss, seed=seed))
    rows, _ = rows_from_records(records)
    properties, _ = reference_properties(rows)
    exponents, _ = task_exponents(rows)
    slopes, _ = loss_vs_dimension_at_each_n(rows, properties, exponents)
    at_500 = next(s for s in slopes if s.n_train == 500)
    x, y, se = [], [], []
    for d in scale:  # by hand: the mean log loss at N = 500 and s / sqrt(2), s from the task's own curve
        runs = [r for r in rows if r.task == f"set{d}"]
        log_n, log_l = np.log([r.n_train for r in runs]), np.log([r.test_loss for r in runs])
        residual = log_l - np.polyval(np.polyfit(log_n, log_l, 1), log_n)
        x.append(d)
        y.append(np.mean([math.log(r.test_loss) for r in runs if r.n_train == 500]))
        se.append(math.sqrt(residual @ residual / (len(runs) - 2)) / math.sqrt(2))
    expected = random_effects(x, y, se, [f"set{d}" for d in scale])
    assert at_500.se == pytest.approx(se, rel=1e-9)
    assert at_500.verdict.primary.slope == pytest.approx(expected.slope, rel=1e-9)
    assert at_500.verdict.primary.slope_interval() == pytest.approx(expected.slope_interval(), rel=1e-9)
    assert at_500.fit.slope == pytest.approx(stats.linregress(x, y).slope, rel=1e-9)  # the sensitivity line
    assert abs(at_500.fit.slope - at_500.verdict.primary.slope) > 0.05
    assert at_500.verdict.primary.weights[-1] < 0.1 and at_500.verdict.leave_one_out is not None
    assert at_500.n_runs == 10 and at_500.verdict.n_datasets == 5
    raw = [s.verdict.primary.slope_p(0.0) for s in slopes]
    assert [s.adjusted.holm_zero for s in slopes] == pytest.approx(multipletests(raw, method="holm")[1], rel=1e-9)
    assert all(s.adjusted.family == 3 for s in slopes)


def test_controlled_series_vary_one_option_and_fit_the_law_within_each():
    tasks = [("synthetic", "synthetic", d, 1e-3, [0, 1], {"d": d, "contrast": 1.0}) for d in (2, 4, 6, 8)]
    tasks += [("synthetic", "synthetic", 4, 1e-3 / c, [0, 1], {"d": 4, "contrast": c}) for c in (0.7, 0.5, 0.35)]
    rows, _ = rows_from_records(law_records(tasks))
    series = controlled_series(rows)
    assert [(s.varied, s.fixed, s.tasks) for s in series] == [
        ("d", {"contrast": 1.0}, ("synthetic d=2, contrast=1.0", "synthetic d=4, contrast=1.0",
                                  "synthetic d=6, contrast=1.0", "synthetic d=8, contrast=1.0")),
        ("contrast", {"d": 4}, ("synthetic d=4, contrast=0.35", "synthetic d=4, contrast=0.5",
                                "synthetic d=4, contrast=0.7", "synthetic d=4, contrast=1.0")),
    ]
    exponents, _ = task_exponents(rows)
    properties, _ = reference_properties(rows)
    by_d = analyse_series(series[0], rows, exponents, properties)
    by_contrast = analyse_series(series[1], rows, exponents, properties)
    assert by_d.exponent_vs_inverse_dimension.fit.slope == pytest.approx(1.0, rel=1e-9)
    assert by_contrast.centre_loss_vs_sharpness.fit.slope == pytest.approx(1.0, rel=1e-9)
    assert by_contrast.exponent_vs_inverse_dimension is None  # one d: no spread in 1/d
    assert any("same x" in s.why for s in by_contrast.skips)
