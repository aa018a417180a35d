"""The scopes each law (and the FGSM penalty) is read in, the one declared primary, and Holm's adjustment over the others.

A law's across-task fit (:mod:`lightning_dims.analysis.laws`) is shown in several scopes: over all
tasks of each arch (the report's "law across tasks" table) and over each controlled series
(:mod:`lightning_dims.analysis.series`). Exactly one scope per law is the **declared primary**,
judged at 95 % on its own:

* alpha vs 1/d_data: the first series varying ``d``; without one, all tasks of the first arch
  (in name order);
* log L(N_c) vs log K_F: the first series varying another option (K_F at a fixed d); without
  one, all tasks of the first arch.

Every other scope shown is **exploratory**, whether it is a further series, another arch, or a
series that varies the other factor: its verdict is read after Holm's adjustment over the
exploratory scopes of that law (:func:`lightning_dims.analysis.verdicts.adjust`: adjusted p of
slope 0 and of the law's value, and the state they give), so no scope is picked out by an
unadjusted interval. The findings (:mod:`lightning_dims.analysis.findings`) list the scopes that
test the law's own factor (the series varying it, else the all-task fits), the primary first.

The FGSM penalty against K_F (:mod:`lightning_dims.analysis.robustness`) is read the same way
(:func:`penalty_family`): one declared primary scope, the first series varying K_F at a fixed d,
else the first arch's pooled scope; every other scope shown (other archs' pooled scopes, domain and
N scopes, other series) is exploratory, with its task-permutation p Holm-adjusted over all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from lightning_dims.analysis.laws import AcrossTasks
from lightning_dims.analysis.robustness import PenaltyScope, adjust_exploratory
from lightning_dims.analysis.series import SeriesResult
from lightning_dims.analysis.verdicts import Adjusted, adjust

__all__ = ["ALPHA", "LAWS", "LOSS", "LawScope", "law_scopes", "penalty_family", "scope_of"]

ALPHA, LOSS = "alpha vs 1/d_data", "log L(N_c) vs log K_F"
LAWS: dict[str, tuple[str, str, Callable[[str], bool]]] = {
    ALPHA: ("exponent_vs_inverse_dimension", "alpha_vs_dimension", lambda varied: varied == "d"),
    LOSS: ("centre_loss_vs_sharpness", "loss_vs_sharpness", lambda varied: varied != "d"),
}
"""law -> (its attribute on a :class:`SeriesResult`, on the analysis, which varied option tests it)."""


@dataclass(frozen=True)
class LawScope:
    """One law's fit in one scope: ``series`` is the series' name, or None for all tasks of ``arch``; ``listed``:
    a finding states it; ``adjusted``: the Holm reading (None for the primary)."""

    law: str
    arch: str
    series: str | None
    fit: AcrossTasks
    primary: bool
    listed: bool
    adjusted: Adjusted | None

    def to_dict(self) -> dict:
        return {"law": self.law, "arch": self.arch, "series": self.series, "primary": self.primary,
                "listed": self.listed, "state": self.fit.verdict.state,
                "adjusted": None if self.adjusted is None else self.adjusted.to_dict()}


def law_scopes(
    alpha_vs_dimension: Mapping[str, AcrossTasks], loss_vs_sharpness: Mapping[str, AcrossTasks],
    series: Sequence[SeriesResult],
) -> dict[str, list[LawScope]]:
    """law -> its scopes in order: those a finding lists (the primary first), then the others shown."""
    across = {ALPHA: alpha_vs_dimension, LOSS: loss_vs_sharpness}
    out = {}
    for law, (attribute, _, tests_it) in LAWS.items():
        in_series = [(r.series.arch, r.series.name, getattr(r, attribute), tests_it(r.series.varied)) for r in series
                     if getattr(r, attribute) is not None]
        all_tasks = [(arch, None, fit) for arch, fit in sorted(across[law].items())]
        testing = [(arch, name, fit) for arch, name, fit, testing in in_series if testing]
        listed = testing or all_tasks
        others = ([(arch, name, fit) for arch, name, fit, testing in in_series if not testing] +
                  ([] if listed is all_tasks else all_tasks))
        shown = [(scope, True) for scope in listed] + [(scope, False) for scope in others]
        readings = adjust([fit.verdict for (_, _, fit), _ in shown[1:]])
        out[law] = [LawScope(law, arch, name, fit, i == 0, is_listed, None if i == 0 else readings[i - 1])
                    for i, ((arch, name, fit), is_listed) in enumerate(shown)]
    return out


def scope_of(scopes: Mapping[str, Sequence[LawScope]], law: str, fit: AcrossTasks) -> LawScope | None:
    """The scope that ``fit`` (the same object) is shown in."""
    return next((s for s in scopes.get(law, ()) if s.fit is fit), None)


def penalty_family(
    penalties: Sequence[PenaltyScope], series: Sequence[SeriesResult]
) -> tuple[list[PenaltyScope], list[SeriesResult]]:
    """The FGSM penalty-vs-K_F scopes with one declared primary over all archs and series: the first series varying
    another option than d (K_F at a fixed d), else the first arch's pooled scope. Every other scope shown (the
    archs' pooled, domain and N scopes, the other series) is exploratory, its task-permutation p Holm-adjusted over
    all of them. Returns the penalties and the series results with those labels."""
    in_series = [r for r in series if r.penalty is not None]
    shown = list(penalties) + [r.penalty for r in in_series]
    contrast = next((i for i, r in enumerate(in_series) if r.series.varied != "d"), None)
    pooled = next((i for i, p in enumerate(penalties) if p.scope == "pooled"), None)
    primary = len(penalties) + contrast if contrast is not None else pooled
    labelled = adjust_exploratory(shown, primary)
    by_result = dict(zip((id(r) for r in in_series), labelled[len(penalties):]))
    results = [replace(r, penalty=by_result[id(r)]) if id(r) in by_result else r for r in series]
    return labelled[:len(penalties)], results
