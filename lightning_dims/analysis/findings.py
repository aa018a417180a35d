"""The analysis in plain words: a few findings, each with its numbers, saying plainly when one does not hold.

Each :class:`Finding` is a claim of the paper put to the data, the numbers behind the verdict, and
``holds``: True when the data support the claim at 95 % (the interval excludes "no effect"),
False when they do not. The demo prints them and the report lists the same text.

1. **Loss falls with N** within each task: ``alpha > 0`` with its interval above 0.
2. **Higher d, slower learning**, per series varying d (or across all tasks when there is none):
   slope of ``alpha`` on ``1 / d_data`` above 0; whether the law's slope 1 is inside its interval.
3. **Sharper labels, higher loss**, per series varying the label contrast (or across all tasks
   when there is none): slope of ``log L(N_c)`` on ``log K_F`` above 0 (law: 1).
4. **Sharper labels, more fragile**, per contrast series (else pooled): Pearson r of the FGSM loss
   penalty with K_F above 0; the verdict also says whether the partial r given the clean loss
   stays above 0 (K_F explains the penalty beyond how wrong the network already is).
5. **d_repr <= d_data** in the paper's layer (the first recorded): the fraction of runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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

    def to_dict(self) -> dict:
        return asdict(self)


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
            f"(exponent alpha of L ~ N^-alpha from {low:.2f} to {high:.2f}); "
            f"the 95% interval of alpha lies above 0 in {len(sure)} of them. {verdict}")
    return Finding("loss falls with N", holds, text)


def _slope_text(fit: AcrossTasks, what: str, where: str) -> tuple[bool, str]:
    slope, interval = fit.fit.slope, fit.fit.slope_ci
    holds = above_zero(interval)
    law = "inside" if contains(interval, LAW_SLOPE) else "outside"
    verdict = "holds" if holds else "does not hold at this scale (the interval includes 0 or lies below it)"
    return holds, (f"{what} {where}: slope {slope:.2f} {interval_text(interval)} over {fit.fit.n} tasks "
                   f"(the law predicts 1; {law} the interval). This {verdict}.")


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


def sharpness_makes_fragile(analysis: Analysis) -> list[Finding]:
    scopes = [(r.series.name, r.penalty) for r in analysis.series if r.series.varied != "d" and r.penalty is not None]
    if not scopes:
        scopes = [(f"all {p.arch} runs", p) for p in analysis.penalties if p.scope == "pooled"]
    out = []
    for name, scope in scopes:
        c = scope.vs_sharpness
        holds = above_zero(c.pearson_ci)
        partial = scope.partial_given_clean_loss
        given = ("" if partial is None else
                 f"; given the clean test loss, partial r = {partial.r:.2f} {interval_text(partial.ci)}")
        if not holds:
            verdict = "This does not hold at this scale."
        elif partial is None:
            verdict = "This holds."
        elif above_zero(partial.ci):
            verdict = "This holds, also beyond what the clean loss explains."
        else:
            verdict = ("The raw correlation holds, but not beyond the clean loss: "
                       "at this scale the penalty follows how wrong the network already is.")
        out.append(Finding("FGSM penalty rises with K_F", holds,
                           f"Sharper labels, more fragile ({name}): FGSM loss penalty vs K_F Pearson r = {c.pearson:.2f} "
                           f"{interval_text(c.pearson_ci)} over {c.n} runs{given}. {verdict}"))
    return out


def representation_bound(analysis: Analysis) -> list[Finding]:
    out = []
    for arch in analysis.archs:
        bound = next((b for b in analysis.bounds if b.arch == arch), None)
        if bound is None:
            continue
        p = bound.below
        if p.k == p.n:
            verdict = "This holds in every run."
        elif 2 * p.k >= p.n:
            verdict = f"It fails in {p.n - p.k} runs (named in the report)."
        else:
            verdict = "This does not hold at this scale."
        out.append(Finding("d_repr <= d_data", p.k == p.n,
                           f"Representations stay below the data's dimension: d_repr ({bound.layer}) <= d_data in "
                           f"{p.k} of {p.n} runs ({p.fraction:.0%}, 95% interval {interval_text(p.ci)}). {verdict}"))
    return out


def findings(analysis: Analysis) -> list[Finding]:
    """All findings in the order of the module docstring."""
    first = loss_falls_with_n(analysis)
    return ([first] if first else []) + dimension_slows_learning(analysis) + sharpness_raises_loss(analysis) + \
        sharpness_makes_fragile(analysis) + representation_bound(analysis)
