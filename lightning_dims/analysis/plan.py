"""Planning a training size: the N at which a task's test loss reaches a target, with a 95 % interval.

Two routes, one answer (:class:`SizePlan`), and a backtest of both (docs/plan.md).

**From a task's own runs** (:func:`plan_from_curve`). The report's learning curve
(:func:`lightning_dims.analysis.tasks.task_exponents`): OLS of ``log L = c - alpha log N`` over
the task's runs. The planned size solves ``c - alpha log N* = log L*``:
``N* = exp((c - log L*) / alpha)``. Its interval is **Fieller's** (inverse regression): the log N
whose fitted mean's t interval (``n - 2`` d.o.f., ``s sqrt(1/n + (x - mean x)^2 / Sxx)``) contains
``log L*``. Solving ``(log L* - c + alpha x)^2 <= t^2 s^2 (1/n + (x - mean x)^2 / Sxx)`` is a
quadratic in ``x = log N``; when alpha's own t interval includes 0 the set is unbounded and the
upper end is reported as unbounded (``None``) instead of a made-up number. The interval is the
fit's uncertainty about the mean curve, not a single run's seed-to-seed spread.
With ``metric="error"`` the same fit is made to the test error ``1 - accuracy`` (runs with no
error at all are left out: log 0).

**Floor.** A power law falls for ever; real curves level off at an irreducible loss. The
saturating curve ``L = L_inf + a N^-b`` (``scipy.optimize.curve_fit`` in log L, ``0 <= L_inf <
min L``) is fitted beside the power law, which is its ``L_inf = 0`` case. When it fits
significantly better (extra-sum-of-squares F test, 1 and ``n - 3`` d.o.f., p < 0.05) its
``L_inf`` is the **fitted floor**, and a target at or below it is refused: no N reaches it.

**From K_F and d_data alone** (:func:`plan_from_law`). The across-task random-effects fits
(:func:`lightning_dims.analysis.meta.random_effects`: REML tau^2, Knapp-Hartung t) of
``alpha = b0 + b1 / d_data`` and ``log L(N_c) = b0 + b1 log K_F`` (``N_c`` the geometric middle
of the arch's sizes, as in the report) give, for a new task, ``alpha`` and ``log L(N_c)``, each
with a prediction interval that includes the between-task spread ``tau``. Then
``log N* = log N_c + (log L(N_c) - log L*) / alpha``. Its interval is a **parametric draw**:
:data:`DRAWS` pairs (seeded), each quantity ``mean + t_{df} * sqrt(x' cov x + tau^2)`` (a Student
t draw with the fit's d.o.f.), the two fits drawn independently (their errors share the tasks;
that correlation is not modelled); a draw with ``alpha <= 0`` never reaches the target (N = inf).
The 2.5 and 97.5 percentiles of the drawn N are the interval; an infinite upper percentile is
reported as unbounded.

**Too wide to act on.** An interval whose ends differ by more than :data:`TOO_WIDE` times (more
than a decade of N), or that is unbounded, says nothing about whether to label 2,000 or 20,000
images; the plan says so (:attr:`SizePlan.too_wide`).

**Extrapolation.** ``N* / (the largest N run)``, the task's own (curve) or the arch's (law);
beyond :data:`EXTRAPOLATION_WARNING` the plan warns.

**Fragility** (:func:`fragility`). One point per task: its K_F and the mean FGSM loss penalty of
its runs (standard error: their standard deviation over sqrt(runs)); the random-effects line of
penalty on K_F predicts the new task's penalty with a prediction interval (tau included). The
task is called **likely fragile** only when that interval lies wholly above the median of the
fitted tasks' mean penalties *and* the slope's interval lies above 0.

Refusals (:class:`PlanRefused`, one line, no N): a target at or below the fitted floor, a single
training size, a curve that does not fall (alpha <= 0), a target outside (0, 1) for the error.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats

from lightning_dims.analysis.laws import SE_FLOOR
from lightning_dims.analysis.meta import MetaRegression, random_effects
from lightning_dims.analysis.robustness import penalty_points
from lightning_dims.analysis.rows import RunRow
from lightning_dims.analysis.stats import FitError, LineFit, fit_line
from lightning_dims.analysis.tasks import TaskExponent, TaskProperties
from lightning_dims.errors import LightningDimsError

__all__ = [
    "DRAWS",
    "EXTRAPOLATION_WARNING",
    "FLOOR_P",
    "LEVEL",
    "TOO_WIDE",
    "Fragility",
    "LawPoint",
    "Laws",
    "PlanRefused",
    "SizePlan",
    "fieller_interval",
    "fit_floor",
    "fit_laws",
    "fragility",
    "curve_points",
    "law_points",
    "task_penalties",
    "plan_from_curve",
    "plan_from_law",
    "predict_log_loss",
]

LEVEL = 0.95
TOO_WIDE = 10.0
"""An interval whose ends differ by more than this factor (a decade of N) is too wide to act on."""
EXTRAPOLATION_WARNING = 4.0
"""A planned N beyond this multiple of the largest N run is flagged as a far extrapolation."""
FLOOR_P = 0.05
"""The saturating curve's floor is used when its F test against the power law has p below this."""
DRAWS = 20000
DRAW_SEED = 0


class PlanRefused(LightningDimsError, ValueError):
    """No N can be planned from these runs; the message says why (one line)."""


@dataclass(frozen=True)
class SizePlan:
    """The training size ``n`` at which the ``metric`` (``loss``: nats; ``error``: 1 - accuracy) reaches
    ``target``, its ``level`` interval (``None`` = unbounded on that side) and where it comes from."""

    method: str
    metric: str
    target: float
    n: float
    interval: tuple[float | None, float | None]
    largest_n: int
    tasks: tuple[str, ...]
    alpha: float
    alpha_interval: tuple[float | None, float | None]
    k_f: float | None = None
    d_data: float | None = None
    floor: float | None = None
    n_datasets: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    level: float = LEVEL

    @property
    def extrapolation(self) -> float:
        """``n`` over the largest N run."""
        return self.n / self.largest_n

    @property
    def too_wide(self) -> bool:
        """Unbounded, or ends more than :data:`TOO_WIDE` times apart."""
        low, high = self.interval
        return low is None or high is None or low <= 0 or high / low > TOO_WIDE

    def to_json(self) -> dict:
        return {
            "n": self.n, "interval": list(self.interval), "level": self.level, "metric": self.metric,
            "target_loss" if self.metric == "loss" else "target_error": self.target,
            "method": self.method, "tasks": list(self.tasks), "n_tasks": len(self.tasks), "n_datasets": self.n_datasets,
            "k_f": self.k_f, "d_data": self.d_data, "alpha": self.alpha, "alpha_interval": list(self.alpha_interval),
            "largest_n": self.largest_n, "extrapolation": self.extrapolation,
            "far_extrapolation": self.extrapolation > EXTRAPOLATION_WARNING, "too_wide": self.too_wide,
            "floor": self.floor, "notes": list(self.notes),
        }


def _t(df: int, level: float = LEVEL) -> float:
    return float(stats.t.ppf((1 + level) / 2, df))


def fieller_interval(fit: LineFit, y_target: float, level: float = LEVEL) -> tuple[float | None, float | None]:
    """The x whose fitted mean's t interval contains ``y_target`` (module docstring), the ray or bounded set
    that holds the point estimate; ``None`` on an unbounded side. ``fit`` is an OLS :class:`LineFit`."""
    t = _t(fit.n - 2, level)
    b1, s2 = fit.slope, fit.residual_sd**2
    g = t * t * s2 / fit.sxx
    d = y_target - (fit.intercept + b1 * fit.x_mean)  # target minus the fitted mean at mean x
    a = b1 * b1 - g
    c = d * d - t * t * s2 / fit.sum_weights
    if b1 == 0:
        return None, None
    u_star = d / b1
    disc = (d * b1) ** 2 - a * c
    if a > 0:  # slope significant: a bounded interval around the point
        root = math.sqrt(max(disc, 0.0))
        return fit.x_mean + (d * b1 - root) / a, fit.x_mean + (d * b1 + root) / a
    if a == 0 or disc < 0:
        return None, None
    roots = sorted(((d * b1 - math.sqrt(disc)) / a, (d * b1 + math.sqrt(disc)) / a))
    if u_star >= roots[1]:
        return fit.x_mean + roots[1], None
    if u_star <= roots[0]:
        return None, fit.x_mean + roots[0]
    return None, None


def fit_floor(n: Sequence[float], values: Sequence[float], p_threshold: float = FLOOR_P) -> float | None:
    """``L_inf`` of ``L = L_inf + a N^-b`` when it beats the power law (F test, p < ``p_threshold``); else None."""
    n, values = np.asarray(n, dtype=np.float64), np.asarray(values, dtype=np.float64)
    if len(n) < 4 or len(np.unique(n)) < 3:
        return None
    x, y = np.log(n), np.log(values)
    power = fit_line(x, y)
    rss_power = float(((y - power.predict(x)) ** 2).sum())

    def curve(size, floor, log_a, b):
        return np.log(floor + np.exp(log_a - b * np.log(size)))

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = optimize.curve_fit(
                curve, n, y, p0=(0.5 * values.min(), power.intercept, max(-power.slope, 0.1)),
                bounds=([0.0, -50.0, 1e-6], [values.min() * (1 - 1e-9), 50.0, 20.0]), maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    rss_floor = float(((y - curve(n, *params)) ** 2).sum())
    dof = len(n) - 3
    if rss_floor <= 0:
        return float(params[0]) if params[0] > 0 else None
    f = (rss_power - rss_floor) / (rss_floor / dof)
    return float(params[0]) if f > 0 and stats.f.sf(f, 1, dof) < p_threshold else None


def plan_from_curve(task: str, n: Sequence[int], values: Sequence[float], target: float, *,
                    metric: str = "loss", level: float = LEVEL) -> SizePlan:
    """The size at which the task's power law ``value = a N^-alpha`` (OLS in logs over its runs) reaches
    ``target``, with Fieller's interval; refuses (:class:`PlanRefused`) as the module docstring says."""
    sizes = sorted(set(int(v) for v in n))
    if not target > 0 or (metric == "error" and target >= 1):
        raise PlanRefused(f"target {metric} {target} is not a reachable value (must be > 0{' and < 1' if metric == 'error' else ''})")
    if len(sizes) < 2:
        raise PlanRefused(f"{task}: a single training size ({sizes[0] if sizes else 'none'}) has no learning curve; "
                          "run at least two (three for the report's fit)")
    try:
        fit = fit_line(np.log(n), np.log(values), confidence=level)
    except FitError as error:
        raise PlanRefused(f"{task}: {error}") from None
    alpha = -fit.slope
    if alpha <= 0:
        raise PlanRefused(f"{task}: the {metric} does not fall with N (alpha = {alpha:.3g} <= 0), so no N reaches "
                          f"{target}")
    floor = fit_floor(n, values)
    if floor is not None and target <= floor:
        raise PlanRefused(f"{task}: target {metric} {target:.4g} is at or below the fitted floor {floor:.4g} "
                          "(L = L_inf + a N^-b beats the power law, F test p < 0.05): no N reaches it")
    low, high = fieller_interval(fit, math.log(target), level)
    slope_low, slope_high = fit.slope_ci
    alpha_interval = (None if slope_high is None else -slope_high, None if slope_low is None else -slope_low)
    notes = []
    if len(sizes) == 2:
        notes.append("two training sizes: the power law's shape is assumed, not tested (the report's fit needs three)")
    if high is None:
        notes.append(f"alpha's {level:.0%} interval reaches down to {alpha_interval[0]:.3g}: the curve may be flat, "
                     "so there is no upper N")
    return SizePlan(
        method=f"own learning curve: OLS log {metric} = c - alpha log N over {fit.n} runs at {len(sizes)} sizes, "
               f"Fieller {level:.0%} interval (t, {fit.n - 2} d.o.f.)",
        metric=metric, target=target, n=math.exp((fit.intercept - math.log(target)) / alpha),
        interval=(None if low is None else math.exp(low), None if high is None else math.exp(high)),
        largest_n=sizes[-1], tasks=(task,), alpha=alpha,
        alpha_interval=alpha_interval,
        floor=floor, n_datasets=1, notes=tuple(notes), level=level,
    )


@dataclass(frozen=True)
class LawPoint:
    """One task's point for the across-task laws: its exponent and its log loss at ``N_c``, each with its SE."""

    task: str
    dataset: str
    k_f: float | None
    d_data: float | None
    alpha: float
    alpha_se: float
    log_loss_centre: float
    log_loss_centre_se: float


@dataclass(frozen=True)
class Laws:
    """``alpha`` on ``1/d_data`` and ``log L(N_c)`` on ``log K_F``, random effects, over ``points``."""

    exponent: MetaRegression
    loss: MetaRegression
    centre_n: float
    largest_n: int
    points: tuple[LawPoint, ...]

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.exponent.labels) | set(self.loss.labels)))

    @property
    def n_datasets(self) -> int:
        return len({p.dataset for p in self.points if p.task in self.tasks})



def fit_laws(points: Sequence[LawPoint], centre_n: float, largest_n: int) -> Laws:
    """Both random-effects fits over the points that have the property (raises ``FitError`` below 3 tasks)."""
    with_d = [p for p in points if p.d_data is not None and p.d_data > 0]
    with_k = [p for p in points if p.k_f is not None and p.k_f > 0]
    exponent = random_effects([1 / p.d_data for p in with_d], [p.alpha for p in with_d],
                              [max(p.alpha_se, SE_FLOOR) for p in with_d], [p.task for p in with_d])
    loss = random_effects([math.log(p.k_f) for p in with_k], [p.log_loss_centre for p in with_k],
                          [max(p.log_loss_centre_se, SE_FLOOR) for p in with_k], [p.task for p in with_k])
    return Laws(exponent, loss, centre_n, largest_n, tuple(points))


def law_points(exponents: Mapping[tuple[str, str], TaskExponent], properties: Mapping[tuple[str, str], TaskProperties],
               arch: str) -> list[LawPoint]:
    """The report's per-task points of ``arch`` (:mod:`lightning_dims.analysis.laws` fits the same ones)."""
    points = []
    for (a, task), e in exponents.items():
        props = properties.get((a, task))
        if a != arch or props is None:
            continue
        points.append(LawPoint(task, props.dataset, props.label_sharpness, props.d_data, e.alpha, e.fit.slope_se,
                               math.log(e.loss_at_centre), e.fit.mean_se_at(math.log(e.centre_n))))
    return points


def task_penalties(rows: Sequence[RunRow], properties: Mapping[tuple[str, str], TaskProperties]
                   ) -> dict[str, tuple[float, list[float]]]:
    """task -> (its reference K_F, its runs' FGSM loss penalties), the input of :func:`fragility`."""
    penalties: dict[str, tuple[float, list[float]]] = {}
    for row, k_f in penalty_points(rows, properties):
        penalties.setdefault(row.task, (k_f, []))[1].append(row.loss_penalty)
    return penalties


def curve_points(rows: Sequence[RunRow], arch: str, task: str, metric: str = "loss") -> tuple[list[int], list[float]]:
    """(N, value) of a task's runs with a positive value: test loss, or test error ``1 - accuracy``."""
    n, values = [], []
    for row in rows:
        value = row.test_loss if metric == "loss" else (None if row.test_acc is None else 1.0 - row.test_acc)
        if row.arch == arch and row.task == task and value is not None and math.isfinite(value) and value > 0:
            n.append(row.n_train)
            values.append(value)
    return n, values


def _draw(fit: MetaRegression, x: float, rng: np.random.Generator, draws: int) -> np.ndarray:
    """``mean + t_df * sqrt(x' cov x + tau^2)``: draws of a new task's value at ``x``."""
    design = np.array([1.0, x])
    sd = math.sqrt(float(design @ fit.cov @ design) + fit.tau2)
    return fit.intercept + fit.slope * x + sd * rng.standard_t(fit.df, size=draws)


def _law_draws(laws: Laws, k_f: float, d_data: float, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return _draw(laws.exponent, 1 / d_data, rng, draws), _draw(laws.loss, math.log(k_f), rng, draws)


def predict_log_loss(laws: Laws, k_f: float, d_data: float, n: float, level: float = LEVEL,
                     draws: int = DRAWS, seed: int = DRAW_SEED) -> tuple[float, tuple[float, float]]:
    """A new task's ``log L(n)`` from the laws, ``log L(N_c) - alpha (log n - log N_c)``, and its draw interval."""
    alpha, log_centre = _law_draws(laws, k_f, d_data, draws, seed)
    drawn = log_centre - alpha * (math.log(n) - math.log(laws.centre_n))
    mean = (laws.loss.intercept + laws.loss.slope * math.log(k_f)
            - (laws.exponent.intercept + laws.exponent.slope / d_data) * (math.log(n) - math.log(laws.centre_n)))
    tail = (1 - level) / 2
    low, high = np.quantile(drawn, [tail, 1 - tail])
    return float(mean), (float(low), float(high))


def plan_from_law(laws: Laws, k_f: float, d_data: float, target: float, *, task: str = "new task",
                  level: float = LEVEL, draws: int = DRAWS, seed: int = DRAW_SEED) -> SizePlan:
    """The size at which a new task with this K_F and d_data reaches ``target`` loss (module docstring)."""
    if not target > 0:
        raise PlanRefused(f"target loss {target} is not a reachable value (must be > 0)")
    alpha_hat, alpha_interval = laws.exponent.predict(1 / d_data, level, new_task=True)
    log_centre, _ = laws.loss.predict(math.log(k_f), level, new_task=True)
    if alpha_hat <= 0:
        raise PlanRefused(f"{task}: the law predicts a curve that does not fall (alpha = {alpha_hat:.3g} <= 0 at "
                          f"d_data = {d_data:.3g}), so no N reaches {target}")
    alpha, centre = _law_draws(laws, k_f, d_data, draws, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_n = np.where(alpha > 0, math.log(laws.centre_n) + (centre - math.log(target)) / alpha, np.inf)
    tail = (1 - level) / 2
    ordered = np.sort(log_n)
    low, high = ordered[int(math.floor(tail * (draws - 1)))], ordered[int(math.ceil((1 - tail) * (draws - 1)))]
    never = float(np.mean(~(alpha > 0)))
    notes = [f"{never:.1%} of the draws have alpha <= 0 (the loss never falls to the target)"] if never else []
    return SizePlan(
        method=(f"across-task law: random effects ({laws.exponent.method}) of alpha on 1/d_data over "
                f"{laws.exponent.n} tasks (tau = {laws.exponent.tau:.3g}) and of log L(N_c = {laws.centre_n:.0f}) on "
                f"log K_F over {laws.loss.n} tasks (tau = {laws.loss.tau:.3g}); {level:.0%} interval from {draws} "
                "parametric draws of both predictions (tau included, the two fits drawn independently)"),
        metric="loss", target=target, n=math.exp(math.log(laws.centre_n) + (log_centre - math.log(target)) / alpha_hat),
        interval=(float(math.exp(low)) if math.isfinite(low) else None, float(math.exp(high)) if math.isfinite(high) else None),
        largest_n=laws.largest_n, tasks=laws.tasks, alpha=alpha_hat, alpha_interval=alpha_interval,
        k_f=k_f, d_data=d_data, n_datasets=laws.n_datasets, notes=tuple(notes), level=level,
    )


@dataclass(frozen=True)
class Fragility:
    """The FGSM loss penalty (nats) the penalty-vs-K_F random-effects line predicts at ``k_f``."""

    k_f: float
    penalty: float
    interval: tuple[float, float]
    rank: int
    n_tasks: int
    median_penalty: float
    slope_interval: tuple[float, float]
    likely_fragile: bool
    fit: MetaRegression

    def to_json(self) -> dict:
        return {"k_f": self.k_f, "penalty": self.penalty, "interval": list(self.interval),
                "tasks_below_in_k_f": self.rank, "n_tasks": self.n_tasks, "median_penalty": self.median_penalty,
                "slope_interval": list(self.slope_interval), "likely_fragile": self.likely_fragile,
                "tau": self.fit.tau, "method": self.fit.method}

    def text(self) -> str:
        verdict = ("likely fragile: the interval lies above the median task's penalty" if self.likely_fragile else
                   "not called fragile: " + ("the penalty-K_F slope's interval includes 0"
                                             if self.slope_interval[0] <= 0 else
                                             "the interval reaches down to the median task's penalty"))
        return (f"K_F {self.k_f:.4g} is above {self.rank} of the {self.n_tasks} fitted tasks' K_F; predicted FGSM loss "
                f"penalty {self.penalty:.3g} nats [{self.interval[0]:.3g}, {self.interval[1]:.3g}] (median task "
                f"{self.median_penalty:.3g}; slope per unit K_F {self.fit.slope:.3g} [{self.slope_interval[0]:.3g}, "
                f"{self.slope_interval[1]:.3g}], tau {self.fit.tau:.3g}): {verdict}")


def fragility(penalties: Mapping[str, tuple[float, Sequence[float]]], k_f: float, level: float = LEVEL) -> Fragility:
    """``penalties``: task -> (its K_F, its runs' FGSM loss penalties). Random-effects line of the mean
    penalty on K_F (SE: the runs' standard deviation / sqrt(runs)), predicted at ``k_f`` (module docstring)."""
    tasks = [task for task, (_, runs) in penalties.items() if len(runs) >= 1]
    x = [penalties[t][0] for t in tasks]
    y = [float(np.mean(penalties[t][1])) for t in tasks]
    se = [max(float(np.std(penalties[t][1], ddof=1) / math.sqrt(len(penalties[t][1])))
              if len(penalties[t][1]) > 1 else 0.0, SE_FLOOR) for t in tasks]
    fit = random_effects(x, y, se, tasks)
    mean, interval = fit.predict(k_f, level, new_task=True)
    median = float(np.median(y))
    slope_interval = fit.slope_interval(level)
    return Fragility(k_f=k_f, penalty=mean, interval=interval, rank=int(sum(v < k_f for v in x)), n_tasks=len(tasks),
                     median_penalty=median, slope_interval=slope_interval,
                     likely_fragile=bool(interval[0] > median and slope_interval[0] > 0), fit=fit)
