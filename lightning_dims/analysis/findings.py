"""The analysis in plain words: a few findings, each with its numbers, saying plainly when one does not hold.

Each :class:`Finding` is a claim of the paper put to the data, the numbers behind the verdict, and
``holds``: True only when the declared test supports the claim at 95 %. Every interval behind a
verdict treats as independent only what is independent: tasks, not the runs of one task, and the
text states the number of datasets, tasks and runs (docs/analysis.md, "Which unit"). The demo
prints them and the report lists the same text.

**One declared primary finding per law** (``primary=True``), judged at 95 %: the first series
varying the law's factor, else all tasks of the first arch (in name order); further series and
archs are exploratory, and their findings are read after Holm's adjustment over the exploratory
scopes of the law (:mod:`lightning_dims.analysis.scopes`): the unadjusted state is named as such,
and ``holds`` and ``state`` are the adjusted ones. Subgroup scopes (domain, N) never give a
finding; the report shows them as exploratory with Holm-adjusted p values
(:mod:`lightning_dims.analysis.robustness`, :mod:`lightning_dims.analysis.laws` for Fig. 2).

1. **Loss falls with N** within each task: ``alpha > 0`` with its interval above 0.
2. **Higher d, slower learning**: random-effects slope of ``alpha`` on ``1 / d_data``
   (:class:`lightning_dims.analysis.verdicts.Verdict`), in three states against the law's 1:
   consistent, rejected, uninformative; then the direction, leave one task out ("hinges on"),
   the check clustered by dataset, the reading without the runs the health rule excludes, and the
   1/SE^2 sensitivity line.
3. **Sharper labels, higher loss**: the same for ``log L(N_c)`` on ``log K_F``, against the law's
   slope at the tasks' measured d_data.
4. **Sharper labels, more fragile**: the task-level Pearson r of K_F and the mean FGSM penalty
   above 0 (with its task-permutation p, leave one task out, a whole-dataset bootstrap, the
   partial r given the clean loss, the reading without excluded runs, and the tasks 80 % power needs).
5. **d_repr <= d_data** in the paper's layer (the first recorded): runs below per task; holds when
   it holds in every run.

Where the seed-to-seed reliability of K_F or d_data (:mod:`lightning_dims.analysis.reliability`)
is below 0.9, the findings on it say so: fits on a noisy property are attenuated towards 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_dims.analysis.analyse import Analysis
from lightning_dims.analysis.laws import AcrossTasks
from lightning_dims.analysis.reliability import Reliability
from lightning_dims.analysis.scopes import ALPHA, LAWS, LOSS, LawScope
from lightning_dims.analysis.stats import Interval
from lightning_dims.analysis.tasks import centre_sizes
from lightning_dims.analysis.verdicts import CONSISTENT, REJECTED, UNINFORMATIVE, Adjusted, tasks_for_power, why_no_leave_one_out

__all__ = [
    "DIRECTION",
    "PAPER_FRAGILITY_R",
    "Finding",
    "above_zero",
    "datasets",
    "dimension_slows_learning",
    "findings",
    "fmt_p",
    "interval_text",
    "loss_falls_with_n",
    "representation_bound",
    "sharpness_makes_fragile",
    "sharpness_raises_loss",
]

DIRECTION = {"holds": "the direction holds", "reversed": "the direction is reversed",
             "not established": "the direction is not established"}

PAPER_FRAGILITY_R = 0.70
"""The paper's K_F-fragility correlation over its 11 datasets: the effect size power is stated at."""


@dataclass(frozen=True)
class Finding:
    claim: str
    holds: bool
    text: str
    state: str | None = None
    primary: bool = True


def interval_text(interval: Interval, digits: int = 2) -> str:
    low, high = interval
    if low is None or high is None:
        return "[interval n/a]"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def above_zero(interval: Interval) -> bool:
    return interval[0] is not None and interval[0] > 0


def loss_falls_with_n(analysis: Analysis) -> Finding | None:
    exponents = list(analysis.exponents.values())
    if not exponents:
        return None
    positive = [e for e in exponents if e.alpha > 0]
    sure = [e for e in exponents if above_zero(e.alpha_ci)]
    low, high = min(e.alpha for e in exponents), max(e.alpha for e in exponents)
    holds = len(sure) == len(exponents)
    verdict = "This holds." if holds else "At 95% the fall is not certain in every task at this scale."
    text = (f"Test loss falls with training size in {len(positive)} of {len(exponents)} tasks "
            f"({sum(e.n_runs for e in exponents)} runs; exponent alpha of L ~ N^-alpha from {low:.2f} to {high:.2f}, "
            f"fitted per task); the 95% interval of alpha lies above 0 in {len(sure)} of them. {verdict}")
    return Finding("loss falls with N", holds, text)


def datasets(n: int) -> str:
    return f"{n} dataset" + ("" if n == 1 else "s")


def _state_text(state: str, law_value: float, note: str) -> str:
    if state == CONSISTENT:
        return f"consistent with the law ({note}, {law_value:.2f}, inside the interval, which excludes 0)"
    if state == REJECTED:
        return f"the law's value is rejected ({note}, {law_value:.2f}, outside the interval)"
    return f"uninformative: the interval holds both 0 and {note} ({law_value:.2f}), so the law is not established"


def _reading(fit: AcrossTasks) -> str:
    v = fit.verdict
    return f"{v.state}, slope {v.primary.slope:.2f} {interval_text(v.primary.slope_interval())}"


def _adjusted_text(fit: AcrossTasks, adjusted: Adjusted) -> str:
    """An exploratory scope's state clause: unadjusted state, then the Holm-adjusted p and the state they give."""
    v = fit.verdict
    p_values = (f"Holm-adjusted over the {adjusted.family} exploratory scopes shown: p of slope 0 = "
                f"{adjusted.holm_zero:.2g}, of {v.law_note} ({v.law_value:.2f}) = {adjusted.holm_law:.2g}")
    reading = {CONSISTENT: "consistent with the law", REJECTED: "the law's value is rejected",
               UNINFORMATIVE: "uninformative, the law is not established"}[adjusted.state]
    return (f"unadjusted {v.state}; {p_values}: after adjustment {reading}; "
            f"{DIRECTION[adjusted.direction]} after adjustment.")


def _law_text(scope: LawScope, what: str, where: str, healthy: AcrossTasks | None, excluded: int, caveat: str) -> str:
    """The verdict of one law in one scope (module docstring), in the order: scope, fit, state, direction, checks."""
    fit = scope.fit
    v, re = fit.verdict, fit.verdict.primary
    role = "primary, judged at 95%" if scope.primary else "exploratory"
    judged = (f"{_state_text(v.state, v.law_value, v.law_note)}; {DIRECTION[v.direction]}." if scope.adjusted is None
              else _adjusted_text(fit, scope.adjusted))
    parts = [f"{what} {where} ({role}), over {fit.fit.n} tasks of {datasets(v.n_datasets)} ({fit.n_runs} runs): "
             f"random-effects slope {re.slope:.2f} {interval_text(re.slope_interval())} (REML, Knapp-Hartung t, "
             f"{re.df} d.o.f.; tau {re.tau:.2g}, largest weight {re.max_weight_share:.0%}, {re.heaviest}): {judged}"]
    unadjusted = "" if scope.adjusted is None else " (unadjusted)"
    loo = v.leave_one_out
    if loo is not None:
        hinge = ("no single task's removal changes it" if not loo.hinges else "hinges on " + ", ".join(
            f"{t} (without it: {st}, {d})" for t, _, _, st, d in loo.without if t in loo.hinges))
        parts.append(f"Leave one task out{unadjusted}: slope {loo.low:.2f} to {loo.high:.2f}; {hinge}.")
    else:
        parts.append(f"Leave one task out: not possible ({why_no_leave_one_out(re.n)}).")
    if v.by_dataset is not None:
        over = v.by_dataset
        differs = "" if v.by_dataset_state == v.state else f"; over datasets the verdict is {v.by_dataset_state}, not {v.state}"
        parts.append(f"Clustered by dataset{unadjusted} (CR2, {over.n_clusters} datasets, {over.dof:.1f} d.o.f.): "
                     f"{interval_text(over.interval)}{differs}.")
    else:
        parts.append(f"No check clustered by dataset: {v.by_dataset_refused}.")
    if excluded:
        parts.append(f"Without the {excluded} runs the health rule excludes{unadjusted}: "
                     + (_reading(healthy) if healthy is not None else "no fit (too few tasks left)") + ".")
    parts.append(f"Sensitivity, weights 1/SE^2 with a multiplicative scale: slope {fit.fit.slope:.2f} "
                 f"{interval_text(fit.fit.slope_ci)}.")
    if fit.flagged:
        parts.append(f"Uninformative points (SE of {fit.y} above {fit.flag_threshold:g}): {', '.join(fit.flagged)}.")
    if caveat:
        parts.append(caveat)
    return " ".join(parts)


def _caveat(analysis: Analysis, arch: str, quantity: str) -> str:
    found: Reliability | None = next((r for r in analysis.reliability if r.arch == arch and r.quantity == quantity), None)
    if found is None or found.reliable:
        return ""
    return (f"The task values of {quantity} (mean of {found.seeds_per_task:.0f} seeds) have a seed-to-seed reliability of "
            f"{found.of_mean:.2f}, below 0.9: the slope is attenuated towards 0.")


def _healthy_series(analysis: Analysis, name: str, attribute: str) -> AcrossTasks | None:
    if analysis.healthy is None:
        return None
    result = next((r for r in analysis.healthy.series if r.series.name == name), None)
    return None if result is None else getattr(result, attribute)


def _law_findings(analysis: Analysis, claim: str, what, law: str, quantity: str, all_tasks: str) -> list[Finding]:
    """The findings of one law: its listed scopes (:mod:`lightning_dims.analysis.scopes`), the primary first."""
    attribute, across, _ = LAWS[law]
    healthy_all = {} if analysis.healthy is None else getattr(analysis.healthy, across)
    excluded = 0 if analysis.healthy is None else len(analysis.healthy.excluded)
    out = []
    for scope in analysis.law_scopes.get(law, []):
        if not scope.listed:
            continue
        if scope.series is None:
            where, healthy = all_tasks.format(arch=scope.arch), healthy_all.get(scope.arch)
        else:
            where, healthy = scope.series, _healthy_series(analysis, scope.series, attribute)
        text = _law_text(scope, what(scope.arch), where, healthy, excluded, _caveat(analysis, scope.arch, quantity))
        state = scope.fit.verdict.state if scope.adjusted is None else scope.adjusted.state
        out.append(Finding(claim, state == CONSISTENT, text, state, scope.primary))
    return out


def dimension_slows_learning(analysis: Analysis) -> list[Finding]:
    return _law_findings(analysis, "alpha rises with 1/d_data",
                         lambda arch: "Higher intrinsic dimension, slower learning: exponent alpha vs 1/d_data",
                         ALPHA, "d_data", "across all {arch} tasks")


def sharpness_raises_loss(analysis: Analysis) -> list[Finding]:
    centres = centre_sizes(analysis.rows)
    return _law_findings(analysis, "loss rises with K_F",
                         lambda arch: f"Sharper labels, higher loss: log test loss at N = {centres[arch]:.0f} vs log K_F",
                         LOSS, "log K_F", "across all {arch} tasks (their d_data differ too)")


def fmt_p(p: float | None) -> str:
    return "n/a" if p is None else f"{p:.3g}"


def _fragility_verdict(holds: bool, partial, above: bool) -> str:
    if not holds and above:
        return ("Not established after Holm's adjustment over the exploratory scopes shown, though the unadjusted "
                "task-level interval lies above 0.")
    if not holds:
        return "Not established at this scale: the task-level interval includes 0."
    if partial is None:
        return "The task-level correlation holds; whether beyond the clean loss cannot be said here."
    if above_zero(partial.ci):
        return "This holds at the task level, also beyond what the clean loss explains."
    return ("The task-level correlation holds, but not beyond the clean loss: "
            "at this scale the penalty follows how wrong the network already is.")


def sharpness_makes_fragile(analysis: Analysis) -> list[Finding]:
    scopes = [(r.series.name, r.penalty) for r in analysis.series if r.series.varied != "d" and r.penalty is not None]
    if not scopes:
        scopes = [(f"all {p.arch} runs", p) for p in analysis.penalties if p.scope == "pooled"]
    healthy = {} if analysis.healthy is None else {p.arch: p for p in analysis.healthy.penalties}
    excluded = 0 if analysis.healthy is None else len(analysis.healthy.excluded)
    out = []
    for name, scope in scopes:
        primary = not scope.exploratory  # one declared primary (scopes.penalty_family); the others exploratory
        task_r = scope.tasks_vs_sharpness
        above = task_r is not None and above_zero(task_r.pearson_ci)
        holds = above and (primary or (scope.holm_p is not None and scope.holm_p < 0.05))
        partial = scope.tasks_partial_given_clean_loss
        adjusted = ("" if primary or task_r is None else
                    f", Holm-adjusted over the {scope.holm_family} exploratory scopes shown p = {fmt_p(scope.holm_p)}")
        parts = [("task-level r refused (fewer than 4 tasks)" if task_r is None else
                  f"task-level Pearson r = {task_r.pearson:.2f} {interval_text(task_r.pearson_ci)}, task-permutation "
                  f"p = {task_r.permutation_p:.3g}{adjusted} (one point per task: its K_F and mean penalty)")]
        if scope.task_leave_one_out is not None:
            low, high, hinges = scope.task_leave_one_out
            parts.append(f"leave one task out: r {low:.2f} to {high:.2f}, "
                         + (f"hinges on {', '.join(hinges)}" if hinges else "no single task's removal changes it"))
        else:
            parts.append(f"leave one task out: not possible ({scope.n_tasks} tasks; needs 5)")
        if scope.dataset_bootstrap is not None:
            parts.append(f"whole-dataset bootstrap of the task-level r ({scope.n_datasets} datasets) "
                         f"{interval_text(scope.dataset_bootstrap.ci)}")
        if scope.task_bootstrap is not None:
            parts.append(f"whole-task bootstrap of the run-level r {interval_text(scope.task_bootstrap.ci)}")
        parts.append(f"task-level partial r given the clean test loss {partial.r:.2f} {interval_text(partial.ci)}"
                     if partial is not None else
                     f"a task-level partial r given the clean loss is refused ({scope.n_tasks} tasks: its interval "
                     f"needs 5)")
        other = healthy.get(scope.arch) if name.startswith("all ") else None
        if excluded and other is not None and other.tasks_vs_sharpness is not None:
            parts.append(f"without the {excluded} runs the health rule excludes: r = {other.tasks_vs_sharpness.pearson:.2f} "
                         f"{interval_text(other.tasks_vs_sharpness.pearson_ci)} over {other.n_tasks} tasks")
        role = "primary, judged at 95%" if primary else "exploratory"
        out.append(Finding("FGSM penalty rises with K_F", holds,
                           f"Sharper labels, more fragile ({name}; {role}): FGSM loss penalty vs K_F over {scope.n_tasks} "
                           f"tasks of {datasets(scope.n_datasets)} ({scope.n_runs} runs): {'; '.join(parts)}. "
                           f"{_fragility_verdict(holds, partial, above)} At the paper's r = {PAPER_FRAGILITY_R:.2f}, 80% power "
                           f"needs {tasks_for_power(PAPER_FRAGILITY_R)} tasks. Descriptive, runs are not independent: "
                           f"run-level r = {scope.vs_sharpness.pearson:.2f}.",
                           "holds" if holds else "not established", primary))
    return out


def representation_bound(analysis: Analysis) -> list[Finding]:
    out = []
    for arch in analysis.archs:
        bound = next((b for b in analysis.bounds if b.arch == arch), None)
        if bound is None:
            continue
        tasks = bound.tasks_always_below
        holds = bound.runs_below == bound.n_runs
        if holds:
            verdict = "This holds in every run."
        elif 2 * tasks.k >= tasks.n:
            verdict = f"It fails in {bound.n_runs - bound.runs_below} runs (named in the report)."
        else:
            verdict = "This does not hold at this scale."
        per_task = ", ".join(f"{task} {k}/{n}" for task, k, n in bound.per_task)
        spread = ("" if bound.run_fraction_bootstrap is None else
                  f"; whole-task bootstrap of the run fraction {interval_text(bound.run_fraction_bootstrap.ci)}")
        out.append(Finding("d_repr <= d_data", holds,
                           f"Representations stay below the data's dimension: d_repr ({bound.layer}) <= d_data in "
                           f"{bound.runs_below} of {bound.n_runs} runs over {bound.n_tasks} tasks ({per_task}); in every "
                           f"run of {tasks.k} of {tasks.n} tasks (95% interval over tasks {interval_text(tasks.ci)})"
                           f"{spread}. {verdict}"))
    return out


def findings(analysis: Analysis) -> list[Finding]:
    """All findings in the order of the module docstring."""
    first = loss_falls_with_n(analysis)
    return ([first] if first else []) + dimension_slows_learning(analysis) + sharpness_raises_loss(analysis) + \
        sharpness_makes_fragile(analysis) + representation_bound(analysis)
