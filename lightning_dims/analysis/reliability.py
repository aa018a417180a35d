"""How reproducible a task's K_F and d_data are from one seed's training set to another's.

Each task's value is the mean over its runs at the reference size (one per seed: each seed draws
other images). Its **seed-to-seed reliability** is the one-way intraclass correlation ICC(1)
over tasks: the share of the variance of single-seed values that lies between tasks,

    ICC(1) = (F - 1) / (F + k0 - 1),    F = MS_between / MS_within   (``scipy.stats.f_oneway``)

with ``k0 = (N - sum n_i^2 / N) / (g - 1)`` the mean number of seeds per task (``g`` tasks,
``N`` values, ``n_i`` per task; ``k0 = k`` when balanced). The reliability of the **mean** over
the seeds, which the fits use, is ``ICC(1, k) = 1 - 1 / F`` (Spearman-Brown). A value below
:data:`RELIABLE` (0.9) says the property is measured too noisily to rank tasks well: the across-
task fits on it are attenuated towards 0, and the report says so beside its findings. K_F is
compared on a log scale (it is a maximum of 1/distance; seeds differ by factors), d_data as is.

Needs 2 tasks with 2 or more seeds each; otherwise no reliability is given, with the reason.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from lightning_dims.analysis.rows import RunRow
from lightning_dims.analysis.skips import Skip
from lightning_dims.analysis.tasks import positive

__all__ = ["RELIABLE", "Reliability", "intraclass", "seed_reliability"]

RELIABLE = 0.9
"""Reliability of the task value (mean over seeds) below which the report warns."""


@dataclass(frozen=True)
class Reliability:
    """ICC(1) of single-seed values and ICC(1, k) of the per-task mean, over ``n_tasks`` tasks with 2+ seeds."""

    arch: str
    quantity: str
    single_seed: float
    of_mean: float
    seeds_per_task: float
    n_tasks: int

    @property
    def reliable(self) -> bool:
        return self.of_mean >= RELIABLE


def intraclass(groups: Sequence[Sequence[float]]) -> tuple[float, float, float]:
    """(ICC(1), ICC(1, k), k0) of values grouped by unit (module docstring); groups need 2+ values each."""
    groups = [np.asarray(g, dtype=np.float64) for g in groups]
    f = float(stats.f_oneway(*groups).statistic)
    total = sum(len(g) for g in groups)
    k0 = (total - sum(len(g) ** 2 for g in groups) / total) / (len(groups) - 1)
    if not math.isfinite(f):  # no spread within tasks: every seed agrees exactly
        return 1.0, 1.0, k0
    return (f - 1) / (f + k0 - 1), 1 - 1 / f, k0


def seed_reliability(
    rows: Sequence[RunRow], ref_sizes: Mapping[str, int]
) -> tuple[list[Reliability], list[Skip]]:
    """Per arch, the reliability of log K_F and of d_data across seeds at the reference size."""
    out, skips = [], []
    for arch, ref in sorted(ref_sizes.items()):
        for quantity, value in (("log K_F", lambda r: math.log(r.label_sharpness) if positive(r.label_sharpness) else None),
                                ("d_data", lambda r: r.d_data if positive(r.d_data) else None)):
            by_task: dict[str, list[float]] = defaultdict(list)
            for row in rows:
                if row.arch == arch and row.n_train == ref and (v := value(row)) is not None:
                    by_task[row.task].append(v)
            groups = [values for values in by_task.values() if len(values) >= 2]
            if len(groups) < 2:
                skips.append(Skip("seed-to-seed reliability", f"{arch} {quantity}",
                                  f"{len(groups)} task(s) with 2+ seeds at N = {ref}: needs 2"))
                continue
            single, mean, k0 = intraclass(groups)
            out.append(Reliability(arch, quantity, single, mean, k0, len(groups)))
    return out, skips
