"""K_F and d_data of one dataset from one symmetric Gram matrix (paper §2.1, §2.2).

:func:`label_sharpness` and :func:`intrinsic_dimension` each take a Gram matrix of their images:
K_F the cross-label rectangles among ``m`` sampled images, d_data the upper triangle of all N.
The pairs K_F needs are entries of the second, so :func:`dataset_properties` computes the upper
triangle once (``N^2 D`` flops, half of one full ``X @ X.T``) and folds every block into both:

* the kNN candidates of every image (:class:`~lightning_dims.properties.knn.NeighbourCandidates`,
  refined exactly as in :func:`~lightning_dims.properties.knn.knn`) give d_data with the
  registered estimator (``mle``: Levina-Bickel with k = 20, ``twonn``);
* the closest cross-label pairs among the sampled images (the same seeded sample as
  ``label_sharpness(x, y, m, seed=seed)``) are recomputed exactly in float64 and give
  ``K_F = 1 / (smallest distance between different images with different labels)``.

Memory: no copy of the data. When the images sit far from the origin the Gram is taken of
centred rows (for precision, as the kNN does), centred one row panel at a time
(:class:`~lightning_dims.properties.knn.PanelFrame`: two panels of ``N / 8`` rows at once, a
quarter of the data). Measured peak growth at N = 1750, 224 px (``benchmarks/bench_dataset_properties.py``):
0.19x the data without centring, 0.34x with it, against 1.08x and 1.57x for the two separate calls.
Pass float32 or float64 data (other dtypes are converted once, a copy).

The results equal ``label_sharpness(x, y, m, seed=seed)`` and ``intrinsic_dimension(x, estimator,
**options)``: K_F exactly (the same pair, its distance from differences in float64), d_data up to
the float32 Gram's rounding in the unrefined distances (relative 1e-6). Two rare cases take a
second pass: exact duplicate images (dropped with a ``DuplicateSamplesWarning``, then the kNN is
rerun on the distinct ones, as ``intrinsic_dimension`` does) and more than 64 identical
cross-label pairs (K_F is then computed by ``label_sharpness`` itself).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lightning_dims.properties.duplicates import deduplicated_knn
from lightning_dims.properties.intrinsic_dimension import (
    IntrinsicDimensionEstimator,
    IntrinsicDimensionResult,
    make_estimator,
)
from lightning_dims.properties.knn import (
    DEFAULT_MEMORY_BUDGET_BYTES,
    KnnResult,
    NeighbourCandidates,
    PanelFrame,
    as_points,
)
from lightning_dims.properties.label_sharpness import (
    INITIAL_CANDIDATES,
    LabelSharpnessResult,
    PairCandidates,
    class_labels,
    closest_exact_pair,
    cross_label_pair_count,
    label_sharpness,
    sample_indices,
    sharpness_result,
)

__all__ = ["DatasetProperties", "dataset_properties"]


@dataclass(frozen=True)
class DatasetProperties:
    """K_F and d_data of one dataset, as :func:`label_sharpness` and :func:`intrinsic_dimension` report them.

    Attributes:
        label_sharpness: K_F (inverse input units) and its arg-max pair.
        d_data: the intrinsic dimension estimate (unitless) and what it used.
    """

    label_sharpness: LabelSharpnessResult
    d_data: IntrinsicDimensionResult

    def to_dict(self) -> dict:
        return {"label_sharpness": self.label_sharpness.to_dict(), "d_data": self.d_data.to_dict()}


def dataset_properties(
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    m: int | None = 1000,
    estimator: str = "mle",
    *,
    seed: int = 0,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    progress: bool = False,
    **options,
) -> DatasetProperties:
    """K_F (exhaustive, over ``m`` sampled images) and d_data (all N images) from one symmetric Gram.

    Args:
        x: (N, ...) images, flattened; computed on x's device.
        y: (N,) integer class labels (at least two classes).
        m: images K_F compares (the paper's M = 1000; None or >= N: all), drawn with ``seed``.
        estimator: the d_data estimator, ``"mle"`` (paper, ``k=20``) or ``"twonn"``.
        seed: seed of K_F's sample.
        memory_budget_bytes: working memory of the Gram blocks (besides the centred panels).
        progress: show a progress bar over Gram blocks.
        **options: the estimator's own options (``k``, ``unbiased`` for MLE).

    Returns:
        :class:`DatasetProperties`, equal to ``label_sharpness(x, y, m, seed=seed)`` and
        ``intrinsic_dimension(x, estimator, **options)`` (see the module docstring).

    Example::

        props = dataset_properties(x, y, m=1000, k=20)
        float(props.label_sharpness), float(props.d_data)
    """
    model = make_estimator(estimator, memory_budget_bytes=memory_budget_bytes, progress=progress, **options)
    points = as_points(x, name="x", min_points=model.min_samples)
    n = points.shape[0]
    k = model.neighbours
    if n < k + 1:
        raise ValueError(f"{estimator} with {k} neighbours needs at least {k + 1} images, got {n}: lower k or add images")
    labels = class_labels(y, n)
    sample, _ = sample_indices(n, m, seed)
    sampled = torch.zeros(n, dtype=torch.bool)
    sampled[sample] = True
    if torch.unique(labels[sample]).numel() < 2:
        raise ValueError(f"the {sample.numel()} sampled images all have one label; raise m or check the labels")
    sampled, device_labels = sampled.to(points.device), labels.to(points.device)

    frame = PanelFrame(points, memory_budget_bytes)
    neighbours = NeighbourCandidates(n, k, dtype=points.dtype, device=points.device)
    pairs = PairCandidates(n, INITIAL_CANDIDATES, dtype=points.dtype, device=points.device)
    for r0, r1, c0, c1, sq_dist in frame.blocks(progress, desc="K_F and d_data"):
        eligible = (device_labels[r0:r1, None] != device_labels[None, c0:c1]) & sampled[r0:r1, None] & sampled[None, c0:c1]
        if r0 == c0:
            eligible.triu_(1)  # each pair once
        if bool(eligible.any()):
            pairs.fold(r0, c0, torch.where(eligible, sq_dist, torch.inf))
        neighbours.fold(r0, r1, c0, c1, sq_dist)

    return DatasetProperties(
        label_sharpness=_sharpness(x, y, m, seed, points, labels, sample, pairs, memory_budget_bytes, progress),
        d_data=_dimension(model, points, neighbours.result(points, frame.sq_norms)),
    )


def _sharpness(x, y, m, seed, points, labels, sample, pairs, memory_budget_bytes, progress) -> LabelSharpnessResult:
    """K_F from the folded cross-label candidates; ``label_sharpness`` itself when all were identical pairs."""
    rows, cols = pairs.pairs()
    row, col, distance, n_identical = closest_exact_pair(points, rows, cols)
    if row is None and rows.shape[0] == pairs.n_candidates:  # more identical pairs than candidates
        return label_sharpness(x, y, m, seed=seed, memory_budget_bytes=memory_budget_bytes, progress=progress)
    positions = [None if i is None else int(torch.searchsorted(sample, torch.tensor(i))) for i in (row, col)]
    n_pairs = cross_label_pair_count(labels[sample])
    return sharpness_result(sample, labels, *positions, distance, n_pairs, n_identical, mode="exhaustive", seed=seed)


def _dimension(model: IntrinsicDimensionEstimator, points: torch.Tensor, result: KnnResult) -> IntrinsicDimensionResult:
    """The estimate from the kNN of all images; rerun on the distinct images when some are exact duplicates."""
    n_samples = points.shape[0]
    if bool((result.distances == 0).any()):
        result, kept = deduplicated_knn(
            points, model.neighbours, memory_budget_bytes=model.memory_budget_bytes, progress=model.progress
        )
        n_samples = int(kept.shape[0])
    return model.estimate(result.distances, n_samples=n_samples, n_total=int(points.shape[0]))
