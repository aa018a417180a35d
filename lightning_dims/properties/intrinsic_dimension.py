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

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from lightning_dims.properties.duplicates import deduplicated_knn
from lightning_dims.properties.knn import DEFAULT_MEMORY_BUDGET_BYTES, as_points


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


class IntrinsicDimensionEstimator:
    """Base of the kNN estimators: ``Estimator(**options).fit(X)`` sets ``dimension_`` and ``result_``."""

    name: ClassVar[str]
    min_samples: ClassVar[int] = 3

    def __init__(self, *, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES, progress: bool = False):
        self.memory_budget_bytes = memory_budget_bytes
        self.progress = progress

    @property
    def neighbours(self) -> int:
        raise NotImplementedError

    @classmethod
    def from_options(
        cls, *, k: int, unbiased: bool, discard_fraction: float, **common
    ) -> "IntrinsicDimensionEstimator":
        """Build from the union of all estimators' options, taking the ones this estimator uses."""
        raise NotImplementedError

    def options(self) -> dict:
        return {}

    def dimension_from_knn(self, distances: torch.Tensor) -> float:
        raise NotImplementedError

    def fit(self, X: torch.Tensor | np.ndarray, y=None) -> "IntrinsicDimensionEstimator":
        points = as_points(X, name="X", min_points=self.min_samples)
        result, kept = deduplicated_knn(
            points, self.neighbours, memory_budget_bytes=self.memory_budget_bytes, progress=self.progress
        )
        dimension = self.dimension_from_knn(result.distances)
        self.result_ = IntrinsicDimensionResult(
            dimension=float(dimension),
            estimator=self.name,
            k=self.neighbours,
            n_samples=int(kept.shape[0]),
            n_duplicates=int(points.shape[0] - kept.shape[0]),
            options=self.options(),
        )
        self.dimension_ = self.result_.dimension
        return self


ESTIMATORS: dict[str, type[IntrinsicDimensionEstimator]] = {}


def register_estimator(cls: type[IntrinsicDimensionEstimator]) -> type[IntrinsicDimensionEstimator]:
    """Class decorator: make an estimator available by its ``name``."""
    ESTIMATORS[cls.name] = cls
    return cls


@register_estimator
class MLE(IntrinsicDimensionEstimator):
    """Levina-Bickel MLE, MacKay-Ghahramani averaging; ``unbiased`` selects the (k-2) normaliser."""

    name = "mle"

    def __init__(self, k: int = 20, unbiased: bool = True, **kwargs):
        super().__init__(**kwargs)
        if k < 3:
            raise ValueError(f"MLE needs k >= 3 neighbours (the unbiased form divides by k - 2), got k={k}")
        self.k = k
        self.unbiased = unbiased

    @classmethod
    def from_options(cls, *, k: int, unbiased: bool, discard_fraction: float, **common) -> "MLE":
        return cls(k=k, unbiased=unbiased, **common)

    @property
    def neighbours(self) -> int:
        return self.k

    def options(self) -> dict:
        return {"unbiased": self.unbiased}

    def dimension_from_knn(self, distances: torch.Tensor) -> float:
        return mle_dimension(distances, unbiased=self.unbiased)


@register_estimator
class TwoNN(IntrinsicDimensionEstimator):
    """TwoNN (Facco et al. 2017); ``discard_fraction`` of the largest ratios dropped (0: only the largest)."""

    name = "twonn"

    def __init__(self, discard_fraction: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= discard_fraction < 1.0:
            raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction}")
        self.discard_fraction = discard_fraction

    @classmethod
    def from_options(cls, *, k: int, unbiased: bool, discard_fraction: float, **common) -> "TwoNN":
        return cls(discard_fraction=discard_fraction, **common)

    @property
    def neighbours(self) -> int:
        return 2

    def options(self) -> dict:
        return {"discard_fraction": self.discard_fraction}

    def dimension_from_knn(self, distances: torch.Tensor) -> float:
        return twonn_dimension(distances, discard_fraction=self.discard_fraction)


def intrinsic_dimension(
    x: torch.Tensor | np.ndarray,
    estimator: str = "mle",
    k: int = 20,
    unbiased: bool = True,
    *,
    discard_fraction: float = 0.0,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    progress: bool = False,
) -> IntrinsicDimensionResult:
    """Intrinsic dimension of the (N, ...) samples ``x`` (flattened), on x's device.

    Args:
        x: samples; images are flattened, so the result depends on resolution and channels.
        estimator: ``"mle"`` (paper's d_data, k = 20) or ``"twonn"`` (paper's d_repr).
        k: MLE neighbours (ignored by TwoNN, which always uses 2).
        unbiased: MLE normaliser ``k - 2`` (True, the paper's) or ``k - 1``.
        discard_fraction: TwoNN fraction of the largest ``T_2/T_1`` ratios to drop (0: only the largest).
        memory_budget_bytes: working memory of the blockwise kNN.
        progress: show a progress bar.

    Returns:
        ``IntrinsicDimensionResult``; ``float(result)`` is the estimate.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; choose one of {sorted(ESTIMATORS)}")
    model = ESTIMATORS[estimator].from_options(
        k=k,
        unbiased=unbiased,
        discard_fraction=discard_fraction,
        memory_budget_bytes=memory_budget_bytes,
        progress=progress,
    )
    return model.fit(x).result_
