"""`lightning-dims plan`: the planned N against hand-computed power laws, Fieller's interval against a
grid search over statsmodels' own confidence bands, the law route against numpy's weighted fits, the
refusals, the backtest, and the command on the stored reproduction records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lightning_dims.analysis import backtest as bt
from lightning_dims.analysis import plan
from lightning_dims.analysis.stats import fit_line
from lightning_dims.commands.plan import main

RECORDS = Path(__file__).resolve().parents[1] / "docs" / "reproduction" / "2026-12-04" / "records"
SOURCE = ["--results", str(RECORDS), "--vary", "data.val_size", "--vary", "data.test_size"]


def power_law(a: float, alpha: float, sizes=(100, 200, 400, 800), noise: float = 0.0):
    """Two seeds per size, log L = log a - alpha log N -/+ noise: OLS in logs recovers a and alpha exactly."""
    n = [size for size in sizes for _ in (0, 1)]
    losses = [a * size**-alpha * math.exp(sign * noise) for size in sizes for sign in (-1, 1)]
    return n, losses


def test_the_planned_n_solves_the_power_law_and_the_interval_closes_on_it_without_noise():
    n, losses = power_law(2.0, 0.5)
    p = plan.plan_from_curve("t", n, losses, 0.05)
    assert p.n == pytest.approx((2.0 / 0.05) ** 2, rel=1e-9)  # 0.05 = 2 N^-0.5 at N = 1600
    assert p.interval == pytest.approx((1600, 1600), rel=1e-6)
    assert p.extrapolation == pytest.approx(2.0) and p.alpha == pytest.approx(0.5)
    assert p.to_json()["target_loss"] == 0.05 and p.to_json()["extrapolation"] == pytest.approx(2.0)
    two = plan.plan_from_curve("t", *power_law(2.0, 0.5, sizes=(100, 400), noise=0.05), 0.05)
    assert two.n == pytest.approx(1600) and "two training sizes" in two.notes[0]


def test_fieller_matches_a_grid_search_over_statsmodels_confidence_band():
    import statsmodels.api as sm

    rng = np.random.default_rng(3)
    n = np.repeat([100, 200, 400, 800], 3)
    losses = 3.0 * n**-0.6 * np.exp(rng.normal(0, 0.15, n.size))
    target = 0.02
    p = plan.plan_from_curve("t", n, losses, target)
    grid = np.linspace(math.log(50), math.log(1e5), 40001)
    band = sm.OLS(np.log(losses), sm.add_constant(np.log(n))).fit().get_prediction(sm.add_constant(grid)).conf_int(alpha=0.05)
    inside = grid[(band[:, 0] <= math.log(target)) & (math.log(target) <= band[:, 1])]
    step = grid[1] - grid[0]
    assert math.log(p.interval[0]) == pytest.approx(inside.min(), abs=step)
    assert math.log(p.interval[1]) == pytest.approx(inside.max(), abs=step)
    assert p.interval[0] < p.n < p.interval[1] and p.extrapolation > plan.EXTRAPOLATION_WARNING


def test_a_curve_whose_slope_is_not_significant_has_no_upper_n_and_is_too_wide():
    n, losses = power_law(1.0, 0.05, noise=0.3)
    p = plan.plan_from_curve("flat", n, losses, 0.5)
    assert p.interval[1] is None and p.too_wide
    assert p.alpha_interval[0] < 0 < p.alpha_interval[1]


@pytest.mark.parametrize(("n", "losses", "target", "reason"), [
    ([500, 500, 500], [0.3, 0.31, 0.29], 0.1, "single training size"),
    ([100, 200, 400], [0.2, 0.3, 0.4], 0.1, "does not fall"),
    ([100, 200, 400], [0.4, 0.3, 0.2], 0.0, "not a reachable value"),
])
def test_refusals_name_the_reason_and_give_no_n(n, losses, target, reason):
    with pytest.raises(plan.PlanRefused, match=reason) as refusal:
        plan.plan_from_curve("t", n, losses, target)
    assert "\n" not in str(refusal.value)


def test_a_target_below_a_fitted_floor_is_refused_and_a_pure_power_law_has_no_floor():
    sizes = (50, 100, 200, 400, 800, 1600)
    n = [s for s in sizes for _ in (0, 1)]
    losses = [(0.1 + 20.0 / s) * math.exp(sign * 0.01) for s in sizes for sign in (-1, 1)]  # L_inf = 0.1
    assert plan.fit_floor(n, losses) == pytest.approx(0.1, rel=0.05)
    with pytest.raises(plan.PlanRefused, match="fitted floor"):
        plan.plan_from_curve("floored", n, losses, 0.08)
    assert plan.plan_from_curve("floored", n, losses, 0.15).floor == pytest.approx(0.1, rel=0.05)
    assert plan.fit_floor(*power_law(2.0, 0.5, sizes, noise=0.01)) is None


def law_points(noise: float = 0.01):
    """alpha = 1/d and log L(N_c) = log K_F + 1, each -/+ noise (alternating), SE 0.05."""
    d = [3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
    k_f = [1e-3, 2e-3, 3e-3, 5e-3, 8e-3, 1.3e-2]
    sign = [1, -1, -1, 1, 1, -1]
    return [plan.LawPoint(f"t{i}", f"ds{i % 3}", k, dd, 1 / dd + s * noise, 0.05, math.log(k) + 1 + s * noise, 0.05)
            for i, (dd, k, s) in enumerate(zip(d, k_f, sign))]


def test_the_law_route_matches_numpy_weighted_fits_and_brackets_its_n():
    points = law_points()
    laws = plan.fit_laws(points, centre_n=250.0, largest_n=600)
    assert laws.exponent.tau2 == pytest.approx(0, abs=1e-6)  # scatter below the SEs: fixed-effect weights
    b_a = np.polyfit([1 / p.d_data for p in points], [p.alpha for p in points], 1, w=[1 / p.alpha_se for p in points])
    b_l = np.polyfit([math.log(p.k_f) for p in points], [p.log_loss_centre for p in points], 1,
                     w=[1 / p.log_loss_centre_se for p in points])
    k_f, d, target = 4e-3, 5.0, 0.002
    alpha, log_centre = np.polyval(b_a, 1 / d), np.polyval(b_l, math.log(k_f))
    p = plan.plan_from_law(laws, k_f, d, target)
    assert p.n == pytest.approx(250.0 * math.exp((log_centre - math.log(target)) / alpha), rel=1e-6)
    assert p.interval[0] < p.n < p.interval[1]
    assert (p.n_datasets, len(p.tasks)) == (3, 6)
    json_keys = p.to_json()
    assert {"n", "interval", "target_loss", "method", "tasks", "k_f", "d_data", "extrapolation"} <= set(json_keys)


def test_the_law_interval_includes_tau_so_scattered_tasks_widen_it():
    tight = plan.plan_from_law(plan.fit_laws(law_points(0.01), 250.0, 600), 4e-3, 5.0, 0.002)
    loose_laws = plan.fit_laws(law_points(0.3), 250.0, 600)
    loose = plan.plan_from_law(loose_laws, 4e-3, 5.0, 0.002)
    assert loose_laws.loss.tau > 0.2
    assert loose.too_wide and not tight.too_wide


def test_fragility_is_called_only_when_the_interval_clears_the_median_task():
    k_f = np.array([1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3])
    scatter = [0.02, -0.02, -0.02, 0.02, 0.02, -0.02]  # penalty = 100 K_F -/+ 0.02 between tasks, 0.01 within
    penalties = {f"t{i}": (k, [100 * k + e - 0.01, 100 * k + e + 0.01]) for i, (k, e) in enumerate(zip(k_f, scatter))}
    slope, intercept = np.polyfit(k_f, [100 * k + e for k, e in zip(k_f, scatter)], 1)  # tau^2 = 0: plain OLS
    high = plan.fragility(penalties, 9e-3)
    assert high.penalty == pytest.approx(intercept + slope * 9e-3) and high.likely_fragile and high.rank == 6
    low = plan.fragility(penalties, 3.5e-3)
    assert low.penalty == pytest.approx(intercept + slope * 3.5e-3) and not low.likely_fragile and low.rank == 3
    assert low.interval[0] < low.median_penalty < low.interval[1]


def test_the_curve_backtest_predicts_the_held_out_size_of_an_exact_law():
    n, losses = power_law(2.0, 0.5, sizes=(100, 200, 400, 800), noise=0.05)
    row = bt.curve_backtest("t", n, losses)
    assert (row.n, row.covered) == (800, True)
    assert row.predicted == pytest.approx(2.0 * 800**-0.5, rel=1e-9) and row.relative_error == pytest.approx(0, abs=1e-9)
    # the interval is the t interval of the mean of the 2 held-out runs, from the 6 kept runs
    fit = fit_line(np.log(n[:6]), np.log(losses[:6]))
    half = stats.t.ppf(0.975, 4) * fit.residual_sd * math.sqrt(1 / 2 + 1 / 6 + (math.log(800) - fit.x_mean) ** 2 / fit.sxx)
    assert math.log(row.interval[1] / row.predicted) == pytest.approx(half)


def test_the_law_backtest_leaves_each_task_out():
    points = law_points()
    held = {p.task: (250, [math.exp(p.log_loss_centre)] * 2) for p in points}  # observed at N_c itself
    rows = bt.law_backtest(points, held, centre_n=250.0, largest_n=600)
    summary = bt.summarise("law", rows)
    assert len(rows) == 6 and summary.coverage.n == 6 and summary.median_relative_error < 0.05


def run(capsys, *args) -> tuple[int, str, str]:
    status = main([*SOURCE, *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_plan_for_a_stored_task_is_its_own_ols_power_law(capsys):
    status, out, _ = run(capsys, "--task", "mnist 4 vs 9", "--target-loss", "0.05", "--json")
    result = json.loads(out)
    records = [json.loads(p.read_text()) for p in RECORDS.glob("mnist-*.record.json")]
    mine = [r for r in records if r["classes"] == [4, 9]]
    fit = stats.linregress(np.log([r["n_train"] for r in mine]), np.log([r["test"]["loss"] for r in mine]))
    assert status == 0 and len(mine) == 6
    assert result["n"] == pytest.approx(math.exp((fit.intercept - math.log(0.05)) / -fit.slope), rel=1e-9)
    assert result["task"] == "mnist 4 vs 9" and result["extrapolation"] == pytest.approx(result["n"] / 600)
    at_ref = [r for r in mine if r["n_train"] == 250]  # the report's reference N: the largest every task has
    assert result["k_f"] == pytest.approx(np.mean([r["label_sharpness"] for r in at_ref]))
    assert result["d_data"] == pytest.approx(np.mean([r["d_data"] for r in at_ref]))
    status, out, err = run(capsys, "--task", "mnist 4 vs 9", "--target-acc", "1.0")
    assert status == 2 and out == "" and err.count("\n") == 1 and "not a reachable value" in err


def test_plan_from_wandb_reads_the_records_like_report(capsys, monkeypatch, tmp_path):
    from lightning_dims.records.store import scan_records
    from lightning_dims.tracking import source

    calls = []
    monkeypatch.setattr(source, "wandb_records", lambda path, folder: calls.append((path, folder)) or scan_records(RECORDS))
    args = ["--vary", "data.val_size", "--vary", "data.test_size", "--backtest", "--json"]
    assert main(["--from-wandb", "team/project/sweep1", "--wandb-dir", str(tmp_path), *args]) == 0
    from_wandb = json.loads(capsys.readouterr().out)
    assert calls == [("team/project/sweep1", tmp_path)]
    status, out, _ = run(capsys, "--backtest", "--json")
    assert status == 0 and json.loads(out) == from_wandb
    assert len(from_wandb["tasks"]) == 10 and from_wandb["coverage"]["curve"]["n"] == 10
    for route in ("curve", "law"):
        rows = [r for r in from_wandb["rows"] if r["route"] == route and r["covered"] is not None]
        assert from_wandb["coverage"][route]["k"] == sum(r["covered"] for r in rows)


@pytest.mark.parametrize("args", [["--task", "mnist 4 vs 9", "--target-loss", "0.005"], ["--backtest"]])
def test_docs_plan_quotes_what_plan_prints_on_the_stored_records(capsys, args):
    status, out, _ = run(capsys, *args)
    assert status == 0 and out.strip() in (Path(__file__).resolve().parents[1] / "docs" / "plan.md").read_text()


def test_plan_for_a_dataset_without_runs_measures_it_as_the_records_were_measured(capsys):
    from lightning_dims.commands.measure import main as measure_main

    status, out, _ = run(capsys, "--dataset", "digits", "--classes", "3,8", "--target-loss", "0.1", "--json")
    result = json.loads(out)
    assert status == 0 and (result["spec"], result["ref_n"], result["m"]) == ("32px-1ch-max255", 250, 250)
    assert (result["n_tasks"], result["n_datasets"]) == (10, 5) and result["fragility"]["n_tasks"] == 10
    assert measure_main(["--dataset", "digits", "--classes", "3,8", "--n", "250", "--m", "250", "--img-size", "32",
                         "--val-size", "0", "--test-size", "0", "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["cached"]  # the plan's measurement went into measure's cache, under the same key
    assert (result["k_f"], result["d_data"]) == (measured["label_sharpness"], measured["d_data"])
