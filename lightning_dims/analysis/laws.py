"""The generalization law across tasks (paper.md §3), one point per task, per arch.

``L ~ K_F N^(-1/d_data)`` predicts, for the quantities of :mod:`lightning_dims.analysis.tasks`:

* **exponent vs dimension**: ``alpha = 1 / d_data``. Fit ``alpha = a + b / d_data`` over tasks;
  the law says ``b = 1`` and ``a = 0``. Pearson/Spearman of alpha with 1/d_data beside it.
* **loss vs sharpness**: at one common N, ``log L = log K_F + const`` among tasks of equal
  d_data. Fit ``log L(N_c) = a + b log K_F``; the law says ``b = 1`` (d_data differences between
  tasks add scatter, so this is clean only in a controlled series at fixed d, as on ``synthetic``).
* **the paper's Fig. 2**: at each training size N and per domain, ``log L = a + b d_data`` over
  the tasks' runs at that N, each task at its reference d_data. The paper's finding is a steeper
  slope ``b`` for medical than for natural images. Fitting at each N separately keeps the fall of
  the loss with N out of the slope. The law's own ``b`` at these tasks is the OLS slope of
  ``log K_F_i - log(N) / d_i`` on ``d_i`` (:func:`law_dimension_slope`; ``log N / d^2`` per
  dimension at equal K_F, about 0.07 at N = 250 and d = 9).

**Random effects (primary).** Each task's point (its alpha, its log L(N_c)) is itself a fit over
a few runs, with standard errors from 0.07 to 2 in the stored reproduction, and tasks scatter
around any line by more than those errors say. The across-task fits are therefore random-effects
meta-regressions (:mod:`lightning_dims.analysis.meta`: REML tau^2, Knapp-Hartung t with ``n - 2``
degrees of freedom, PyMARE); each reports tau and the largest weight share, and is read as a
:class:`lightning_dims.analysis.verdicts.Verdict`: consistent / rejected / uninformative against
the law's value, leave one task out, and a check clustered by dataset.

**The law's value.** alpha vs 1/d_data: 1. log L(N_c) vs log K_F: 1 only at equal d_data; with the
tasks' measured d_data the law predicts ``log L_i = log K_F_i - log(N_c) / d_i + a``, so its slope
over these tasks is the OLS slope of ``log K_F_i - log(N_c) / d_i`` on ``log K_F_i``
(:func:`law_loss_slope`), which is what the fitted slope is compared with.

**Sensitivity.** The earlier fit, weights ``1 / SE^2`` with a multiplicative scale
(:func:`lightning_dims.analysis.stats.fit_weighted_line`: scale ``max(1, chi2 / (n - 2))``, t
intervals), stays as a labelled sensitivity line: it keeps the weight ratios of the per-task
errors however much tasks scatter. The errors of d_data and K_F (one measurement per task) are
not modelled. A task whose point has a standard error above :data:`UNINFORMATIVE_SE` is
**flagged** as uninformative and named; it stays in the fits. A standard error below
:data:`SE_FLOOR` (a curve through its points exactly) is raised to it.

Fig. 2 is fitted to task means (the mean log loss of a task's runs at that N: one point per
task), so seeds of one task do not count as independent tasks, and it is a random-effects fit as
well: each mean's standard error is ``s_i / sqrt(n_i)``, with ``n_i`` the task's runs at that N and
``s_i`` the residual standard deviation of its learning curve (:mod:`lightning_dims.analysis.tasks`:
the scatter of one run's log loss around ``c - alpha log N``, ``n - 2`` d.o.f. over all its runs,
the error behind its alpha and L(N_c) too). So a task with two seeds at N is not judged by one
degree of freedom, and a task with one seed still has an error; a task without a learning curve
(fewer than three sizes) has none and is left out with the reason. The earlier OLS line over the
task means stays as the sensitivity line. Every (domain, N) scope is exploratory: its p values are
Holm-adjusted over the scopes shown (:func:`lightning_dims.analysis.verdicts.adjust`).

Intervals as in :mod:`lightning_dims.analysis.stats` (t for slopes, Fisher for Pearson, bootstrap
for Spearman). A fit needs three tasks (four for a correlation); otherwise it is skipped with the
reason.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from lightning_dims.analysis.rows import RunRow
from lightning_dims.analysis.skips import Skip
from lightning_dims.analysis.stats import Correlation, FitError, LineFit, correlate, fit_line, fit_weighted_line
from lightning_dims.analysis.tasks import TaskExponent, TaskProperties, positive
from lightning_dims.analysis.verdicts import Adjusted, Verdict, adjust, verdict

__all__ = [
    "LAW_SLOPE",
    "SE_FLOOR",
    "UNINFORMATIVE_SE",
    "AcrossTasks",
    "DimensionSlope",
    "centre_loss_vs_sharpness",
    "exponent_vs_inverse_dimension",
    "law_dimension_slope",
    "law_loss_slope",
    "loss_vs_dimension_at_each_n",
]


LAW_SLOPE = 1.0
"""The law's slope of alpha on 1/d_data (and of log L on log K_F at equal d_data)."""

SE_FLOOR = 1e-6
"""Smallest standard error a task's point is weighted with (exact fits have 0)."""

UNINFORMATIVE_SE = {"alpha": 0.5, "log L(N_c)": 1.0}
"""Standard error above which a task's fitted point is flagged as uninformative. alpha: 0.5 (its 95 %
interval then spans more than +-1, ten times the law's alpha = 1/d_data ~ 0.1 at d ~ 10); log L(N_c):
1.0 (the loss known only to a factor e per standard error, e^4 = 55 at 95 % with 2 degrees of freedom)."""


@dataclass(frozen=True)
class AcrossTasks:
    """A law over tasks (``tasks`` in point order, ``se`` their points' standard errors): ``verdict`` (random
    effects, primary), ``fit`` (1/SE^2 with a multiplicative scale: the sensitivity line), the (unweighted)
    correlation when there are 4+ tasks; ``flagged``: tasks whose point is uninformative."""

    arch: str
    x: str
    y: str
    tasks: tuple[str, ...]
    se: tuple[float, ...]
    n_runs: int
    fit: LineFit
    correlation: Correlation | None
    verdict: Verdict
    flagged: tuple[str, ...] = ()
    flag_threshold: float | None = None

    def to_dict(self) -> dict:
        return {"arch": self.arch, "x": self.x, "y": self.y, "tasks": list(self.tasks), "se": list(self.se),
                "n_runs": self.n_runs, "verdict": self.verdict.to_dict(), "sensitivity_fit": asdict(self.fit),
                "fit": asdict(self.fit), "correlation": None if self.correlation is None else asdict(self.correlation),
                "flagged": list(self.flagged), "flag_threshold": self.flag_threshold}


def _across(arch: str, x_name: str, y_name: str, points: list[tuple[str, float, float, float, int, str]],
            skips: list[Skip], law_value: float = LAW_SLOPE, law_note: str = "the law's slope") -> AcrossTasks | None:
    """Points are (task, x, y, SE of y, runs behind y, dataset)."""
    scope = f"{arch}: {y_name} vs {x_name}"
    points = [(task, x, y, max(se, SE_FLOOR), runs, dataset) for task, x, y, se, runs, dataset in points]
    xs, ys, ses = [p[1] for p in points], [p[2] for p in points], [p[3] for p in points]
    try:
        fit = fit_weighted_line(xs, ys, ses)
        judged = verdict(xs, ys, ses, [p[0] for p in points], [p[5] for p in points], law_value, law_note)
    except FitError as error:
        skips.append(Skip("across-task fit", scope, f"{error} (tasks: {', '.join(p[0] for p in points) or 'none'})"))
        return None
    if judged.by_dataset_refused:
        skips.append(Skip("check clustered by dataset", scope, judged.by_dataset_refused))
    correlation = None
    try:
        correlation = correlate(xs, ys, task_level=True)
    except FitError as error:
        skips.append(Skip("across-task correlation", scope, str(error)))
    threshold = UNINFORMATIVE_SE.get(y_name)
    flagged = tuple(p[0] for p in points if threshold is not None and p[3] > threshold)
    return AcrossTasks(arch, x_name, y_name, tuple(p[0] for p in points), tuple(p[3] for p in points),
                       sum(p[4] for p in points), fit, correlation, judged, flagged, threshold)


def law_loss_slope(log_k_f: Sequence[float], d_data: Sequence[float], centre_n: float) -> float:
    """The law's slope of log L(N_c) on log K_F over these tasks: OLS slope of ``log K_F - log(N_c) / d`` on ``log K_F``."""
    x = np.asarray(log_k_f, dtype=np.float64)
    predicted = x - math.log(centre_n) / np.asarray(d_data, dtype=np.float64)
    return float(np.polyfit(x, predicted, 1)[0]) if np.ptp(x) > 0 else LAW_SLOPE


def exponent_vs_inverse_dimension(
    exponents: Mapping[tuple[str, str], TaskExponent], properties: Mapping[tuple[str, str], TaskProperties]
) -> tuple[dict[str, AcrossTasks], list[Skip]]:
    """arch -> weighted fit of ``alpha`` on ``1 / d_data`` over its tasks (law: slope 1, intercept 0)."""
    out, skips = {}, []
    for arch in sorted({arch for arch, _ in exponents}):
        points = [
            (task, 1.0 / properties[(a, task)].d_data, e.alpha, e.fit.slope_se, e.n_runs, properties[(a, task)].dataset)
            for (a, task), e in exponents.items()
            if a == arch and (a, task) in properties and positive(properties[(a, task)].d_data)
        ]
        fit = _across(arch, "1/d_data", "alpha", points, skips, LAW_SLOPE, "the law's slope")
        if fit is not None:
            out[arch] = fit
    return out, skips


def centre_loss_vs_sharpness(
    exponents: Mapping[tuple[str, str], TaskExponent], properties: Mapping[tuple[str, str], TaskProperties]
) -> tuple[dict[str, AcrossTasks], list[Skip]]:
    """arch -> weighted fit of ``log L(N_c)`` on ``log K_F`` over its tasks (law: slope 1 at equal d_data)."""
    out, skips = {}, []
    for arch in sorted({arch for arch, _ in exponents}):
        points = [
            (task, math.log(properties[(a, task)].label_sharpness), math.log(e.loss_at_centre),
             e.fit.mean_se_at(math.log(e.centre_n)), e.n_runs, properties[(a, task)].dataset)
            for (a, task), e in exponents.items()
            if a == arch and (a, task) in properties and positive(properties[(a, task)].label_sharpness)
        ]
        centre = next((e.centre_n for (a, _), e in exponents.items() if a == arch), 1.0)
        d_data = [properties[(arch, p[0])].d_data for p in points]
        if all(positive(d) for d in d_data) and len(points) >= 2:
            law, note = law_loss_slope([p[1] for p in points], d_data, centre), "the law's slope at the tasks' measured d_data"
        else:
            law, note = LAW_SLOPE, "the law's slope at equal d_data (some task has no d_data)"
        fit = _across(arch, "log K_F", "log L(N_c)", points, skips, law, note)
        if fit is not None:
            out[arch] = fit
    return out, skips


@dataclass(frozen=True)
class DimensionSlope:
    """The paper's Fig. 2 at one N: ``log L = a + b d_data`` over one domain's tasks (one point per task: its mean
    log loss at N, ``se`` its standard error). ``verdict``: the random-effects fit (primary); ``fit``: OLS over the task
    means (the sensitivity line); ``adjusted``: the reading after Holm's adjustment over the Fig. 2 scopes shown."""

    arch: str
    domain: str
    n_train: int
    tasks: tuple[str, ...]
    n_runs: int
    fit: LineFit
    verdict: Verdict
    se: tuple[float, ...]
    adjusted: Adjusted | None = None

    def to_dict(self) -> dict:
        return {"arch": self.arch, "domain": self.domain, "n_train": self.n_train, "tasks": list(self.tasks),
                "n_runs": self.n_runs, "se": list(self.se), "verdict": self.verdict.to_dict(),
                "sensitivity_fit": asdict(self.fit), "exploratory": True,
                "adjusted": None if self.adjusted is None else self.adjusted.to_dict()}


def law_dimension_slope(log_k_f: Sequence[float] | None, d_data: Sequence[float], n: float) -> float:
    """The law's slope of log L at ``n`` on d_data over these tasks: OLS slope of ``log K_F - log(n) / d`` on ``d``
    (``log K_F`` taken equal when ``log_k_f`` is None)."""
    d = np.asarray(d_data, dtype=np.float64)
    k = np.zeros_like(d) if log_k_f is None else np.asarray(log_k_f, dtype=np.float64)
    return float(np.polyfit(d, k - math.log(n) / d, 1)[0])


def _fig2_point(arch: str, task: str, group: Sequence[RunRow], exponents: Mapping[tuple[str, str], TaskExponent]):
    """(mean log loss of the task's runs in ``group``, its SE ``s / sqrt(runs)``), or None without a learning curve."""
    runs = [r for r in group if r.task == task]
    curve = exponents.get((arch, task))
    if curve is None:
        return None
    return float(np.mean([math.log(r.test_loss) for r in runs])), max(curve.fit.residual_sd / math.sqrt(len(runs)), SE_FLOOR), len(runs)


def loss_vs_dimension_at_each_n(
    rows: Sequence[RunRow], properties: Mapping[tuple[str, str], TaskProperties],
    exponents: Mapping[tuple[str, str], TaskExponent],
) -> tuple[list[DimensionSlope], list[Skip]]:
    """Per (arch, domain, N): random-effects slope of the tasks' mean log test loss on their reference d_data
    (module docstring), with the OLS line as sensitivity; every scope Holm-adjusted over all of them."""
    groups: dict[tuple[str, str, int], list[RunRow]] = defaultdict(list)
    for row in rows:
        props = properties.get((row.arch, row.task))
        if positive(row.test_loss) and props is not None and positive(props.d_data):
            groups[(row.arch, row.domain, row.n_train)].append(row)
    slopes, skips = [], []
    for (arch, domain, n), group in sorted(groups.items()):
        scope = f"{arch} {domain} N = {n}"
        points = []
        for task in dict.fromkeys(r.task for r in group):
            point = _fig2_point(arch, task, group, exponents)
            if point is None:
                skips.append(Skip("Fig. 2 point", f"{scope} {task}",
                                  "no learning curve (fewer than 3 sizes): its mean log loss has no standard error"))
            else:
                points.append((task, *point))
        tasks = [p[0] for p in points]
        if len(tasks) < 3:
            skips.append(Skip("Fig. 2 slope", scope, f"{len(tasks)} task(s) ({', '.join(tasks)}): a slope over d_data needs 3"))
            continue
        d = [properties[(arch, task)].d_data for task in tasks]
        k_f = [properties[(arch, task)].label_sharpness for task in tasks]
        if all(positive(k) for k in k_f):
            law, note = law_dimension_slope([math.log(k) for k in k_f], d, n), "the law's slope at the tasks' K_F and d_data"
        else:
            law, note = law_dimension_slope(None, d, n), "the law's slope at equal K_F (some task has no K_F)"
        y, se = [p[1] for p in points], [p[2] for p in points]
        try:
            fit = fit_line(d, y)
            judged = verdict(d, y, se, tasks, [properties[(arch, task)].dataset for task in tasks], law, note)
        except FitError as error:
            skips.append(Skip("Fig. 2 slope", scope, str(error)))
            continue
        if judged.by_dataset_refused:
            skips.append(Skip("Fig. 2 check clustered by dataset", scope, judged.by_dataset_refused))
        slopes.append(DimensionSlope(arch, domain, n, tuple(tasks), sum(p[3] for p in points), fit, judged, tuple(se)))
    readings = adjust([s.verdict for s in slopes])
    return [replace(s, adjusted=reading) for s, reading in zip(slopes, readings)], skips
