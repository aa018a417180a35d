"""The analysis in plain words: a few findings, each with its numbers, saying plainly when one does not hold.

Each :class:`Finding` is a claim of the paper put to the data, the numbers behind the verdict, and
``holds``: True when the data support the claim's direction at 95 % (the interval excludes "no
effect"), False when they do not. Every interval behind a verdict treats as independent only what
is independent: tasks, not the runs of one task (docs/analysis.md, "Which unit"). Each text states
the number of tasks and of runs. The demo prints them and the report lists the same text.

1. **Loss falls with N** within each task: ``alpha > 0`` with its interval above 0.
2. **Higher d, slower learning**, per series varying d (or across all tasks when there is none):
   weighted slope of ``alpha`` on ``1 / d_data`` above 0 (the direction), and separately whether
   the law's slope 1 is rejected (outside the interval) or not.
3. **Sharper labels, higher loss**, per series varying the label contrast (or across all tasks
   when there is none): weighted slope of ``log L(N_c)`` on ``log K_F``, direction and the law's 1.
4. **Sharper labels, more fragile**, per contrast series (else pooled): the task-level Pearson r
   of K_F and the task's mean FGSM loss penalty above 0; the text adds the whole-task bootstrap,
   the task-level partial r given the clean loss (or why it is refused) and the run-level r,
   labelled descriptive.
5. **d_repr <= d_data** in the paper's layer (the first recorded): runs below per task; holds when
   it holds in every run.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_dims.analysis.analyse import Analysis
from lightning_dims.analysis.laws import AcrossTasks
from lightning_dims.analysis.stats import Interval
from lightning_dims.analysis.tasks import centre_sizes

LAW_SLOPE = 1.0


@dataclass(frozen=True)
class Finding:
    claim: str
    holds: bool
    text: str


def interval_text(interval: Interval, digits: int = 2) -> str:
    low, high = interval
    if low is None or high is None:
        return "[interval n/a]"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def above_zero(interval: Interval) -> bool:
    return interval[0] is not None and interval[0] > 0


def contains(interval: Interval, value: float) -> bool:
    return interval[0] is not None and interval[1] is not None and interval[0] <= value <= interval[1]


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


def _slope_text(fit: AcrossTasks, what: str, where: str) -> tuple[bool, str]:
    """The direction (interval above 0) and, separately, the law's slope (inside or outside the interval)."""
    slope, interval = fit.fit.slope, fit.fit.slope_ci
    holds = above_zero(interval)
    if holds:
        direction = f"the direction holds (slope {slope:.2f} {interval_text(interval)} > 0)"
    elif interval[1] is not None and interval[1] < 0:
        direction = f"the direction is reversed (slope {slope:.2f} {interval_text(interval)} < 0)"
    else:
        direction = f"the direction is not established at this scale (slope {slope:.2f} {interval_text(interval)} includes 0)"
    law = ("the law's slope 1 is not rejected (inside the interval)" if contains(interval, LAW_SLOPE)
           else "the law's slope 1 is rejected (outside the interval)")
    flagged = ("" if not fit.flagged else
               f" Uninformative (SE of {fit.y} above {fit.flag_threshold:g}, down-weighted): {', '.join(fit.flagged)}.")
    return holds, (f"{what} {where}, over {fit.fit.n} tasks ({fit.n_runs} runs), each weighted by 1/SE^2 of its {fit.y}: "
                   f"{direction}; {law}.{flagged}")
def dimension_slows_learning(analysis: Analysis) -> list[Finding]:
    series = [(r.series.name, r.exponent_vs_inverse_dimension) for r in analysis.series
              if r.series.varied == "d" and r.exponent_vs_inverse_dimension is not None]
    if not series:
        series = [(f"across all {arch} tasks", fit) for arch, fit in analysis.alpha_vs_dimension.items()]
    out = []
    for name, fit in series:
        holds, text = _slope_text(fit, "Higher intrinsic dimension, slower learning: exponent alpha vs 1/d_data", name)
        out.append(Finding("alpha rises with 1/d_data", holds, text))
    return out


def sharpness_raises_loss(analysis: Analysis) -> list[Finding]:
    series = [(r.series.arch, r.series.name, r.centre_loss_vs_sharpness) for r in analysis.series
              if r.series.varied != "d" and r.centre_loss_vs_sharpness is not None]
    if not series:
        series = [(arch, f"across all {arch} tasks (their d_data differ too)", fit)
                  for arch, fit in analysis.loss_vs_sharpness.items()]
    out = []
    centres = centre_sizes(analysis.rows)
    for arch, name, fit in series:
        holds, text = _slope_text(fit, f"Sharper labels, higher loss: log test loss at N = {centres[arch]:.0f} vs log K_F", name)
        out.append(Finding("loss rises with K_F", holds, text))
    return out


def _fragility_verdict(holds: bool, partial) -> str:
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
    out = []
    for name, scope in scopes:
        task_r = scope.tasks_vs_sharpness
        holds = task_r is not None and above_zero(task_r.pearson_ci)
        partial = scope.tasks_partial_given_clean_loss
        parts = [("task-level r refused (fewer than 4 tasks)" if task_r is None else
                  f"task-level Pearson r = {task_r.pearson:.2f} {interval_text(task_r.pearson_ci)} "
                  "(one point per task: its K_F and mean penalty)")]
        if scope.task_bootstrap is not None:
            parts.append(f"whole-task bootstrap of the run-level r {interval_text(scope.task_bootstrap.ci)}")
        parts.append(f"task-level partial r given the clean test loss {partial.r:.2f} {interval_text(partial.ci)}"
                     if partial is not None else
                     f"a task-level partial r given the clean loss is refused ({scope.n_tasks} tasks: its interval "
                     f"needs 5)")
        out.append(Finding("FGSM penalty rises with K_F", holds,
                           f"Sharper labels, more fragile ({name}): FGSM loss penalty vs K_F over {scope.n_tasks} tasks "
                           f"({scope.n_runs} runs): {'; '.join(parts)}. {_fragility_verdict(holds, partial)} "
                           f"Descriptive, runs are not independent: run-level r = {scope.vs_sharpness.pearson:.2f}."))
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
