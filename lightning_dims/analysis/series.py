"""Controlled series: tasks of one dataset that differ in exactly one dataset option.

On ``synthetic`` the options set the intrinsic dimension ``d`` and the label contrast (a fainter
label factor puts differently labelled images closer: higher K_F at the same d). Tasks that share
every option but one form a series in which only that factor moves, e.g. ``d`` = 2, 4, 6, 8 at
contrast 1, or contrast 1, 0.5, 0.35, 0.25 at d = 4. Within a series the law's predictions can be
tested one factor at a time (the fits of :mod:`lightning_dims.analysis.laws` and
:mod:`lightning_dims.analysis.robustness` restricted to the series' tasks):

* varying d at fixed contrast: exponent ``alpha`` against ``1 / d_data`` (law: slope 1);
* varying contrast at fixed d: ``log L(N_c)`` against ``log K_F`` (law: slope 1), and the FGSM
  penalty against K_F.

A series needs at least three tasks (three values of the varied option).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from lightning_dims.analysis.laws import AcrossTasks, centre_loss_vs_sharpness, exponent_vs_inverse_dimension
from lightning_dims.analysis.robustness import PenaltyScope, penalty_points, penalty_scope
from lightning_dims.analysis.rows import RunRow
from lightning_dims.analysis.skips import Skip
from lightning_dims.analysis.tasks import TaskExponent, TaskProperties
from lightning_dims.utils import canonical_json

__all__ = ["MIN_SERIES_TASKS", "Series", "SeriesResult", "analyse_series", "controlled_series"]

MIN_SERIES_TASKS = 3


@dataclass(frozen=True)
class Series:
    """Tasks of ``dataset`` (one arch) where only option ``varied`` changes; ``fixed`` holds the others."""

    arch: str
    dataset: str
    varied: str
    fixed: Mapping[str, object]
    tasks: tuple[str, ...]

    @property
    def name(self) -> str:
        fixed = ", ".join(f"{k}={v}" for k, v in self.fixed.items())
        return f"{self.dataset}: {self.varied} varied" + (f" at {fixed}" if fixed else "")


def controlled_series(rows: Sequence[RunRow]) -> list[Series]:
    """Every series of :data:`MIN_SERIES_TASKS` or more tasks (module docstring), per arch and dataset."""
    tasks: dict[tuple[str, str], dict[str, Mapping]] = defaultdict(dict)
    for row in rows:
        tasks[(row.arch, row.dataset)][row.task] = row.options
    found = []
    for (arch, dataset), options_by_task in sorted(tasks.items()):
        keys = list(dict.fromkeys(key for options in options_by_task.values() for key in options))
        for varied in keys:
            groups: dict[str, list[str]] = defaultdict(list)
            for task, options in options_by_task.items():
                rest = {k: options.get(k) for k in keys if k != varied}
                groups[canonical_json(rest, compact=False)].append(task)
            for rest, members in groups.items():
                values = {json.dumps(options_by_task[t].get(varied), default=str) for t in members}
                if len(values) >= MIN_SERIES_TASKS:
                    fixed = json.loads(rest)
                    shown = {k: v for k, v in fixed.items() if _varies(options_by_task, k)}
                    ordered = tuple(sorted(members, key=lambda t: _sort_key(options_by_task[t].get(varied))))
                    found.append(Series(arch, dataset, varied, shown, ordered))
    return found


def _varies(options_by_task: Mapping[str, Mapping], key: str) -> bool:
    return len({json.dumps(o.get(key), default=str) for o in options_by_task.values()}) > 1


def _sort_key(value: object) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


@dataclass
class SeriesResult:
    """The law's fits restricted to one series (None where skipped; ``skips`` say why)."""

    series: Series
    exponent_vs_inverse_dimension: AcrossTasks | None
    centre_loss_vs_sharpness: AcrossTasks | None
    penalty: PenaltyScope | None
    skips: list[Skip] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "series": {**asdict(self.series), "name": self.series.name},
            "exponent_vs_inverse_dimension": _maybe_dict(self.exponent_vs_inverse_dimension),
            "centre_loss_vs_sharpness": _maybe_dict(self.centre_loss_vs_sharpness),
            "penalty_vs_sharpness": None if self.penalty is None else self.penalty.to_dict(),
        }


def _maybe_dict(value: AcrossTasks | None) -> dict | None:
    return None if value is None else value.to_dict()


def analyse_series(
    series: Series,
    rows: Sequence[RunRow],
    exponents: Mapping[tuple[str, str], TaskExponent],
    properties: Mapping[tuple[str, str], TaskProperties],
) -> SeriesResult:
    """The across-task fits and the pooled penalty correlation over the series' tasks only."""
    members = set(series.tasks)
    mine_exp = {k: v for k, v in exponents.items() if k[0] == series.arch and k[1] in members}
    mine_props = {k: v for k, v in properties.items() if k[0] == series.arch and k[1] in members}
    by_dimension, skips_d = exponent_vs_inverse_dimension(mine_exp, mine_props)
    by_sharpness, skips_k = centre_loss_vs_sharpness(mine_exp, mine_props)
    skips_p: list[Skip] = []
    points = penalty_points([r for r in rows if r.arch == series.arch and r.task in members], mine_props)
    pooled = penalty_scope(series.arch, "pooled", points, skips_p)
    skips = [Skip(s.what, f"{series.name}: {s.scope}", s.why) for s in skips_d + skips_k + skips_p]
    return SeriesResult(series, by_dimension.get(series.arch), by_sharpness.get(series.arch), pooled, skips)
