"""Our K_F and d_data at the paper's spec beside the paper's Figure 1 values (paper.md §5).

The paper measured at 224 x 224, each image scaled to maximum 255, 1 channel for MNIST and the
radiology sets and (apparently) 3 channels for CIFAR-10, SVHN and ImageNet, at N = 500..1750.
Only our measurements under that exact spec are put beside its numbers: K_F is in 1/intensity
per flattened image and changes with size, channels and scaling (paper.md §2.2).

Sources of our values: task properties from results records whose spec is the paper's, and
``lightning-dims measure --json`` outputs (``report --measurements FILE``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lightning_dims.analysis.stats import FitError, Ratio, geometric_mean_ratio

__all__ = [
    "K_F_DEFINITION_NOTE",
    "PAPER_FIGURE_1",
    "PAPER_KF_UNIT",
    "ComparisonRow",
    "DomainRatio",
    "OurValue",
    "PaperValue",
    "domain_ratio",
    "measurement_values",
    "paper_comparison",
]

PAPER_KF_UNIT = 1e-4


@dataclass(frozen=True)
class PaperValue:
    """One row of paper.md §5: Figure 1's d_data and K_F (in units of 1e-4, 1/intensity)."""

    name: str
    domain: str
    d_data: float
    k_f_1e4: float
    channels: int

    @property
    def spec(self) -> str:
        return f"224px-{self.channels}ch-max255"


PAPER_FIGURE_1: dict[str, PaperValue] = {
    "brats": PaperValue("BraTS", "medical", 10.9, 2.01, 1),
    "dbc": PaperValue("DBC", "medical", 16.8, 3.11, 1),
    "oai": PaperValue("OAI", "medical", 8.6, 3.43, 1),
    "chexpert": PaperValue("CheXpert", "medical", 15.3, 1.35, 1),
    "mura": PaperValue("MURA", "medical", 10.7, 2.82, 1),
    "rsna": PaperValue("RSNA", "medical", 10.9, 2.09, 1),
    "prostate": PaperValue("Prostate", "medical", 5.6, 1.81, 1),
    "mnist": PaperValue("MNIST", "natural", 9.2, 1.58, 1),
    "cifar10": PaperValue("CIFAR-10", "natural", 16.3, 0.62, 3),
    "svhn": PaperValue("SVHN", "natural", 12.5, 1.03, 3),
    "imagenet": PaperValue("ImageNet", "natural", 17.8, 0.59, 3),
}
"""Registry name -> the paper's Figure 1 values (read off the figure; see paper.md §5)."""

K_F_DEFINITION_NOTE = (
    "K_F here is the exhaustive maximum of 1 / distance over all differently labelled pairs among M "
    "training images (M = 1000 where N allows). The authors' released code compares only about 2,000 "
    "batch-aligned random pairs of the M(M-1)/2 = 499,500, and its label test is inverted (it keeps "
    "same-label pairs, so it returns 1 / the smallest same-label distance among them; paper.md §2.2). "
    "A maximum over all pairs is at least the maximum over a sample of them, and a same-label nearest "
    "pair is a different pair from a cross-label one, so the two numbers measure different things: "
    "compare their order of magnitude and the medical/natural ordering, not their digits. d_data is the "
    "same estimator as the paper's (MLE, k = 20, (k-2) normaliser), but measured at one N."
)


@dataclass(frozen=True)
class OurValue:
    """One measurement of ours at a paper spec."""

    dataset: str
    task: str
    domain: str
    n: int | None
    m: int | None
    d_data: float
    label_sharpness: float
    spec: str
    source: str


def measurement_values(measurements: Iterable[Mapping]) -> list[OurValue]:
    """``lightning-dims measure --json`` outputs as :class:`OurValue` (entries without K_F or d_data are ignored)."""
    values = []
    for m in measurements:
        if m.get("label_sharpness") is None or m.get("d_data") is None:
            continue
        classes = m.get("classes")
        task = m["dataset"] + (f" {' vs '.join(map(str, classes))}" if classes and classes != list(range(len(classes))) else "")
        values.append(OurValue(m["dataset"], task, m.get("domain") or "unknown", m.get("n"), m.get("m"), float(m["d_data"]),
                               float(m["label_sharpness"]), (m.get("preprocessing") or {}).get("key", ""), "measure"))
    return values


@dataclass(frozen=True)
class ComparisonRow:
    dataset: str
    paper: PaperValue | None
    ours: tuple[OurValue, ...]


@dataclass(frozen=True)
class DomainRatio:
    """Medical over natural K_F: one value per dataset (the mean over its tasks), every value at one M.

    ``ratio``: :func:`lightning_dims.analysis.stats.geometric_mean_ratio` of the datasets' values
    (None, with ``why``, when a domain has fewer than 2 datasets); ``left_out``: datasets measured
    at another M (K_F, a maximum over pairs, grows with M), with that M.
    """

    m: int | None
    medical: tuple[tuple[str, float], ...]
    natural: tuple[tuple[str, float], ...]
    ratio: Ratio | None
    left_out: tuple[tuple[str, int | None], ...]
    why: str | None = None


def domain_ratio(rows: Iterable[ComparisonRow]) -> DomainRatio | None:
    """Medical over natural K_F at one spec (the paper: about 2.5); None without both domains."""
    values = [v for row in rows for v in row.ours if v.domain in ("medical", "natural")]
    if not values:
        return None
    m = Counter(v.m for v in values).most_common(1)[0][0]
    left_out = tuple(sorted({(v.dataset, v.m) for v in values if v.m != m}, key=str))
    per_dataset: dict[tuple[str, str], list[float]] = defaultdict(list)
    for v in values:
        if v.m == m:
            per_dataset[(v.domain, v.dataset)].append(v.label_sharpness)
    by_domain = {d: tuple((name, sum(k) / len(k)) for (domain, name), k in sorted(per_dataset.items()) if domain == d)
                 for d in ("medical", "natural")}
    if not by_domain["medical"] or not by_domain["natural"]:
        return None
    try:
        ratio, why = geometric_mean_ratio([k for _, k in by_domain["medical"]], [k for _, k in by_domain["natural"]]), None
    except FitError as error:
        ratio, why = None, str(error)
    return DomainRatio(m, by_domain["medical"], by_domain["natural"], ratio, left_out, why)


def paper_comparison(ours: Iterable[OurValue]) -> list[ComparisonRow]:
    """Every paper dataset (with our values at its spec, possibly none), then our datasets the paper did not use."""
    ours = list(ours)
    rows = []
    for name, paper in PAPER_FIGURE_1.items():
        rows.append(ComparisonRow(name, paper, tuple(v for v in ours if v.dataset == name and v.spec == paper.spec)))
    for name in sorted({v.dataset for v in ours} - set(PAPER_FIGURE_1)):
        at_1ch = tuple(v for v in ours if v.dataset == name and v.spec == "224px-1ch-max255")
        if at_1ch:
            rows.append(ComparisonRow(name, None, at_1ch))
    return rows
