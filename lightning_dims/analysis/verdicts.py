"""A law's coefficient put to the tasks: one declared verdict, how it stands without each task and over datasets.

**Three states.** The random-effects slope's 95 % interval (:mod:`lightning_dims.analysis.meta`)
is read against two values, 0 (no effect) and the law's own value ``v``:

* ``consistent``: the interval excludes 0 and holds ``v`` (the data show the effect, at the law's size);
* ``rejected``: the interval excludes ``v`` (whether or not it holds 0);
* ``uninformative``: the interval holds both 0 and ``v``: the data cannot tell the law from no effect.

The direction is read separately: ``holds`` (interval above 0), ``reversed`` (below 0) or ``not
established`` (holds 0). A result that is not shown false is "not established", never an artefact.

**Leave one task out.** The fit is repeated without each task in turn; the range of the slopes
and every task whose removal changes the state or the direction are reported ("hinges on
mnist 4 vs 9"). A verdict that hinges on one task is one task's verdict.

**Datasets as a level.** Class pairs of one dataset share its images and are not independent
tasks. The check clustered by dataset (:func:`lightning_dims.analysis.meta.clustered`: CR2
cluster-robust interval, Satterthwaite degrees of freedom) gives the slope's interval with datasets
as the units; it needs 3 datasets. Its state is stated beside the task-level one, so a verdict
that holds over tasks but not over datasets says so.

**Subgroups.** Scopes other than the declared primary one (a domain, one N, one arch, a further
series) are exploratory: their p values are Holm-adjusted over the scopes shown (:func:`holm`,
``statsmodels.stats.multitest.multipletests``), and prose picks out no scope by its unadjusted p.
For a law's slope (:func:`adjust`) two p values per scope are adjusted, each over the family of
exploratory scopes: ``p_0`` of the t test (Knapp-Hartung, ``n - 2`` d.o.f.) of slope = 0, and
``p_v`` of slope = the law's value ``v``. The three states are then read from the adjusted p as
they are from the interval without adjustment (an interval excludes a value exactly when the
test of that value has p < 0.05): *rejected* when ``holm(p_v) < 0.05``, else *consistent* when
``holm(p_0) < 0.05``, else *uninformative*; the direction holds (or is reversed) only when
``holm(p_0) < 0.05``.

**Power** (:func:`tasks_for_power`): the number of tasks at which a task-level Pearson r of a
given size excludes 0 in a two-sided test at ``level`` with probability ``power`` (Fisher's z:
``n = ((z_{1-a/2} + z_power) / artanh r)^2 + 3``, rounded up); stated at 80 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from lightning_dims.analysis.meta import ClusteredCheck, MetaRegression, clustered, random_effects
from lightning_dims.analysis.stats import FitError

__all__ = [
    "CONSISTENT", "REJECTED", "UNINFORMATIVE", "Adjusted", "LeaveOneOut", "Verdict", "adjust", "direction_of", "holm",
    "leave_one_out", "slope_p", "state_of", "tasks_for_power", "verdict", "why_no_leave_one_out",
]

CONSISTENT, REJECTED, UNINFORMATIVE = "consistent", "rejected", "uninformative"
POWER = 0.8


def state_of(interval: tuple[float, float], law_value: float) -> str:
    """``consistent`` / ``rejected`` / ``uninformative`` (module docstring) of an interval against the law's value.

    The law's value counts as inside when it is within rounding (1e-9 relative) of an end: an exact fit has an
    interval of width 0 around the law's own value.
    """
    low, high = interval
    tolerance = 1e-9 * max(1.0, abs(law_value))
    if not low - tolerance <= law_value <= high + tolerance:
        return REJECTED
    return UNINFORMATIVE if low <= 0 <= high else CONSISTENT


def direction_of(interval: tuple[float, float]) -> str:
    """``holds`` (above 0), ``reversed`` (below 0) or ``not established`` (holds 0)."""
    low, high = interval
    return "holds" if low > 0 else "reversed" if high < 0 else "not established"


@dataclass(frozen=True)
class LeaveOneOut:
    """The random-effects fit without each task: (task, slope, interval, state, direction), the slope range, and
    ``hinges``: the tasks whose removal changes the state or the direction."""

    without: tuple[tuple[str, float, tuple[float, float], str, str], ...]
    low: float
    high: float
    hinges: tuple[str, ...]


def why_no_leave_one_out(n: int) -> str:
    """Why :func:`leave_one_out` gave None for a fit over ``n`` tasks."""
    return f"{n} tasks; needs 4" if n < 4 else "without any one task the others share one x"


def leave_one_out(fit: MetaRegression, law_value: float) -> LeaveOneOut | None:
    """Refit ``fit`` without each of its tasks (needs 4 tasks, so that 3 remain); None when it cannot."""
    if fit.n < 4:
        return None
    state, direction = state_of(fit.slope_interval(), law_value), direction_of(fit.slope_interval())
    without = []
    for i, label in enumerate(fit.labels):
        keep = np.arange(fit.n) != i
        try:
            refit = random_effects(fit.x[keep], fit.y[keep], fit.se[keep], [l for l in fit.labels if l != label])
        except FitError:  # the others share one x: no slope without this task
            continue
        interval = refit.slope_interval()
        without.append((label, refit.slope, interval, state_of(interval, law_value), direction_of(interval)))
    if not without:
        return None
    slopes = [w[1] for w in without]
    hinges = tuple(w[0] for w in without if (w[3], w[4]) != (state, direction))
    return LeaveOneOut(tuple(without), min(slopes), max(slopes), hinges)


@dataclass(frozen=True)
class Verdict:
    """A law's coefficient over tasks: the random-effects fit (primary), its state against ``law_value``,
    leave-one-task-out, and the check clustered by dataset (or why there is none)."""

    law_value: float
    law_note: str
    primary: MetaRegression
    state: str
    direction: str
    leave_one_out: LeaveOneOut | None
    datasets: tuple[str, ...]
    by_dataset: ClusteredCheck | None
    by_dataset_state: str | None
    by_dataset_refused: str | None

    @property
    def n_datasets(self) -> int:
        return len(set(self.datasets))

    def to_dict(self) -> dict:
        p = self.primary
        loo = self.leave_one_out
        return {
            "law_value": self.law_value, "law_note": self.law_note, "state": self.state, "direction": self.direction,
            "random_effects": {
                "method": p.method, "slope": p.slope, "slope_ci": list(p.slope_interval()), "slope_p": p.slope_p(),
                "intercept": p.intercept, "cov": p.cov.tolist(), "tau2": p.tau2, "tau": p.tau, "df": p.df,
                "weights": dict(zip(p.labels, p.weights.tolist())), "max_weight_share": p.max_weight_share,
                "heaviest": p.heaviest,
            },
            "leave_one_out": None if loo is None else {
                "range": [loo.low, loo.high], "hinges": list(loo.hinges),
                "without": [{"task": t, "slope": s, "slope_ci": list(i), "state": st, "direction": d}
                            for t, s, i, st, d in loo.without]},
            "n_datasets": self.n_datasets,
            "datasets": list(self.datasets),
            "by_dataset": None if self.by_dataset is None else {
                "method": self.by_dataset.method, "slope": self.by_dataset.slope,
                "slope_ci": list(self.by_dataset.interval), "dof": self.by_dataset.dof,
                "n_datasets": self.by_dataset.n_clusters, "state": self.by_dataset_state,
                "notes": list(self.by_dataset.notes)},
            "by_dataset_refused": self.by_dataset_refused,
        }


def verdict(
    x: Sequence[float], y: Sequence[float], se: Sequence[float], labels: Sequence[str], datasets: Sequence[str],
    law_value: float, law_note: str,
) -> Verdict:
    """The :class:`Verdict` of the points (one per task; ``datasets`` names each task's dataset).

    Raises :class:`FitError` when the random-effects fit itself cannot be made.
    """
    primary = random_effects(x, y, se, labels)
    interval = primary.slope_interval()
    by_dataset, by_dataset_state, refused = None, None, None
    try:
        by_dataset = clustered(x, y, se, datasets)
        by_dataset_state = state_of(by_dataset.interval, law_value)
    except FitError as error:
        refused = str(error)
    return Verdict(law_value, law_note, primary, state_of(interval, law_value), direction_of(interval),
                   leave_one_out(primary, law_value), tuple(datasets), by_dataset, by_dataset_state, refused)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p values (``statsmodels.stats.multitest.multipletests(method="holm")``); NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(len(p), math.nan)
    finite = np.isfinite(p)
    if finite.any():
        out[finite] = multipletests(p[finite], method="holm")[1]
    return out.tolist()


def slope_p(fit: MetaRegression, null: float) -> float:
    """Two-sided p of slope = ``null`` (:meth:`MetaRegression.slope_p`); an exact fit (SE 0) gives 1 at its own
    slope (within rounding, as :func:`state_of`) and 0 elsewhere."""
    if fit.slope_se > 0:
        return fit.slope_p(null)
    return 1.0 if abs(fit.slope - null) <= 1e-9 * max(1.0, abs(null)) else 0.0


@dataclass(frozen=True)
class Adjusted:
    """An exploratory verdict read after Holm's adjustment over the ``family`` exploratory scopes shown (module
    docstring): raw and adjusted p of slope = 0 and of slope = the law's value, and the state and direction they give."""

    p_zero: float
    p_law: float
    holm_zero: float
    holm_law: float
    family: int
    state: str
    direction: str

    def to_dict(self) -> dict:
        return asdict(self)


def adjust(verdicts: Sequence[Verdict], level: float = 0.95) -> list[Adjusted]:
    """Holm-adjusted readings of exploratory ``verdicts`` (one family: the scopes shown besides the primary)."""
    p_zero = [slope_p(v.primary, 0.0) for v in verdicts]
    p_law = [slope_p(v.primary, v.law_value) for v in verdicts]
    out = []
    for v, p0, pv, h0, hv in zip(verdicts, p_zero, p_law, holm(p_zero), holm(p_law)):
        shown_zero = h0 < 1 - level
        state = REJECTED if hv < 1 - level else CONSISTENT if shown_zero else UNINFORMATIVE
        direction = "not established" if not shown_zero else "holds" if v.primary.slope > 0 else "reversed"
        out.append(Adjusted(p0, pv, h0, hv, len(verdicts), state, direction))
    return out


def tasks_for_power(r: float, power: float = POWER, level: float = 0.95) -> int:
    """Tasks needed for a two-sided Fisher-z test of a Pearson r of ``r`` to exclude 0 with probability ``power``."""
    z = stats.norm.ppf((1 + level) / 2) + stats.norm.ppf(power)
    return math.ceil((z / math.atanh(abs(r))) ** 2 + 3)
