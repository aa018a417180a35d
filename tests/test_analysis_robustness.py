"""FGSM penalty vs K_F (pooled, per domain, per N, partial given clean loss), run health and the d_repr bound."""

import math

import numpy as np
import pytest
from scipy import stats

from lightning_dims.analysis.health import representation_bound, run_flags
from lightning_dims.analysis.robustness import penalty_vs_sharpness
from lightning_dims.analysis.rows import RunRow, rows_from_records
from lightning_dims.analysis.tasks import reference_properties
from tests.helpers.analysis_records import law_record

TASKS = [("m1", "medical", 3e-3), ("m2", "medical", 2.5e-3), ("m3", "medical", 2e-3), ("m4", "medical", 4e-3),
         ("n1", "natural", 1e-3), ("n2", "natural", 0.8e-3), ("n3", "natural", 1.2e-3), ("n4", "natural", 0.6e-3)]


def penalty_records():
    """penalty = 200 K_F + 0.3 log L_clean + a deterministic wiggle; L_clean varies with N and task."""
    records = []
    for t, (name, domain, k_f) in enumerate(TASKS):
        for s, n in enumerate((100, 200, 400)):
            loss = math.exp(math.sin(3 * t + s) - math.log(n) / 8)
            penalty = 200 * k_f + 0.3 * math.log(loss) + 0.05 * math.cos(7 * t + 2 * s)
            records.append(law_record(f"{name}-{n}", name, domain, n, 8, k_f, loss=loss, penalty=penalty))
    return records


def test_penalty_scopes_match_an_independent_computation():
    rows, _ = rows_from_records(penalty_records())
    properties, _ = reference_properties(rows)
    scopes, skips = penalty_vs_sharpness(rows, properties)
    assert {(s.scope, s.why.split(" (")[0]) for s in skips} == {  # 4 tasks per domain: no interval for a partial r
        ("resnet18 domain medical", "task-level partial r"), ("resnet18 domain natural", "task-level partial r")}
    assert [s.scope for s in scopes] == ["pooled", "domain medical", "domain natural", "N = 100", "N = 200", "N = 400"]
    assert [(s.n_runs, s.n_tasks) for s in scopes] == [(24, 8), (12, 4), (12, 4), (8, 8), (8, 8), (8, 8)]
    for scope in scopes:
        chosen = [r for r in rows if scope.scope == "pooled" or scope.scope == f"domain {r.domain}" or scope.scope == f"N = {r.n_train}"]
        k_f = np.array([dict((t, k) for t, _, k in TASKS)[r.dataset] for r in chosen])
        penalty = np.array([r.loss_penalty for r in chosen])
        log_clean = np.log([r.clean_loss for r in chosen])
        assert scope.vs_sharpness.pearson == pytest.approx(stats.pearsonr(k_f, penalty).statistic, rel=1e-10)
        names = [r.dataset for r in chosen]
        tasks = sorted(set(names))
        task_k_f = np.array([k_f[names.index(t)] for t in tasks])
        task_penalty = np.array([penalty[[n == t for n in names]].mean() for t in tasks])
        task_r = stats.pearsonr(task_k_f, task_penalty)  # one point per task: the task is the unit
        assert scope.tasks_vs_sharpness.n == len(tasks)
        assert scope.tasks_vs_sharpness.pearson == pytest.approx(task_r.statistic, rel=1e-10)
        z, half = math.atanh(task_r.statistic), 1.959963984540054 / math.sqrt(len(tasks) - 3)  # Fisher, by hand
        assert scope.tasks_vs_sharpness.pearson_ci == pytest.approx((math.tanh(z - half), math.tanh(z + half)), rel=1e-9)
        assert scope.vs_sharpness.spearman == pytest.approx(stats.spearmanr(k_f, penalty).statistic, rel=1e-10)
        assert scope.vs_log_clean_loss.pearson == pytest.approx(stats.pearsonr(log_clean, penalty).statistic, rel=1e-10)
        r = np.corrcoef([k_f, penalty, log_clean])
        partial = (r[0, 1] - r[0, 2] * r[1, 2]) / math.sqrt((1 - r[0, 2] ** 2) * (1 - r[1, 2] ** 2))
        assert scope.partial_given_clean_loss.r == pytest.approx(partial, rel=1e-9)
    pooled = scopes[0]
    assert pooled.partial_given_clean_loss.r > 0.95  # K_F explains the penalty once the clean loss is removed


def test_scopes_with_too_few_runs_are_skipped_with_the_reason():
    rows, _ = rows_from_records(penalty_records()[:3] + penalty_records()[12:15])
    scopes, skips = penalty_vs_sharpness(rows, reference_properties(rows)[0])
    assert [s.scope for s in scopes] == ["pooled"]
    assert {s.scope for s in skips} == {"resnet18 domain medical", "resnet18 domain natural", "resnet18 N = 100",
                                        "resnet18 N = 200", "resnet18 N = 400", "resnet18 pooled"}
    assert all("at least 4 points" in s.why or "same x" in s.why or "at least 5 points" in s.why for s in skips)
    pooled = scopes[0]  # 6 runs but 2 tasks: the run-level r exists, the task-level r is refused, never faked
    assert (pooled.n_runs, pooled.n_tasks, pooled.tasks_vs_sharpness, pooled.tasks_partial_given_clean_loss) == (6, 2, None, None)
    assert any(s.scope == "resnet18 pooled" and s.why.startswith("task-level r (2 tasks)") for s in skips)


def row(**fields):
    base = dict(run_id="r", arch="resnet18", dataset="a", domain="natural", task="a", n_train=100)
    return RunRow(**{**base, **fields})


def test_run_flags_name_what_went_wrong():
    assert run_flags(row(test_acc=0.97, test_auroc=0.99, test_loss=0.1, best_loss=0.09)) == []
    assert run_flags(row(test_acc=0.5, test_auroc=0.99, test_loss=4.4)) == ["not learned", "miscalibrated"]
    assert run_flags(row(test_acc=0.52, test_auroc=0.55, test_loss=0.7)) == ["not learned"]
    assert run_flags(row(test_acc=0.9, test_auroc=0.95, test_loss=0.9, best_loss=0.3)) == ["final epoch worse"]
    assert run_flags(row(test_acc=0.64, num_classes=2)) == ["not learned"]
    assert run_flags(row(test_acc=0.30, num_classes=10, test_auroc=0.7)) == []  # chance is 0.1 for ten classes


def test_representation_bound_counts_runs_per_task_with_the_paper_layer_first():
    rows = [row(run_id=f"r{i}", task=task, d_data=10.0, n_train=100 * (i + 1), d_repr={"avgpool": 5.0, "layer4": 8.0 + i})
            for task in ("a", "b") for i in range(4)] + [row(run_id="c", task="c", d_data=10.0, d_repr={"layer4": 1.0})]
    bounds = representation_bound(rows)
    assert [b.layer for b in bounds] == ["layer4", "avgpool"]
    bound = bounds[0]
    assert (bound.runs_below, bound.n_runs, bound.n_tasks) == (7, 9, 3)
    assert bound.per_task == (("a", 3, 4), ("b", 3, 4), ("c", 1, 1)) and bound.runs_above == ("a N=400", "b N=400")
    tasks = bound.tasks_always_below  # tasks are the independent units: 1 of 3 holds in every run
    assert (tasks.k, tasks.n) == (1, 3)
    assert tasks.ci == pytest.approx((stats.beta.ppf(0.025, 1, 3), stats.beta.ppf(0.975, 2, 2)), rel=1e-9)
    assert bound.run_fraction_bootstrap.n_groups == 3 and bound.run_fraction_bootstrap.n_points == 9
    assert (bounds[1].runs_below, bounds[1].n_runs) == (8, 8)
