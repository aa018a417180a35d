"""Adversarial fragility against label sharpness (paper.md §2.4, §3): FGSM loss penalty vs the task's K_F.

K_F is a property of the task: every run of a task shares its one value, so the **task** is the
unit of inference. Per scope (below) and arch:

* **task level** (the verdict): one point per task, x = its K_F at the reference size
  (1/intensity), y = the mean FGSM loss penalty ``L_attacked - L_clean`` (nats) of its runs in the
  scope. Pearson r with Fisher interval (needs 4 tasks), and the **partial correlation** of K_F
  and the mean penalty given the task's mean ``log L_clean`` (needs 5 tasks: with 4 its interval
  has no degrees of freedom and it is refused, with the reason). The penalty grows with how wrong
  the network already is, so the partial r is what K_F explains beyond the clean loss.
* **whole-task bootstrap** (a check on the task-level r that uses every run): the run-level
  Pearson r recomputed over resamples of whole tasks
  (:func:`lightning_dims.analysis.stats.group_bootstrap`, seeded, percentile interval).
* **run level** (descriptive: runs of one task are not independent): Pearson r of every run's
  penalty with its task's K_F and with its ``log L_clean``, and their partial r. Shown, never used
  for a verdict.

* **leave one task out** (on the task-level r): the range of r without each task, and the tasks
  whose removal moves the r's interval across 0 (``hinges``).
* **whole-dataset bootstrap** of the task-level r: the tasks' points resampled by whole dataset
  (class pairs of one dataset are not independent), percentile interval.

Scopes: ``pooled`` (every run; the paper's r = 0.70 pools its 11 datasets), ``domain <name>`` and
``N = <n>`` (the runs at one training size), per arch. :func:`penalty_vs_sharpness` marks each
arch's pooled scope primary and the others exploratory, their task-level permutation p values
Holm-adjusted over them (``holm_p``; :func:`adjust_exploratory`,
:func:`lightning_dims.analysis.verdicts.holm`); the report then declares one primary scope over all
archs and controlled series and adjusts over every other scope shown
(:func:`lightning_dims.analysis.scopes.penalty_family`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import stats

from lightning_dims.analysis.rows import RunRow
from lightning_dims.analysis.skips import Skip
from lightning_dims.analysis.stats import (
    Correlation,
    FitError,
    GroupBootstrap,
    PartialCorrelation,
    correlate,
    group_bootstrap,
    group_means,
    partial_correlation,
    weighted_pearson,
)
from lightning_dims.analysis.tasks import TaskProperties, positive
from lightning_dims.analysis.verdicts import holm

__all__ = [
    "PenaltyScope",
    "adjust_exploratory",
    "penalty_points",
    "penalty_scope",
    "penalty_vs_sharpness",
    "task_leave_one_out",
]


@dataclass(frozen=True)
class PenaltyScope:
    """Penalty vs K_F in one scope: task level (the verdict), whole-task bootstrap, run level (descriptive)."""

    arch: str
    scope: str
    n_runs: int
    n_tasks: int
    tasks_vs_sharpness: Correlation | None
    tasks_partial_given_clean_loss: PartialCorrelation | None
    task_bootstrap: GroupBootstrap | None
    vs_sharpness: Correlation
    vs_log_clean_loss: Correlation | None
    partial_given_clean_loss: PartialCorrelation | None
    refused: tuple[str, ...] = ()
    n_datasets: int = 0
    task_leave_one_out: tuple[float, float, tuple[str, ...]] | None = None
    dataset_bootstrap: GroupBootstrap | None = None
    exploratory: bool = False
    holm_p: float | None = None
    holm_family: int = 0
    """How many exploratory scopes ``holm_p`` is adjusted over."""

    def to_dict(self) -> dict:
        def maybe(value):
            return None if value is None else asdict(value)

        return {
            "arch": self.arch, "scope": self.scope, "n_runs": self.n_runs, "n_tasks": self.n_tasks,
            "task_level": {"vs_sharpness": maybe(self.tasks_vs_sharpness),
                           "partial_given_clean_loss": maybe(self.tasks_partial_given_clean_loss),
                           "whole_task_bootstrap_of_run_r": maybe(self.task_bootstrap)},
            "run_level_descriptive": {"vs_sharpness": asdict(self.vs_sharpness),
                                      "vs_log_clean_loss": maybe(self.vs_log_clean_loss),
                                      "partial_given_clean_loss": maybe(self.partial_given_clean_loss)},
            "refused": list(self.refused),
            "n_datasets": self.n_datasets,
            "exploratory": self.exploratory,
            "holm_adjusted_permutation_p": self.holm_p,
            "holm_family": self.holm_family,
            "task_leave_one_out": None if self.task_leave_one_out is None else {
                "range": list(self.task_leave_one_out[:2]), "hinges": list(self.task_leave_one_out[2])},
            "whole_dataset_bootstrap_of_task_r": maybe(self.dataset_bootstrap),
        }


def penalty_points(rows: Sequence[RunRow], properties: Mapping[tuple[str, str], TaskProperties]) -> list[tuple[RunRow, float]]:
    """(run, its task's K_F) for runs with a finite penalty, a positive clean loss and a task K_F."""
    points = []
    for row in rows:
        props = properties.get((row.arch, row.task))
        if (props is not None and positive(props.label_sharpness) and isinstance(row.loss_penalty, (int, float))
                and math.isfinite(row.loss_penalty) and positive(row.clean_loss)):
            points.append((row, props.label_sharpness))
    return points


def _attempt(compute, refused: list[str], label: str):
    """``compute()``, or None with ``label: reason`` appended to ``refused`` when it raises FitError."""
    try:
        return compute()
    except FitError as error:
        refused.append(f"{label}: {error}")
        return None


def _pearson_above_zero(x: Sequence[float], y: Sequence[float]) -> tuple[float, bool]:
    """(Pearson r, whether its 95 % Fisher interval lies above 0): ``scipy.stats.pearsonr``, no rank bootstrap."""
    result = stats.pearsonr(x, y)
    return float(result.statistic), bool(result.confidence_interval().low > 0)


def task_leave_one_out(x: Sequence[float], y: Sequence[float], tasks: Sequence[str]
                       ) -> tuple[float, float, tuple[str, ...]] | None:
    """(lowest r, highest r, tasks whose removal moves the Fisher interval across 0) over fits without one task;
    None below 5 tasks (4 must remain for an interval) or when a remaining set has no spread."""
    if len(tasks) < 5:
        return None
    _, above = _pearson_above_zero(x, y)
    values, hinges = [], []
    for i, task in enumerate(tasks):
        keep = [j for j in range(len(tasks)) if j != i]
        kx, ky = [x[j] for j in keep], [y[j] for j in keep]
        if np.ptp(kx) == 0 or np.ptp(ky) == 0:
            continue
        r, other = _pearson_above_zero(kx, ky)
        values.append(r)
        if other != above:
            hinges.append(task)
    return (min(values), max(values), tuple(hinges)) if values else None


def penalty_scope(arch: str, name: str, points: list[tuple[RunRow, float]], skips: list[Skip]) -> PenaltyScope | None:
    """The statistics of one scope's points (``penalty_points``); None, with a skip, when not even the run-level r exists."""
    where = f"{arch} {name}"
    tasks = [r.task for r, _ in points]
    k_f = [k for _, k in points]
    penalty = [r.loss_penalty for r, _ in points]
    log_clean = [math.log(r.clean_loss) for r, _ in points]
    try:
        vs_sharpness = correlate(k_f, penalty)
    except FitError as error:
        skips.append(Skip("penalty vs K_F", where, f"{error} ({len(set(tasks))} task(s))"))
        return None
    refused: list[str] = []
    vs_clean = _attempt(lambda: correlate(log_clean, penalty), refused, "run-level r with log clean loss")
    partial = _attempt(lambda: partial_correlation(k_f, penalty, log_clean, covariate="log clean loss"), refused,
                       "run-level partial r")
    names, task_k_f = group_means(k_f, tasks)
    _, task_penalty = group_means(penalty, tasks)
    _, task_log_clean = group_means(log_clean, tasks)
    dataset_of = {r.task: r.dataset for r, _ in points}
    datasets = [dataset_of[name] for name in names]
    n_tasks = len(task_k_f)
    by_task = _attempt(lambda: correlate(task_k_f, task_penalty, task_level=True), refused, f"task-level r ({n_tasks} tasks)")
    loo = None if by_task is None else _attempt(lambda: task_leave_one_out(task_k_f, task_penalty, names), refused,
                                                "task-level r, leave one task out")
    by_dataset = (None if by_task is None else
                  _attempt(lambda: group_bootstrap(weighted_pearson, (task_k_f, task_penalty), datasets), refused,
                           "whole-dataset bootstrap of the task-level r"))
    by_task_partial = _attempt(
        lambda: partial_correlation(task_k_f, task_penalty, task_log_clean, covariate="log clean loss"), refused,
        f"task-level partial r ({n_tasks} tasks; its Fisher interval has n - 4 = {n_tasks - 4} degrees of freedom)")
    bootstrap = _attempt(lambda: group_bootstrap(weighted_pearson, (k_f, penalty), tasks), refused, "whole-task bootstrap")
    skips.extend(Skip("penalty vs K_F", where, why) for why in refused)
    return PenaltyScope(arch, name, len(points), n_tasks, by_task, by_task_partial, bootstrap, vs_sharpness, vs_clean,
                        partial, tuple(refused), len(set(datasets)), loo, by_dataset)


def penalty_vs_sharpness(
    rows: Sequence[RunRow], properties: Mapping[tuple[str, str], TaskProperties]
) -> tuple[list[PenaltyScope], list[Skip]]:
    """Every scope of the module docstring, per arch, in the order pooled, domains, sizes."""
    points = penalty_points(rows, properties)
    scopes, skips = [], []
    for arch in sorted({r.arch for r, _ in points}):
        mine = [(r, k) for r, k in points if r.arch == arch]
        named = [("pooled", mine)]
        named += [(f"domain {d}", [(r, k) for r, k in mine if r.domain == d]) for d in sorted({r.domain for r, _ in mine})]
        named += [(f"N = {n}", [(r, k) for r, k in mine if r.n_train == n]) for n in sorted({r.n_train for r, _ in mine})]
        mine_scopes = [scope for name, subset in named if (scope := penalty_scope(arch, name, subset, skips)) is not None]
        scopes += adjust_exploratory(mine_scopes)
    return scopes, skips


def adjust_exploratory(scopes: Sequence[PenaltyScope], primary: int | None = 0) -> list[PenaltyScope]:
    """Mark every scope but ``scopes[primary]`` exploratory (every one when ``primary`` is None), with its
    task-permutation p Holm-adjusted over those scopes."""
    exploratory = [i for i in range(len(scopes)) if i != primary]
    raw = [math.nan if scopes[i].tasks_vs_sharpness is None else scopes[i].tasks_vs_sharpness.permutation_p for i in exploratory]
    adjusted = dict(zip(exploratory, holm(raw)))
    return [replace(s, exploratory=False, holm_p=None, holm_family=0) if i == primary else
            replace(s, exploratory=True, holm_p=None if math.isnan(adjusted[i]) else adjusted[i], holm_family=len(exploratory))
            for i, s in enumerate(scopes)]
