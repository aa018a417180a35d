"""Adversarial fragility against label sharpness (paper.md §2.4, §3): FGSM loss penalty vs the task's K_F.

Each run contributes one point: x = its task's K_F at the reference size (1/intensity), y = its
FGSM loss penalty ``L_attacked - L_clean`` (nats) at one eps. Scopes, per arch:

* ``pooled``: every run of every domain (the paper's r = 0.70 pools its 11 datasets);
* ``domain <name>``: the runs of one domain;
* ``N = <n>``: the runs at one training size (one point per task and seed).

Runs of one task share its K_F, so in ``pooled`` and ``domain`` scopes the points are not
independent and the intervals (which assume they are) are too narrow; the per-N scopes are the
independent tests.

The penalty grows with how wrong the network already is, so each scope also gives the Pearson r of
the penalty with ``log L_clean`` and the **partial correlation** of penalty and K_F given
``log L_clean`` (both residualised on it): what K_F explains beyond the clean loss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lightning_dims.analysis.rows import RunRow
from lightning_dims.analysis.skips import Skip
from lightning_dims.analysis.stats import Correlation, FitError, PartialCorrelation, correlate, partial_correlation
from lightning_dims.analysis.tasks import TaskProperties, positive


@dataclass(frozen=True)
class PenaltyScope:
    """Penalty vs K_F in one scope, with the clean-loss link and the partial correlation."""

    arch: str
    scope: str
    n_runs: int
    n_tasks: int
    vs_sharpness: Correlation
    vs_log_clean_loss: Correlation | None
    partial_given_clean_loss: PartialCorrelation | None

    def to_dict(self) -> dict:
        return {
            "arch": self.arch, "scope": self.scope, "n_runs": self.n_runs, "n_tasks": self.n_tasks,
            "vs_sharpness": self.vs_sharpness.to_dict(),
            "vs_log_clean_loss": None if self.vs_log_clean_loss is None else self.vs_log_clean_loss.to_dict(),
            "partial_given_clean_loss": None if self.partial_given_clean_loss is None else self.partial_given_clean_loss.to_dict(),
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


def penalty_scope(arch: str, name: str, points: list[tuple[RunRow, float]], skips: list[Skip]) -> PenaltyScope | None:
    """The correlations of one scope's points (``penalty_points``); None, with a skip, when they cannot be computed."""
    where = f"{arch} {name}"
    k_f = [k for _, k in points]
    penalty = [r.loss_penalty for r, _ in points]
    log_clean = [math.log(r.clean_loss) for r, _ in points]
    try:
        vs_sharpness = correlate(k_f, penalty)
    except FitError as error:
        skips.append(Skip("penalty vs K_F", where, f"{error} ({len({r.task for r, _ in points})} task(s))"))
        return None
    vs_clean = partial = None
    try:
        vs_clean = correlate(log_clean, penalty)
        partial = partial_correlation(k_f, penalty, log_clean, covariate="log clean loss")
    except FitError as error:
        skips.append(Skip("penalty given clean loss", where, str(error)))
    return PenaltyScope(arch, name, len(points), len({r.task for r, _ in points}), vs_sharpness, vs_clean, partial)


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
        for name, subset in named:
            scope = penalty_scope(arch, name, subset, skips)
            if scope is not None:
                scopes.append(scope)
    return scopes, skips
