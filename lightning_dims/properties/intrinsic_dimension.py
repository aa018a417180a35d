"""Intrinsic dimension estimators (d_data, d_repr) with a scikit-dimension-style API.

Both estimators work from exact kNN distances ``T_j(x)`` (distance from ``x`` to its j-th nearest
other sample, samples flattened) computed by :func:`lightning_dims.properties.knn.knn`, after
exact duplicate samples are dropped with a warning (never a silent 0.0).

* ``mle``: Levina-Bickel maximum likelihood with MacKay-Ghahramani averaging. Per sample
  ``1/m_k(x_i) = 1/(k-2) * sum_{j=1}^{k-1} log(T_k(x_i) / T_j(x_i))`` (``k-1`` instead of
  ``k-2`` with ``unbiased=False``); estimate ``d = 1 / mean_i(1/m_k(x_i))``.
* ``twonn``: Facco et al. (2017). ``mu_i = T_2 / T_1``, sorted ascending; the largest (and,
  optionally, a further fraction) dropped; least-squares slope through the origin of
  ``-log(1 - i/n)`` against ``log mu_(i)``, i = 1..n_kept, n the number of samples.

Estimates are unitless; they are invariant to a global scale of the samples but not to
resolution or channel count.
"""

from __future__ import annotations

import abc
import inspect
import math
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from lightning_dims.properties.duplicates import deduplicated_knn
from lightning_dims.properties.knn import DEFAULT_MEMORY_BUDGET_BYTES, as_points

__all__ = [
    "ESTIMATORS",
    "MLE",
    "SMALL_SAMPLE_FACTOR",
    "IntrinsicDimensionEstimator",
    "IntrinsicDimensionResult",
    "SmallSampleWarning",
    "TwoNN",
    "intrinsic_dimension",
    "make_estimator",
    "mle_dimension",
    "register_estimator",
    "twonn_dimension",
]


@dataclass(frozen=True)
class IntrinsicDimensionResult:
    """An intrinsic dimension estimate and what it was computed from. ``float(result)`` is the estimate.

    Attributes:
        dimension: the estimate (float64, unitless).
        estimator: registry name of the estimator (``mle`` or ``twonn``).
        k: neighbours used per sample (2 for TwoNN).
        n_samples: distinct samples the estimate used.
        n_duplicates: exact duplicate samples dropped before estimating.
        options: estimator options (``unbiased`` for MLE, ``discard_fraction`` for TwoNN).
    """

    dimension: float
    estimator: str
    k: int
    n_samples: int
    n_duplicates: int
    options: dict

    def __float__(self) -> float:
        return float(self.dimension)

    def to_dict(self) -> dict:
        return {
            "dimension": self.dimension,
            "estimator": self.estimator,
            "k": self.k,
            "n_samples": self.n_samples,
            "n_duplicates": self.n_duplicates,
            **self.options,
        }


def mle_dimension(distances: torch.Tensor, unbiased: bool = True) -> float:
    """Levina-Bickel MLE with MacKay-Ghahramani averaging from (N, k) ascending kNN distances.

    ``1/m_k(x_i) = 1/(k-2 or k-1) * sum_{j<k} log(T_k/T_j)``; returns ``1 / mean_i(1/m_k(x_i))``.
    """
    k = distances.shape[1]
    log_ratios = torch.log(distances[:, -1:] / distances[:, :-1])
    inverse_local = log_ratios.sum(dim=1) / (k - 2 if unbiased else k - 1)
    mean_inverse = float(inverse_local.to(torch.float64).mean())
    return math.inf if mean_inverse == 0 else 1.0 / mean_inverse


def twonn_dimension(distances: torch.Tensor, discard_fraction: float = 0.0) -> float:
    """TwoNN slope from (N, >=2) ascending kNN distances.

    ``mu = T_2/T_1`` sorted; keeps ``i = 1..n_kept`` with ``n_kept = min(n - 1, floor(n (1 - f)))``
    (the largest ratio always goes: ``-log(1 - n/n)`` is infinite) and fits
    ``-log(1 - i/n) = d * log mu_(i)`` by least squares through the origin.
    """
    n = distances.shape[0]
    mu, _ = torch.sort((distances[:, 1] / distances[:, 0]).to(torch.float64))
    n_kept = min(n - 1, int(math.floor(n * (1.0 - discard_fraction))))
    log_mu = torch.log(mu[:n_kept])
    ecdf = torch.arange(1, n_kept + 1, dtype=torch.float64, device=mu.device) / n
    target = -torch.log1p(-ecdf)
    denominator = float((log_mu * log_mu).sum())
    return math.inf if denominator == 0 else float((log_mu * target).sum()) / denominator


SMALL_SAMPLE_FACTOR = 5
"""Below ``SMALL_SAMPLE_FACTOR * k`` distinct samples an estimate warns (:class:`SmallSampleWarning`)."""


class SmallSampleWarning(UserWarning):
    """An intrinsic dimension estimated from fewer than ``SMALL_SAMPLE_FACTOR * k`` distinct samples."""


class IntrinsicDimensionEstimator(abc.ABC):
    """Base of the kNN estimators, scikit-dimension style: ``Estimator(**options).fit(X)`` sets ``dimension_``.

    A subclass owns its options: its ``__init__`` takes them as keyword arguments (plus the
    common ``memory_budget_bytes`` and ``progress``) and stores each under its own name, so
    :meth:`get_params` and :meth:`options` can read them back (as scikit-learn's ``get_params``).
    It implements :attr:`neighbours` (how many nearest neighbours it needs) and
    :meth:`dimension_from_knn`, and is registered with :func:`register_estimator`.
    """

    name: ClassVar[str]
    min_samples: ClassVar[int] = 3
    COMMON = ("memory_budget_bytes", "progress")

    def __init__(self, *, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES, progress: bool = False):
        self.memory_budget_bytes = memory_budget_bytes
        self.progress = progress

    @property
    @abc.abstractmethod
    def neighbours(self) -> int:
        """Nearest neighbours per sample the estimate needs (``T_1 .. T_neighbours``)."""

    @abc.abstractmethod
    def dimension_from_knn(self, distances: torch.Tensor) -> float:
        """The estimate from (N, neighbours) ascending distances to distinct neighbours."""

    @classmethod
    def option_names(cls) -> list[str]:
        """The keyword options of this estimator (its ``__init__`` parameters, the common ones excluded)."""
        parameters = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in parameters if p.name != "self" and p.kind is not p.VAR_KEYWORD and p.name not in cls.COMMON]

    def get_params(self) -> dict:
        """Every parameter, common ones included (scikit-learn's convention)."""
        return {name: getattr(self, name) for name in [*self.option_names(), *self.COMMON]}

    def options(self) -> dict:
        """The estimator's own options (recorded with every result)."""
        return {name: getattr(self, name) for name in self.option_names()}

    def fit(self, X: torch.Tensor | np.ndarray, y=None) -> "IntrinsicDimensionEstimator":
        """Estimate from ``X`` (N, ...): needs N >= k + 1 (each sample's k nearest others); warns when
        fewer than :data:`SMALL_SAMPLE_FACTOR` x k distinct samples remain (:class:`SmallSampleWarning`)."""
        needed = max(self.min_samples, self.neighbours + 1)
        given = X.shape[0] if getattr(X, "ndim", 0) >= 1 else None
        if given is not None and given < needed:
            raise ValueError(
                f"{self.name} with k={self.neighbours} neighbours needs at least k + 1 = {needed} samples "
                f"(each sample's k nearest others); X has {given}: lower k or add samples"
            )
        points = as_points(X, name="X", min_points=needed)
        result, kept = deduplicated_knn(
            points, self.neighbours, memory_budget_bytes=self.memory_budget_bytes, progress=self.progress
        )
        self.result_ = self.estimate(result.distances, n_samples=int(kept.shape[0]), n_total=int(points.shape[0]))
        self.dimension_ = self.result_.dimension
        if kept.shape[0] < SMALL_SAMPLE_FACTOR * self.neighbours:
            warnings.warn(
                f"{self.name} d = {self.dimension_:.3g} from N = {kept.shape[0]} distinct samples with k = {self.neighbours}: "
                f"below {SMALL_SAMPLE_FACTOR}k = {SMALL_SAMPLE_FACTOR * self.neighbours} the k nearest neighbours span much "
                "of the set and the estimate is unreliable (typically too low); add samples or lower k",
                SmallSampleWarning,
                stacklevel=2,
            )
        return self

    def estimate(self, distances: torch.Tensor, *, n_samples: int, n_total: int) -> IntrinsicDimensionResult:
        """The result from the kNN distances of ``n_samples`` distinct samples out of ``n_total``."""
        return IntrinsicDimensionResult(
            dimension=float(self.dimension_from_knn(distances)),
            estimator=self.name,
            k=self.neighbours,
            n_samples=n_samples,
            n_duplicates=n_total - n_samples,
            options=self.options(),
        )


ESTIMATORS: dict[str, type[IntrinsicDimensionEstimator]] = {}


def register_estimator(cls: type[IntrinsicDimensionEstimator]) -> type[IntrinsicDimensionEstimator]:
    """Class decorator: make an estimator available by its ``name``."""
    ESTIMATORS[cls.name] = cls
    return cls


@register_estimator
class MLE(IntrinsicDimensionEstimator):
    """Levina-Bickel MLE, MacKay-Ghahramani averaging.

    Args:
        k: neighbours per sample (paper: 20).
        unbiased: the ``(k-2)`` normaliser (paper, scikit-dimension ``unbiased=True``); False: ``(k-1)``.
    """

    name = "mle"

    def __init__(self, k: int = 20, unbiased: bool = True, **common):
        super().__init__(**common)
        if k < 3:
            raise ValueError(f"MLE needs k >= 3 neighbours (the unbiased form divides by k - 2), got k={k}")
        self.k = k
        self.unbiased = unbiased

    @property
    def neighbours(self) -> int:
        return self.k

    def dimension_from_knn(self, distances: torch.Tensor) -> float:
        return mle_dimension(distances, unbiased=self.unbiased)


@register_estimator
class TwoNN(IntrinsicDimensionEstimator):
    """TwoNN (Facco et al. 2017).

    Args:
        discard_fraction: fraction of the largest ``T_2/T_1`` ratios dropped (0: only the largest,
            as the paper's code; scikit-dimension's default is 0.1).
    """

    name = "twonn"

    def __init__(self, discard_fraction: float = 0.0, **common):
        super().__init__(**common)
        if not 0.0 <= discard_fraction < 1.0:
            raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction}")
        self.discard_fraction = discard_fraction

    @property
    def neighbours(self) -> int:
        return 2

    def dimension_from_knn(self, distances: torch.Tensor) -> float:
        return twonn_dimension(distances, discard_fraction=self.discard_fraction)


def make_estimator(estimator: str, **options) -> IntrinsicDimensionEstimator:
    """The registered estimator ``estimator`` built with its own ``options``; unknown names or options are a ``ValueError``."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {sorted(ESTIMATORS)}")
    cls = ESTIMATORS[estimator]
    unknown = sorted(set(options) - set(cls.option_names()) - set(cls.COMMON))
    if unknown:
        raise ValueError(
            f"estimator {estimator!r} has no option(s) {unknown}; its options: {', '.join(cls.option_names()) or 'none'}"
        )
    return cls(**options)


def intrinsic_dimension(
    x: torch.Tensor | np.ndarray,
    estimator: str = "mle",
    *,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    progress: bool = False,
    **options,
) -> IntrinsicDimensionResult:
    """Intrinsic dimension of the (N, ...) samples ``x`` (flattened), on x's device.

    Args:
        x: samples; images are flattened, so the result depends on resolution and channels.
        estimator: a registered estimator: ``"mle"`` (paper's d_data) or ``"twonn"`` (paper's d_repr).
        memory_budget_bytes: working memory of the blockwise kNN.
        progress: show a progress bar.
        **options: the estimator's own options (``k``, ``unbiased`` for MLE; ``discard_fraction``
            for TwoNN); an option the estimator does not have is a ``ValueError``.

    Returns:
        ``IntrinsicDimensionResult``; ``float(result)`` is the estimate.
    """
    model = make_estimator(estimator, memory_budget_bytes=memory_budget_bytes, progress=progress, **options)
    return model.fit(x).result_
