"""Per task (per arch): one K_F and one d_data, and the exponent of the learning curve.

**Reference properties.** K_F and MLE d_data depend on the training set they are measured on: the
MLE rises with N (kNN estimators under-estimate at small N) and K_F, a maximum over pairs, rises
with the M images compared. A task therefore gets one value of each, measured at one reference
size ``ref_n`` (default: the largest N every task of the arch has, i.e. the largest N of the
grid) and one M: the mean over that task's runs at ``ref_n`` (one per seed). A task without a run at ``ref_n``, or whose K_F there compared a
different M than most tasks, gets no value for that property, with the reason.

**Exponent.** Per task, OLS of ``log L = c - alpha log N`` over its runs (L: final-weights test
loss, nats; every seed a point); ``alpha`` with its t interval (``n - 2`` degrees of freedom).
The law ``L ~ K_F N^(-1/d)`` predicts ``alpha = 1 / d_data``, i.e. ``alpha * d_data = 1``. Needs
three distinct training sizes.

**Loss at the centre.** Each task's fitted loss at one common size ``N_c``, the geometric middle
of the arch's N range (``sqrt(N_min N_max)``), with the fit's t interval for the mean at
``log N_c``; flagged ``extrapolated`` when ``N_c`` lies outside the task's own N range.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from lightning_dims.analysis.rows import RunRow
from lightning_dims.analysis.skips import Skip
from lightning_dims.analysis.stats import FitError, Interval, LineFit, fit_line

__all__ = [
    "TaskExponent",
    "TaskProperties",
    "by_task",
    "centre_sizes",
    "positive",
    "reference_properties",
    "reference_sizes",
    "task_exponents",
]


def positive(value: float | None) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def by_task(rows: Iterable[RunRow]) -> dict[tuple[str, str], list[RunRow]]:
    """Rows grouped by (arch, task), in first-seen order."""
    groups: dict[tuple[str, str], list[RunRow]] = defaultdict(list)
    for row in rows:
        groups[(row.arch, row.task)].append(row)
    return dict(groups)


def reference_sizes(rows: Sequence[RunRow], ref_n: int | None) -> dict[str, int]:
    """arch -> the reference training size: ``ref_n``; else the largest N that every task of the arch has
    (the largest N of a grid); else, when the tasks share no N, the largest N of any task."""
    out = {}
    for arch in sorted({row.arch for row in rows}):
        if ref_n is not None:
            out[arch] = int(ref_n)
            continue
        sizes_by_task = [{r.n_train for r in group} for (a, _), group in by_task(rows).items() if a == arch]
        common = set.intersection(*sizes_by_task)
        out[arch] = max(common) if common else max(set.union(*sizes_by_task))
    return out


@dataclass(frozen=True)
class TaskProperties:
    """One task's K_F (1/intensity) and d_data at ``ref_n``; None where unavailable (see ``skips``)."""

    arch: str
    task: str
    dataset: str
    domain: str
    ref_n: int
    label_sharpness: float | None
    d_data: float | None
    kf_m: int | None
    runs_at_ref: int


def reference_properties(
    rows: Sequence[RunRow], ref_n: int | None = None
) -> tuple[dict[tuple[str, str], TaskProperties], list[Skip]]:
    """(arch, task) -> :class:`TaskProperties` (module docstring), and what was left out and why."""
    sizes = reference_sizes(rows, ref_n)
    properties: dict[tuple[str, str], TaskProperties] = {}
    skips: list[Skip] = []
    for (arch, task), group in by_task(rows).items():
        ref = sizes[arch]
        at_ref = [r for r in group if r.n_train == ref]
        if not at_ref:
            have = ", ".join(map(str, sorted({r.n_train for r in group})))
            skips.append(Skip("task properties", f"{arch} {task}", f"no run at the reference N = {ref} (its N: {have}); "
                              "choose a size every task has with --ref-n"))
            continue
        k_f = [r.label_sharpness for r in at_ref if positive(r.label_sharpness)]
        d = [r.d_data for r in at_ref if positive(r.d_data)]
        m_values = sorted({r.kf_m for r in at_ref if r.kf_m is not None})
        if len(m_values) > 1:
            skips.append(Skip("K_F", f"{arch} {task}", f"its runs at N = {ref} compared different M ({m_values})"))
            k_f = []
        elif not k_f:
            skips.append(Skip("K_F", f"{arch} {task}", f"not recorded by its runs at N = {ref}"))
        if not d:
            skips.append(Skip("d_data", f"{arch} {task}", f"not recorded by its runs at N = {ref}"))
        properties[(arch, task)] = TaskProperties(
            arch=arch,
            task=task,
            dataset=group[0].dataset,
            domain=group[0].domain,
            ref_n=ref,
            label_sharpness=float(np.mean(k_f)) if k_f else None,
            d_data=float(np.mean(d)) if d else None,
            kf_m=m_values[0] if len(m_values) == 1 else None,
            runs_at_ref=len(at_ref),
        )
    return _one_m_per_arch(properties, skips)


def _one_m_per_arch(
    properties: dict[tuple[str, str], TaskProperties], skips: list[Skip]
) -> tuple[dict[tuple[str, str], TaskProperties], list[Skip]]:
    """Drop K_F of tasks whose M differs from the arch's most common M (K_F grows with M)."""
    for arch in {arch for arch, _ in properties}:
        counts = Counter(p.kf_m for (a, _), p in properties.items() if a == arch and p.label_sharpness is not None)
        if len(counts) <= 1:
            continue
        common = counts.most_common(1)[0][0]
        for key, p in list(properties.items()):
            if key[0] == arch and p.label_sharpness is not None and p.kf_m != common:
                skips.append(Skip("K_F", f"{arch} {p.task}", f"compared M = {p.kf_m} images, most tasks M = {common}: "
                                  "K_F is a maximum over pairs and grows with M"))
                properties[key] = TaskProperties(**{**asdict(p), "label_sharpness": None})
    return properties, skips


@dataclass(frozen=True)
class TaskExponent:
    """``log L = c - alpha log N`` for one task, and its fitted loss at the common size ``centre_n``."""

    arch: str
    task: str
    domain: str
    sizes: tuple[int, ...]
    n_runs: int
    alpha: float
    alpha_ci: Interval
    c: float
    r2: float
    centre_n: float
    loss_at_centre: float
    loss_at_centre_ci: Interval
    extrapolated: bool
    fit: LineFit


def centre_sizes(rows: Sequence[RunRow]) -> dict[str, float]:
    """arch -> ``sqrt(N_min * N_max)`` over its runs (the geometric middle of its N range)."""
    out = {}
    for arch in sorted({row.arch for row in rows}):
        sizes = [row.n_train for row in rows if row.arch == arch]
        out[arch] = math.sqrt(min(sizes) * max(sizes))
    return out


def _negated(interval: Interval) -> Interval:
    low, high = interval
    return (None if high is None else -high, None if low is None else -low)


def _exp(interval: Interval) -> Interval:
    return tuple(None if v is None else math.exp(v) for v in interval)  # type: ignore[return-value]


def task_exponents(rows: Sequence[RunRow]) -> tuple[dict[tuple[str, str], TaskExponent], list[Skip]]:
    """(arch, task) -> :class:`TaskExponent` for every task with 3+ training sizes; skips say why not."""
    centres = centre_sizes(rows)
    exponents: dict[tuple[str, str], TaskExponent] = {}
    skips: list[Skip] = []
    for (arch, task), group in by_task(rows).items():
        usable = [r for r in group if positive(r.test_loss)]
        sizes = tuple(sorted({r.n_train for r in usable}))
        if len(sizes) < 3:
            skips.append(Skip("exponent", f"{arch} {task}",
                              f"{len(sizes)} training size(s) with a test loss ({', '.join(map(str, sizes)) or 'none'}): needs 3"))
            continue
        try:
            fit = fit_line([math.log(r.n_train) for r in usable], [math.log(r.test_loss) for r in usable])
        except FitError as error:
            skips.append(Skip("exponent", f"{arch} {task}", str(error)))
            continue
        centre = centres[arch]
        log_loss, interval = fit.mean_at(math.log(centre))
        exponents[(arch, task)] = TaskExponent(
            arch=arch,
            task=task,
            domain=group[0].domain,
            sizes=sizes,
            n_runs=len(usable),
            alpha=-fit.slope,
            alpha_ci=_negated(fit.slope_ci),
            c=fit.intercept,
            r2=fit.r2,
            centre_n=centre,
            loss_at_centre=math.exp(log_loss),
            loss_at_centre_ci=_exp(interval),
            extrapolated=not sizes[0] <= centre <= sizes[-1],
            fit=fit,
        )
    return exponents, skips
