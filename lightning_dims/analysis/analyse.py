"""Everything the report says, computed once from a selected list of results records.

:func:`analyse` runs, in order: records -> rows (:mod:`.rows`), one spec, per-task reference
properties and exponents (:mod:`.tasks`), the law across tasks and the paper's Fig. 2
(:mod:`.laws`), controlled series (:mod:`.series`), each law's primary and Holm-adjusted exploratory
scopes (:mod:`.scopes`), FGSM penalty vs K_F (:mod:`.robustness`),
training health and the d_repr bound (:mod:`.health`), the paper comparison (:mod:`.paper`), the
seed-to-seed reliability of K_F and d_data (:mod:`.reliability`), and the law fits again without
the runs the health rule excludes (``healthy``). Every fit that could not be made is in ``skips``
with the reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lightning_dims.analysis import health, laws, paper, reliability, robustness, scopes, series, tasks
from lightning_dims.analysis.rows import RunRow, rows_from_records
from lightning_dims.analysis.skips import Skip
from lightning_dims.data.spec import SpecMismatchError

__all__ = ["Analysis", "HealthyFits", "analyse", "healthy_fits", "select_spec", "why_no_rows"]


def select_spec(rows: list[RunRow], spec: str | None) -> tuple[list[RunRow], str | None]:
    """The rows of one preprocessing spec; refuses to mix specs silently (K_F and d_data change with it)."""
    keys = sorted({str(r.spec) for r in rows})
    if spec is not None:
        chosen = [r for r in rows if r.spec == spec]
        if not chosen:
            raise SpecMismatchError(f"no finished run was measured under spec {spec!r}; the records hold {keys}")
        return chosen, spec
    if len(keys) > 1:
        raise SpecMismatchError(
            f"the records mix preprocessing specs {keys}: K_F and d_data are not comparable across them; "
            "pass --spec KEY to report one of them"
        )
    return rows, (keys[0] if keys else None)


@dataclass(frozen=True)
class HealthyFits:
    """The verdicts' second reading: the law fits and the pooled penalty scope without the ``excluded`` runs."""

    excluded: dict[str, str]
    n_runs: int
    alpha_vs_dimension: dict[str, laws.AcrossTasks]
    loss_vs_sharpness: dict[str, laws.AcrossTasks]
    penalties: list[robustness.PenaltyScope]
    series: list[series.SeriesResult]


def healthy_fits(rows: list[RunRow], ref_n: int | None) -> HealthyFits:
    """:class:`HealthyFits` of ``rows`` (their skips are not reported: the main fits' skips say the same)."""
    excluded = health.excluded_runs(rows)
    kept = [r for r in rows if r.run_id not in excluded]
    properties, _ = tasks.reference_properties(kept, ref_n)
    exponents, _ = tasks.task_exponents(kept)
    by_dimension, _ = laws.exponent_vs_inverse_dimension(exponents, properties)
    by_sharpness, _ = laws.centre_loss_vs_sharpness(exponents, properties)
    penalties = [scope for arch in sorted({r.arch for r in kept})
                 if (scope := robustness.penalty_scope(arch, "pooled", [(r, k) for r, k in robustness.penalty_points(kept, properties)
                                                                        if r.arch == arch], [])) is not None]
    found = [series.analyse_series(s, kept, exponents, properties) for s in series.controlled_series(kept)]
    return HealthyFits(excluded, len(kept), by_dimension, by_sharpness, penalties, found)


@dataclass
class Analysis:
    spec: str | None
    rows: list[RunRow]
    ref_sizes: dict[str, int]
    properties: dict[tuple[str, str], tasks.TaskProperties]
    exponents: dict[tuple[str, str], tasks.TaskExponent]
    alpha_vs_dimension: dict[str, laws.AcrossTasks]
    loss_vs_sharpness: dict[str, laws.AcrossTasks]
    fig2: list[laws.DimensionSlope]
    series: list[series.SeriesResult]
    penalties: list[robustness.PenaltyScope]
    bounds: list[health.ReprBound]
    flags: dict[str, list[str]]
    comparison: list[paper.ComparisonRow]
    skips: list[Skip] = field(default_factory=list)
    reliability: list[reliability.Reliability] = field(default_factory=list)
    healthy: HealthyFits | None = None
    law_scopes: dict[str, list[scopes.LawScope]] = field(default_factory=dict)

    @property
    def archs(self) -> list[str]:
        return sorted({r.arch for r in self.rows})


def why_no_rows(usable: int, skips: Sequence[Skip], spec: str | None) -> str:
    """Why no record became a row: each reason records were left out for, with its count (the test-set floor,
    unfinished runs), or the spec that matched none of the ``usable`` ones."""
    if usable:
        return f"none of the {usable} finished runs has spec {spec!r}"
    if not skips:
        return "no records (check --results)"
    reasons = Counter(skip.why.split(":", 1)[0] for skip in skips if skip.what == "run")
    return f"no finished run left: {len(skips)} left out, " + "; ".join(f"{count} {why}" for why, count in reasons.most_common())


def analyse(
    records: Iterable[Any],
    *,
    spec: str | None = None,
    ref_n: int | None = None,
    eps: float | None = None,
    measurements: Sequence[Mapping] = (),
) -> Analysis:
    """The whole analysis of already-selected records (one per run; see the module docstring).

    Raises:
        SpecMismatchError: the records mix preprocessing specs and ``spec`` does not choose one.
        ValueError: no finished run among the records.
    """
    all_rows, skips = rows_from_records(records, eps=eps)
    rows, spec_key = select_spec(all_rows, spec)
    if not rows:
        raise ValueError(f"nothing to report: {why_no_rows(len(all_rows), skips, spec)}")
    properties, s1 = tasks.reference_properties(rows, ref_n)
    exponents, s2 = tasks.task_exponents(rows)
    by_dimension, s3 = laws.exponent_vs_inverse_dimension(exponents, properties)
    by_sharpness, s4 = laws.centre_loss_vs_sharpness(exponents, properties)
    fig2, s5 = laws.loss_vs_dimension_at_each_n(rows, properties, exponents)
    series_results = [series.analyse_series(s, rows, exponents, properties) for s in series.controlled_series(rows)]
    penalties, s6 = robustness.penalty_vs_sharpness(rows, properties)
    penalties, series_results = scopes.penalty_family(penalties, series_results)
    ref_sizes = tasks.reference_sizes(rows, ref_n)
    seed_reliability, s7 = reliability.seed_reliability(rows, ref_sizes)
    excluded = health.excluded_runs(rows)
    ours = [
        paper.OurValue(p.dataset, p.task, p.domain, p.ref_n, p.kf_m, p.d_data, p.label_sharpness, spec_key or "", "records")
        for p in properties.values()
        if p.d_data is not None and p.label_sharpness is not None
    ]
    return Analysis(
        spec=spec_key,
        rows=rows,
        ref_sizes=ref_sizes,
        properties=properties,
        exponents=exponents,
        alpha_vs_dimension=by_dimension,
        loss_vs_sharpness=by_sharpness,
        fig2=fig2,
        series=series_results,
        penalties=penalties,
        bounds=health.representation_bound(rows),
        flags={r.run_id: health.run_flags(r) for r in rows},
        comparison=paper.paper_comparison(ours + paper.measurement_values(measurements)),
        skips=skips + s1 + s2 + s3 + s4 + s5 + s6 + s7 + [s for result in series_results for s in result.skips],
        reliability=seed_reliability,
        healthy=healthy_fits(rows, ref_n) if excluded else None,
        law_scopes=scopes.law_scopes(by_dimension, by_sharpness, series_results),
    )
