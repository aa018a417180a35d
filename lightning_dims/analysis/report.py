"""``report.md``, PNG figures and ``fits.json`` from an :class:`~lightning_dims.analysis.analyse.Analysis`.

Every table states its unit and interval; every fit the analysis could not make is listed with its
reason under "Skipped". ``docs/analysis.md`` explains each statistic.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lightning_dims.analysis import figures
from lightning_dims.analysis.analyse import Analysis, analyse
from lightning_dims.analysis.findings import findings
from lightning_dims.analysis.health import CHANCE_BAND, FINAL_WORSE_RATIO, LEARNED_MARGIN, RANKS_WELL
from lightning_dims.analysis.laws import AcrossTasks
from lightning_dims.analysis.laws import UNINFORMATIVE_SE
from lightning_dims.analysis.paper import K_F_DEFINITION_NOTE, PAPER_KF_UNIT, DomainRatio, domain_ratio
from lightning_dims.analysis.skips import Skip
from lightning_dims.analysis.robustness import PenaltyScope
from lightning_dims.analysis.scopes import ALPHA, LOSS, scope_of
from lightning_dims.analysis.stats import Correlation, Interval, LineFit
from lightning_dims.analysis.tasks import centre_sizes
from lightning_dims.analysis.verdicts import Adjusted, Verdict, slope_p, why_no_leave_one_out
from lightning_dims.utils import atomic_write

__all__ = [
    "ACROSS_HEADER",
    "ACROSS_NOTE",
    "ROLE_HEADER",
    "VERDICT_HEADER",
    "across_rows",
    "alpha_figure",
    "centre_figure",
    "ci",
    "comparison_table",
    "correlation_cells",
    "fig2_table",
    "figure_paths",
    "fits_json",
    "flagged_cell",
    "fmt",
    "health_lines",
    "images",
    "judged_cells",
    "penalty_loo_cell",
    "penalty_table",
    "permutation_cell",
    "ratio_note",
    "reliability_lines",
    "role_cell",
    "report_lines",
    "runs_table",
    "scope_cell",
    "series_table",
    "table",
    "task_table",
    "verdict_cells",
    "with_ci",
    "write_report",
]


def fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def ci(interval: Interval, digits: int = 3) -> str:
    return f"[{fmt(interval[0], digits)}, {fmt(interval[1], digits)}]"


def with_ci(value: float | None, interval: Interval, digits: int = 3) -> str:
    return f"{fmt(value, digits)} {ci(interval, digits)}"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def correlation_cells(c: Correlation | None) -> list[str]:
    if c is None:
        return ["n/a", "n/a"]
    return [with_ci(c.pearson, c.pearson_ci, 2), with_ci(c.spearman, c.spearman_ci, 2)]


def flagged_cell(fit: AcrossTasks) -> str:
    return ", ".join(f"{task} (SE {se:.2g})" for task, se in zip(fit.tasks, fit.se) if task in fit.flagged) or "none"


def verdict_cells(f: AcrossTasks) -> list[str]:
    """Random-effects slope, tau, largest weight, state vs the law's value, leave-one-out, by dataset, sensitivity."""
    return judged_cells(f.verdict, f.fit)


def judged_cells(v: Verdict, sensitivity: LineFit) -> list[str]:
    """:func:`verdict_cells` of a :class:`Verdict` and the line kept as its sensitivity check."""
    re = v.primary
    loo = v.leave_one_out
    return [with_ci(re.slope, re.slope_interval()), fmt(re.tau, 2), f"{re.max_weight_share:.0%} ({re.heaviest})",
            f"{v.state} (law {v.law_value:.2f})",
            (f"not possible ({why_no_leave_one_out(re.n)})" if loo is None else
             f"{loo.low:.3g} .. {loo.high:.3g}; hinges on: {', '.join(loo.hinges) or 'none'}"),
            (f"refused ({v.n_datasets} datasets; needs 3)" if v.by_dataset is None else
             f"{ci(v.by_dataset.interval)} ({v.by_dataset.n_clusters} datasets, {v.by_dataset.dof:.1f} d.o.f.; {v.by_dataset_state})"),
            with_ci(sensitivity.slope, sensitivity.slope_ci)]


def role_cell(adjusted: Adjusted | None) -> str:
    """``primary``, or ``exploratory`` with the Holm-adjusted p of slope 0 and of the law's value and their state."""
    if adjusted is None:
        return "primary"
    return (f"exploratory (1 of {adjusted.family}): Holm p {fmt(adjusted.holm_zero, 2)} (slope 0), "
            f"{fmt(adjusted.holm_law, 2)} (law's value); {adjusted.state}")


def scope_cell(analysis: Analysis, law: str, f: AcrossTasks) -> str:
    scope = scope_of(analysis.law_scopes, law, f)
    return "n/a" if scope is None else role_cell(scope.adjusted)


def across_rows(analysis: Analysis, law: str) -> list[list[str]]:
    fits = analysis.alpha_vs_dimension if law == ALPHA else analysis.loss_vs_sharpness
    return [[arch, f.fit.n, f.verdict.n_datasets, f.n_runs, *verdict_cells(f), scope_cell(analysis, law, f),
             *correlation_cells(f.correlation), permutation_cell(f.correlation), flagged_cell(f)] for arch, f in fits.items()]


def permutation_cell(c: Correlation | None) -> str:
    return "n/a" if c is None or c.permutation_p is None else fmt(c.permutation_p, 2)


VERDICT_HEADER = ["random-effects slope [95% CI]", "tau", "largest weight", "state", "leave one task out: slope range",
                  "clustered by dataset [95% CI]", "sensitivity: 1/SE^2 slope [95% CI]"]
ROLE_HEADER = "scope: primary, or exploratory with Holm-adjusted p"
ACROSS_HEADER = ["arch", "tasks", "datasets", "runs", *VERDICT_HEADER, ROLE_HEADER, "Pearson r [95% CI]",
                 "Spearman rho [95% CI]", "task-permutation p", "uninformative"]
ACROSS_NOTE = ("Primary: random-effects meta-regression over tasks (REML tau^2, Knapp-Hartung t with n - 2 d.o.f., PyMARE); "
               "state: consistent (the interval excludes 0 and holds the law's value), rejected (excludes the law's value), "
               "uninformative (holds both). Clustered by dataset: the same fit with CR2 cluster-robust errors by dataset, "
               "Satterthwaite d.o.f. Sensitivity: each task weighted by 1/SE^2 of its point, scale max(1, chi2/(n-2)). "
               "One scope per law is the declared primary one; every other scope shown (other archs, series) is "
               "exploratory: its p of slope 0 and of the law's value are Holm-adjusted over the law's exploratory "
               "scopes, and the state after the semicolon is read from them. "
               "Pearson and Spearman are of the unweighted task points. A task whose point has a standard error above "
               "{threshold} is flagged as uninformative.")


def figure_paths(analysis: Analysis, out: Path) -> dict[str, list[Path]]:
    """Draw every figure into ``out``; name -> paths (one per arch or series)."""
    paths: dict[str, list[Path]] = {key: [] for key in ("curves", "alpha", "centre", "fig2", "penalty", "repr", "series")}
    for arch in analysis.archs:
        paths["curves"].append(figures.save(figures.learning_curves(analysis.rows, analysis.exponents, arch),
                                            out / f"loss_vs_n_{arch}.png"))
        if arch in analysis.alpha_vs_dimension:
            paths["alpha"].append(figures.save(alpha_figure(analysis, analysis.alpha_vs_dimension[arch]),
                                               out / f"alpha_vs_inverse_d_{arch}.png"))
        if arch in analysis.loss_vs_sharpness:
            paths["centre"].append(figures.save(centre_figure(analysis, analysis.loss_vs_sharpness[arch]),
                                                out / f"loss_at_centre_vs_k_f_{arch}.png"))
        if any(s.arch == arch for s in analysis.fig2) or analysis.properties:
            paths["fig2"].append(figures.save(figures.loss_vs_dimension(analysis.rows, analysis.properties, analysis.fig2, arch),
                                              out / f"loss_vs_d_data_each_n_{arch}.png"))
        if any(p.arch == arch for p in analysis.penalties):
            paths["penalty"].append(figures.save(figures.penalty_vs_sharpness(analysis.rows, analysis.properties, arch),
                                                 out / f"penalty_vs_k_f_{arch}.png"))
        if any(b.arch == arch for b in analysis.bounds):
            paths["repr"].append(figures.save(figures.repr_vs_data(analysis.rows, analysis.bounds, arch),
                                              out / f"d_repr_vs_d_data_{arch}.png"))
    for i, result in enumerate(analysis.series):
        fit = result.exponent_vs_inverse_dimension if result.series.varied == "d" else result.centre_loss_vs_sharpness
        if fit is not None:
            draw = alpha_figure if result.series.varied == "d" else centre_figure
            paths["series"].append(figures.save(draw(analysis, fit, result.series.name), out / f"series_{i + 1}.png"))
    return paths


def alpha_figure(analysis: Analysis, fit: AcrossTasks, title: str | None = None):
    points = {
        task: (1.0 / analysis.properties[(fit.arch, task)].d_data, analysis.exponents[(fit.arch, task)].alpha,
               analysis.exponents[(fit.arch, task)].alpha_ci)
        for task in fit.tasks
    }
    return figures.across_tasks(fit, analysis.rows, points, (0.0, 1.0), "1 / d_data (reference N)",
                                "exponent alpha [95% CI]", title or f"{fit.arch}: alpha vs 1/d_data (law: alpha = 1/d)")


def centre_figure(analysis: Analysis, fit: AcrossTasks, title: str | None = None):
    points = {}
    for task in fit.tasks:
        e = analysis.exponents[(fit.arch, task)]
        log_ci = tuple(None if v is None else math.log(v) for v in e.loss_at_centre_ci)
        points[task] = (math.log(analysis.properties[(fit.arch, task)].label_sharpness), math.log(e.loss_at_centre), log_ci)
    centre = centre_sizes(analysis.rows)[fit.arch]
    return figures.across_tasks(fit, analysis.rows, points, None, "log K_F (1/intensity, reference N)",
                                f"log test loss at N = {centre:.0f} [95% CI]",
                                title or f"{fit.arch}: loss at the centre of the N range vs K_F")


def images(paths: Sequence[Path], alt: str) -> list[str]:
    return [f"![{alt}]({p.name})" for p in paths] + ([""] if paths else [])


def task_table(analysis: Analysis) -> list[str]:
    centres = centre_sizes(analysis.rows)
    rows = []
    keys = sorted({(r.arch, r.domain, r.task) for r in analysis.rows})
    for arch, domain, task in keys:
        runs = [r for r in analysis.rows if r.arch == arch and r.task == task]
        p = analysis.properties.get((arch, task))
        e = analysis.exponents.get((arch, task))
        sizes = sorted({r.n_train for r in runs})
        alpha_d = e.alpha * p.d_data if e and p and p.d_data else None
        centre = "n/a" if e is None else with_ci(e.loss_at_centre, e.loss_at_centre_ci) + (" (extrapolated)" if e.extrapolated else "")
        rows.append([
            arch, task, domain, f"{sizes[0]}..{sizes[-1]} ({len(sizes)})", len(runs),
            fmt(p.d_data if p else None), f"{fmt(p.label_sharpness if p else None)} ({fmt(p.kf_m if p else None)})",
            "n/a" if e is None else with_ci(e.alpha, e.alpha_ci), fmt(alpha_d, 2), fmt(e.r2 if e else None, 2), centre,
        ])
    header = ["arch", "task", "domain", "N (sizes)", "runs", "d_data", "K_F (M)", "alpha [95% CI]", "alpha x d_data",
              "R^2", "L(N_c) [95% CI]"]
    note = ("N_c = " + ", ".join(f"{c:.0f} ({a})" for a, c in centres.items()) +
            "; d_data (MLE, k = 20) and K_F (1/intensity, exhaustive over M images) at the reference N = " +
            ", ".join(f"{n} ({a})" for a, n in analysis.ref_sizes.items()) + ". The law predicts alpha x d_data = 1.")
    return table(header, rows) + ["", note]


def runs_table(analysis: Analysis) -> list[str]:
    rows = []
    for r in sorted(analysis.rows, key=lambda r: (r.arch, r.domain, r.task, r.n_train, r.seed)):
        rows.append([r.arch, r.task, r.n_train, r.seed, fmt(r.test_loss), fmt(r.test_acc), fmt(r.test_auroc),
                     fmt(r.best_loss), fmt(r.best_acc), fmt(r.best_auroc), ", ".join(analysis.flags[r.run_id]) or "ok"])
    header = ["arch", "task", "N", "seed", "test loss", "test acc", "test AUROC", "best-val: loss", "acc", "AUROC", "flags"]
    return table(header, rows)


def penalty_table(analysis: Analysis) -> list[str]:
    rows = []
    for p in analysis.penalties:
        task_r, partial, boot = p.tasks_vs_sharpness, p.tasks_partial_given_clean_loss, p.task_bootstrap
        run_partial = p.partial_given_clean_loss
        rows.append([p.arch, p.scope + (" (exploratory)" if p.exploratory else " (primary)"), p.n_datasets, p.n_tasks, p.n_runs,
                     "refused" if task_r is None else with_ci(task_r.pearson, task_r.pearson_ci, 2),
                     permutation_cell(task_r), "-" if not p.exploratory else fmt(p.holm_p, 2),
                     penalty_loo_cell(p),
                     "n/a" if p.dataset_bootstrap is None else ci(p.dataset_bootstrap.ci, 2),
                     "refused" if partial is None else with_ci(partial.r, partial.ci, 2),
                     "n/a" if boot is None else ci(boot.ci, 2),
                     fmt(p.vs_sharpness.pearson, 2),
                     "n/a" if p.vs_log_clean_loss is None else fmt(p.vs_log_clean_loss.pearson, 2),
                     "n/a" if run_partial is None else fmt(run_partial.r, 2)])
    header = ["arch", "scope", "datasets", "tasks", "runs", "task-level r [95% CI]", "task-permutation p",
              "Holm-adjusted p (exploratory scopes)", "leave one task out: r range",
              "whole-dataset bootstrap of task r [95% CI]", "task-level partial r given log clean loss [95% CI]",
              "whole-task bootstrap of run r [95% CI]", "run r (descriptive)", "run r with log clean loss (descriptive)",
              "run partial r (descriptive)"]
    return table(header, rows)


def penalty_loo_cell(p: PenaltyScope) -> str:
    """The task-level r's leave-one-task-out range and hinges, or why there is none."""
    loo = p.task_leave_one_out
    if loo is None:
        return f"not possible ({p.n_tasks} tasks; needs 5)" if p.n_tasks < 5 else "not possible (no spread left)"
    return f"{loo[0]:.2f} .. {loo[1]:.2f}; hinges on: {', '.join(loo[2]) or 'none'}"


def series_table(analysis: Analysis) -> list[str]:
    rows = []
    for result in analysis.series:
        name = result.series.name
        for law, label, fit in ((ALPHA, "alpha vs 1/d_data", result.exponent_vs_inverse_dimension),
                                (LOSS, "log L(N_c) vs log K_F", result.centre_loss_vs_sharpness)):
            if fit is not None:
                rows.append([name, label, fit.verdict.n_datasets, fit.fit.n, fit.n_runs, *verdict_cells(fit),
                             scope_cell(analysis, law, fit), *correlation_cells(fit.correlation), flagged_cell(fit)])
        penalty = result.penalty
        if penalty is not None:
            c, partial = penalty.tasks_vs_sharpness, penalty.tasks_partial_given_clean_loss
            role = ("primary" if not penalty.exploratory else
                    f"exploratory (1 of {penalty.holm_family}): Holm p {fmt(penalty.holm_p, 2)} (task permutation)")
            blank = ["-"] * 4 + [penalty_loo_cell(penalty) + " (r)", "-", "-", role]
            rows.append([name, "FGSM penalty vs K_F (task means)", penalty.n_datasets, penalty.n_tasks, penalty.n_runs,
                         *blank, *(correlation_cells(c) if c is not None else ["refused", "refused"]), "-"])
            rows.append([name, "  partial r given log clean loss (task means)", penalty.n_datasets, penalty.n_tasks,
                         penalty.n_runs, *(["-"] * (len(VERDICT_HEADER) + 1)),
                         "refused" if partial is None else with_ci(partial.r, partial.ci, 2), "-", "-"])
    return table(["series", "fit", "datasets", "tasks", "runs", *VERDICT_HEADER, ROLE_HEADER, "Pearson r [95% CI]",
                  "Spearman rho [95% CI]", "uninformative"], rows)


def fig2_table(analysis: Analysis) -> list[str]:
    """The paper's Fig. 2 scopes: random-effects slope (primary), its checks, Holm over the scopes, the OLS line."""
    rows = [[s.arch, s.domain, s.n_train, s.verdict.n_datasets, len(s.tasks), s.n_runs, *judged_cells(s.verdict, s.fit),
             fmt(slope_p(s.verdict.primary, 0.0), 2), role_cell(s.adjusted)] for s in analysis.fig2]
    header = ["arch", "domain", "N", "datasets", "tasks", "runs", *VERDICT_HEADER[:-1], "sensitivity: OLS slope [95% CI]",
              "p (slope 0)", ROLE_HEADER]
    return table(header, rows)


def comparison_table(analysis: Analysis) -> list[str]:
    rows = []
    for row in analysis.comparison:
        domain = row.ours[0].domain if row.ours else "-"
        paper_cells = ([domain, "-", "-"] if row.paper is None
                       else [row.paper.domain, fmt(row.paper.d_data), fmt(row.paper.k_f_1e4)])
        name = row.paper.name if row.paper else f"{row.dataset} (not in the paper)"
        if not row.ours:
            rows.append([name, *paper_cells, "not measured here (no data, or no measurement at the paper's spec)",
                         "-", "-", "-", "-"])
        for ours in row.ours:
            rows.append([name, *paper_cells, ours.task, fmt(ours.n), fmt(ours.m), fmt(ours.d_data),
                         fmt(ours.label_sharpness / PAPER_KF_UNIT)])
    header = ["dataset", "domain", "paper d_data", "paper K_F (1e-4)", "our task", "N", "M", "our d_data", "our K_F (1e-4)"]
    return table(header, rows) + ratio_note(domain_ratio(analysis.comparison))


def ratio_note(ratio: DomainRatio | None) -> list[str]:
    """One sentence: medical over natural K_F, one value per dataset at one M, with its interval."""
    if ratio is None:
        return []
    listed = "; ".join(f"{domain}: " + ", ".join(f"{name} {fmt(k / PAPER_KF_UNIT)}" for name, k in values)
                       for domain, values in (("medical", ratio.medical), ("natural", ratio.natural)))
    left = ("" if not ratio.left_out else
            " Left out (another M; K_F grows with M): " + ", ".join(f"{name} (M = {m})" for name, m in ratio.left_out) + ".")
    value = (f"not computed ({ratio.why})" if ratio.ratio is None else
             f"{ratio.ratio.ratio:.2f} {ci(ratio.ratio.ci, 3)} (ratio of geometric means; Welch t interval of the "
             f"log-ratio, {ratio.ratio.dof:.1f} degrees of freedom)")
    return ["", f"Medical over natural K_F at this spec, one value per dataset (the mean over its tasks, 1e-4) at "
                f"M = {ratio.m}, {len(ratio.medical)} medical and {len(ratio.natural)} natural datasets ({listed}): "
                f"{value}. The paper: about 2.5 over its 11 datasets.{left}"]


def reliability_lines(analysis: Analysis) -> list[str]:
    rows = [[r.arch, r.quantity, r.n_tasks, f"{r.seeds_per_task:.1f}", fmt(r.single_seed, 2), fmt(r.of_mean, 2),
             "yes" if r.reliable else "no: fits on it are attenuated towards 0"] for r in analysis.reliability]
    return (["## Seed-to-seed reliability of K_F and d_data", "",
             "One-way intraclass correlation over tasks of the single-seed values at the reference N (ICC(1)), and of "
             "their mean over the seeds, the value every table and finding here uses (ICC(1, k) = 1 - 1/F). Below 0.9 a "
             "property ranks tasks too noisily: measure it with a larger M or more seeds.", ""]
            + (table(["arch", "quantity", "tasks", "seeds per task", "ICC(1): one seed", "ICC(1, k): the mean used",
                      "at least 0.9"], rows) if rows else
               ["Not measurable here: it needs 2 tasks with 2 or more seeds at the reference N (see Skipped)."]) + [""])


def health_lines(analysis: Analysis) -> list[str]:
    lines = ["## The health rule: runs excluded from the verdicts' second reading", "",
             f"Declared before the verdicts: a run is excluded when it did not learn (test accuracy below chance + "
             f"{LEARNED_MARGIN}) or when its test set differs in size from most runs' (its task is off the protocol). "
             "Every verdict above is stated with all runs and without these.", ""]
    if analysis.healthy is None:
        return lines + ["No run is excluded.", ""]
    by_run = {r.run_id: r for r in analysis.rows}
    return lines + table(["arch", "task", "N", "seed", "reason"],
                         [[by_run[run].arch, by_run[run].task, by_run[run].n_train, by_run[run].seed, why]
                          for run, why in sorted(analysis.healthy.excluded.items(),
                                                 key=lambda item: (by_run[item[0]].task, by_run[item[0]].n_train))]) + [""]


def report_lines(analysis: Analysis, paths: Mapping[str, list[Path]], listed: Sequence) -> list[str]:
    flagged = sum(1 for f in analysis.flags.values() if f)
    lines = ["# lightning-dims report", ""]
    lines += [f"{len(analysis.rows)} finished runs ({', '.join(analysis.archs)}) under preprocessing spec `{analysis.spec}`; "
              f"{len({(r.arch, r.task) for r in analysis.rows})} tasks; {flagged} runs flagged (see Runs); "
              f"{len(analysis.skips)} fits or values skipped (see Skipped). Statistics and intervals: docs/analysis.md.", ""]
    lines += ["## Findings", ""] + [f"- {f.text}" for f in listed] + [""]
    lines += ["## Tasks: one K_F and d_data each, and the learning-curve exponent", ""] + task_table(analysis) + [""]
    lines += reliability_lines(analysis)
    lines += images(paths["curves"], "learning curves")
    lines += ["## The law across tasks", "", "Exponent alpha against 1/d_data (the law: slope 1, intercept 0):", ""]
    lines += table(ACROSS_HEADER, across_rows(analysis, ALPHA))
    lines += ["", ACROSS_NOTE.format(threshold=UNINFORMATIVE_SE["alpha"]), ""] + images(paths["alpha"], "alpha vs 1/d")
    lines += ["Log test loss at the centre N_c against log K_F (the law: slope 1 among tasks of equal d_data):", ""]
    lines += table(ACROSS_HEADER, across_rows(analysis, LOSS))
    lines += ["", ACROSS_NOTE.format(threshold=UNINFORMATIVE_SE["log L(N_c)"]), ""] + images(paths["centre"], "loss vs K_F")
    if analysis.series:
        lines += ["## Controlled series (one dataset option varied, the others fixed)", ""] + series_table(analysis) + [""]
        lines += images(paths["series"], "series")
    lines += ["## Test loss vs d_data at each N (the paper's Fig. 2)", "",
              "Per domain and training size: log L = a + b d_data over the tasks at that N (one point per task: the mean "
              "log loss of its runs there, with standard error s / sqrt(runs), s the residual SD of the task's learning "
              "curve), d_data at the reference N; b per dimension by the random-effects fit of the law tables (REML tau^2, "
              "Knapp-Hartung t with n - 2 d.o.f.), against the law's own b at the tasks' K_F and d_data "
              "(log K_F - log N / d on d). Sensitivity: the OLS line over the task means. Every (domain, N) scope is "
              "exploratory: its p of b = 0 and of the law's b are Holm-adjusted over the scopes shown.", ""]
    lines += fig2_table(analysis)
    lines += [""] + images(paths["fig2"], "Fig. 2")
    lines += ["## Robustness: FGSM loss penalty vs K_F", "",
              "One scope is the declared primary one (the first controlled series varying K_F at a fixed d, else the "
              "first arch's pooled scope); every other scope shown here and in the series table is exploratory, with its "
              "task-permutation p Holm-adjusted over all of them. The leave-one-task-out range and the "
              "whole-dataset bootstrap (tasks resampled by dataset) are checks on the task-level r.",
              "",
              "K_F is one value per task, so the task is the unit: the task-level r and partial r use one point per task "
              "(its K_F, the mean penalty L_attacked - L_clean in nats and mean log clean loss of its runs in the scope); "
              "the whole-task bootstrap resamples tasks, not runs. Run-level r (every run a point) is descriptive only: "
              "runs of one task share its K_F and are not independent. The partial r removes what log clean loss "
              "explains from both; it needs 5 tasks.", ""]
    lines += penalty_table(analysis) + [""] + images(paths["penalty"], "penalty vs K_F")
    lines += ["## Representations: d_repr <= d_data", ""]
    lines += table(["arch", "layer", "estimator", "embedded", "tasks", "runs", "runs below per task",
                    "tasks below in every run [95% CI]", "run fraction [whole-task bootstrap]", "runs above"],
                   [[b.arch, b.layer, fmt(b.estimator), fmt(b.source), b.n_tasks, b.n_runs,
                     ", ".join(f"{t} {k}/{n}" for t, k, n in b.per_task),
                     f"{b.tasks_always_below.k} {ci(b.tasks_always_below.ci, 2)}",
                     f"{fmt(b.runs_below / b.n_runs, 2)} " + ("n/a" if b.run_fraction_bootstrap is None else
                                                                 ci(b.run_fraction_bootstrap.ci, 2)),
                     ", ".join(b.runs_above) or "none"] for b in analysis.bounds])
    lines += ["", "d_data of each run's own training set. Runs of one task are not independent: the interval over tasks "
                  "is Clopper-Pearson over tasks, the run fraction's interval resamples whole tasks.", ""]
    lines += images(paths["repr"], "d_repr vs d_data")
    lines += health_lines(analysis)
    lines += ["## Runs: final weights (test) and best-validation weights (test_best) on the test set", "",
              f"Flags: *not learned*: test accuracy below chance + {LEARNED_MARGIN} (chance = 1/classes, test sets are "
              f"class-balanced); *miscalibrated*: accuracy within {CHANCE_BAND} of chance with AUROC >= {RANKS_WELL}; "
              f"*final epoch worse*: final test loss above {FINAL_WORSE_RATIO}x the best-val weights' test loss.", ""]
    lines += runs_table(analysis) + [""]
    lines += ["## Our K_F and d_data at the paper's spec beside its Figure 1", "",
              "Paper values read off its Figure 1 (224 x 224, max 255, 1 channel; CIFAR-10, SVHN and ImageNet apparently "
              "3 channels; N = 500..1750). Ours only where measured under the same spec.", ""]
    lines += comparison_table(analysis) + ["", K_F_DEFINITION_NOTE, ""]
    lines += ["## Skipped", ""] + ([f"- {s}" for s in analysis.skips] or ["- nothing"]) + [""]
    return lines


def fits_json(analysis: Analysis, listed: Sequence) -> dict:
    def keyed(mapping: Mapping[tuple[str, str], Any]) -> dict:
        return {f"{arch}/{task}": asdict(value) for (arch, task), value in mapping.items()}

    return {
        "spec": analysis.spec,
        "n_runs": len(analysis.rows),
        "reference_n": analysis.ref_sizes,
        "centre_n": centre_sizes(analysis.rows),
        "findings": [asdict(f) for f in listed],
        "task_properties": keyed(analysis.properties),
        "exponents": keyed(analysis.exponents),
        "alpha_vs_inverse_d_data": {a: f.to_dict() for a, f in analysis.alpha_vs_dimension.items()},
        "centre_loss_vs_log_k_f": {a: f.to_dict() for a, f in analysis.loss_vs_sharpness.items()},
        "seed_reliability": [{**asdict(r), "reliable": r.reliable} for r in analysis.reliability],
        "health_rule": None if (h := analysis.healthy) is None else {
            "excluded": h.excluded, "n_runs_kept": h.n_runs,
            "alpha_vs_inverse_d_data": {a: f.to_dict() for a, f in h.alpha_vs_dimension.items()},
            "centre_loss_vs_log_k_f": {a: f.to_dict() for a, f in h.loss_vs_sharpness.items()},
            "penalty_vs_k_f": [p.to_dict() for p in h.penalties]},
        "series": [s.to_dict() for s in analysis.series],
        "fig2_loss_vs_d_data": [s.to_dict() for s in analysis.fig2],
        "law_scopes": {law: [s.to_dict() for s in found] for law, found in analysis.law_scopes.items()},
        "penalty_vs_k_f": [p.to_dict() for p in analysis.penalties],
        "representation_bound": [asdict(b) for b in analysis.bounds],
        "run_flags": {run: flags for run, flags in analysis.flags.items() if flags},
        "domain_ratio": None if (ratio := domain_ratio(analysis.comparison)) is None else {
            **ratio.__dict__, "ratio": None if ratio.ratio is None else asdict(ratio.ratio)},
        "paper_comparison": [
            {"dataset": r.dataset, "paper": None if r.paper is None else {**r.paper.__dict__},
             "ours": [o.__dict__ for o in r.ours]} for r in analysis.comparison
        ],
        "skipped": [asdict(s) for s in analysis.skips],
    }


def write_report(
    records: Sequence[Any],
    out: str | os.PathLike[str],
    *,
    spec: str | None = None,
    ref_n: int | None = None,
    measurements: Sequence[Mapping] = (),
    skipped: Sequence[Skip] = (),
) -> dict:
    """Analyse ``records`` (already selected) and write ``report.md``, ``fits.json`` and figures into ``out``; returns fits.json's dict.

    ``skipped``: what the selection left out (smoke tests, other protocols, ...), listed under Skipped first.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    analysis = analyse(records, spec=spec, ref_n=ref_n, measurements=measurements)
    analysis.skips[:0] = skipped
    listed = findings(analysis)
    paths = figure_paths(analysis, out)
    fits = fits_json(analysis, listed)
    atomic_write(out / "fits.json", json.dumps(fits, indent=2, default=str) + "\n")
    atomic_write(out / "report.md", "\n".join(report_lines(analysis, paths, listed)))
    return fits
