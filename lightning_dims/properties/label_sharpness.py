"""Label sharpness K_F (Konz & Mazurowski 2024, Eq. 1), binary and multiclass alike.

``K_F = max over pairs (j, k) with x_j != x_k of 1[y_j != y_k] / ||x_j - x_k||_2``
      ``= 1 / (smallest distance between two different images with different labels)``

among ``m`` images sampled from the dataset. Units: inverse input units (images flattened), so
scaling intensities by ``c`` gives ``K_F / c``, replicating a gray image into ``c`` channels
gives ``K_F / sqrt(c)``; only compare values computed under one preprocessing spec.

Modes:

* ``exhaustive`` (default): every cross-label pair among the ``m`` samples, each computed once:
  with the samples sorted by label the cross-label pairs are the rectangles between a class and
  the later ones, taken as Gram blocks (GEMMs, never an m x m x D tensor; same-label pairs and the
  lower triangle are skipped, so ``(m^2 - sum_c m_c^2) D`` flops, half a full GEMM or less); the
  closest candidates are recomputed exactly in float64. Among pairs at exactly the smallest
  distance the first in (row, col) order of the sampled images is reported.
* ``paper``: the authors' sampler, two independently shuffled passes over the ``m`` samples in
  batches of ``batch_size`` comparing only batch-aligned pairs (``m^2 / batch_size`` pairs, 2,000
  at m = 1000), with the correct ``!=`` indicator. Lower and noisier than ``exhaustive``.

The authors' released function used ``y_j == y_k`` for multiclass labels (and took that branch
for every dataset); it returns ``1 / smallest same-label distance``. Not reproduced here.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from lightning_dims.properties.knn import (
    DEFAULT_MEMORY_BUDGET_BYTES,
    as_points,
    block_side,
    exact_distances,
    gram_blocks,
    gram_frame,
)

__all__ = [
    "INITIAL_CANDIDATES",
    "MODES",
    "LabelSharpnessResult",
    "PairCandidates",
    "as_labels",
    "class_labels",
    "closest_cross_label_candidates",
    "closest_exact_pair",
    "cross_label_blocks",
    "cross_label_pair_count",
    "exhaustive_pairs",
    "label_sharpness",
    "paper_pairs",
    "sample_indices",
    "sharpness_result",
]

MODES = ("exhaustive", "paper")

INITIAL_CANDIDATES = 64
"""Closest Gram pairs recomputed exactly in exhaustive mode (grown while all are identical images)."""


@dataclass(frozen=True)
class LabelSharpnessResult:
    """K_F and the pair that attains it. ``float(result)`` is K_F.

    Attributes:
        value: K_F in inverse input units (0.0 when no two different images with different
            labels were compared).
        mode: ``exhaustive`` or ``paper``.
        m: images sampled and compared.
        n_pairs: cross-label pairs compared.
        n_identical_pairs: cross-label pairs skipped because the two images are identical.
        pair: indices into the caller's ``x`` of the arg-max pair (None when value is 0).
        pair_labels: their labels.
        pair_distance: their Euclidean distance (``1 / value``).
        seed: seed of the sampling.
    """

    value: float
    mode: str
    m: int
    n_pairs: int
    n_identical_pairs: int
    pair: tuple[int, int] | None
    pair_labels: tuple[int, int] | None
    pair_distance: float
    seed: int

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict:
        return {
            "value": self.value,
            "mode": self.mode,
            "m": self.m,
            "n_pairs": self.n_pairs,
            "n_identical_pairs": self.n_identical_pairs,
            "pair": list(self.pair) if self.pair else None,
            "pair_labels": list(self.pair_labels) if self.pair_labels else None,
            "pair_distance": self.pair_distance,
            "seed": self.seed,
        }


def as_labels(y: torch.Tensor | np.ndarray, n: int) -> torch.Tensor:
    """(N,) integer class labels; a (N, 1) column is accepted (MedMNIST stores labels that way)."""
    labels = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"y must hold one class label per sample: expected shape ({n},), got {tuple(labels.shape)}")
    if labels.is_floating_point():
        if not bool((labels == labels.round()).all()):
            raise ValueError("y must hold class labels (integers); got non-integer values")
        labels = labels.round()
    return labels.to(torch.int64)


def cross_label_blocks(counts: list[int], side: int) -> list[tuple[int, int, int, int]]:
    """``(r0, r1, c0, c1)`` blocks covering every cross-label pair once, for samples sorted by label.

    ``counts`` are the class sizes in sorted order; class ``c``'s rows ``[s_c, e_c)`` meet the
    columns of all later classes ``[e_c, N)``: the same-label squares on the diagonal and the whole
    lower triangle are never computed.
    """
    blocks, start = [], 0
    n = sum(counts)
    for count in counts:
        stop = start + count
        rows = range(start, stop, side)
        blocks += [(a, min(a + side, stop), b, min(b + side, n)) for a in rows for b in range(stop, n, side)]
        start = stop
    return blocks


class PairCandidates:
    """The ``n_candidates`` pairs with the smallest squared Gram distance seen so far, each pair once.

    :meth:`fold` takes a block whose entries are ``inf`` wherever the pair is not eligible (same
    label, lower triangle, not sampled); pairs are kept as flat indices ``row * n + col``.
    """

    def __init__(self, n: int, n_candidates: int, *, dtype: torch.dtype, device: torch.device):
        self.n = n
        self.n_candidates = n_candidates
        self.best_sq = torch.empty(0, dtype=dtype, device=device)
        self.best_flat = torch.empty(0, dtype=torch.int64, device=device)

    def fold(self, r0: int, c0: int, sq_dist: torch.Tensor) -> None:
        values, positions = torch.topk(sq_dist.reshape(-1), min(self.n_candidates, sq_dist.numel()), largest=False)
        keep = torch.isfinite(values)
        values, positions = values[keep], positions[keep]
        rows, cols = r0 + positions // sq_dist.shape[1], c0 + positions % sq_dist.shape[1]
        self.best_sq = torch.cat([self.best_sq, values])
        self.best_flat = torch.cat([self.best_flat, rows * self.n + cols])
        if self.best_sq.shape[0] > self.n_candidates:
            self.best_sq, keep = torch.topk(self.best_sq, self.n_candidates, largest=False)
            self.best_flat = self.best_flat[keep]

    def pairs(self, order: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, cols) with rows < cols, sorted by (row, col); ``order`` maps folded positions to indices."""
        first, second = self.best_flat // self.n, self.best_flat % self.n
        if order is not None:
            first, second = order[first], order[second]
        rows, cols = torch.minimum(first, second), torch.maximum(first, second)
        key = torch.argsort(rows * self.n + cols)
        return rows[key], cols[key]


def closest_cross_label_candidates(
    points: torch.Tensor, labels: torch.Tensor, n_candidates: int, memory_budget_bytes: int, progress: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n_candidates`` cross-label pairs with the smallest Gram distance, each pair once.

    Works on a copy of the points sorted by label, so that the cross-label pairs form rectangles
    (``cross_label_blocks``): ``(N^2 - sum_c N_c^2) / 2`` pairs, ``(N^2 - sum_c N_c^2) D`` flops.
    Returns (rows, cols) indices into ``points`` with rows < cols, sorted by (row, col);
    fewer pairs when fewer cross-label pairs exist.
    """
    order = torch.argsort(labels, stable=True)
    counts = [int(c) for c in torch.unique_consecutive(labels[order], return_counts=True)[1]]
    frame, sq_norms = gram_frame(points[order])
    side = block_side(frame.element_size(), memory_budget_bytes)
    candidates = PairCandidates(points.shape[0], n_candidates, dtype=frame.dtype, device=points.device)
    for r0, _, c0, _, sq_dist in gram_blocks(frame, sq_norms, cross_label_blocks(counts, side), progress, "K_F"):
        candidates.fold(r0, c0, sq_dist)
    return candidates.pairs(order)


def closest_exact_pair(points: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> tuple[int | None, int | None, float, int]:
    """Among candidate pairs (sorted by (row, col)), the closest pair of different points, exactly.

    Returns (row, col, distance, n_identical) from :func:`exact_distances`; among equally close
    pairs the first; row/col None (distance inf) when every candidate is a pair of identical points.
    """
    distances = exact_distances(points, rows, cols)
    different = distances > 0
    n_identical = int((~different).sum())
    if not bool(different.any()):
        return None, None, math.inf, n_identical
    best = int(torch.argmin(torch.where(different, distances, math.inf)))
    return int(rows[best]), int(cols[best]), float(distances[best]), n_identical


def exhaustive_pairs(points: torch.Tensor, labels: torch.Tensor, memory_budget_bytes: int, progress: bool = False):
    """Closest pair of different images with different labels over all pairs.

    Returns (row, col, distance, n_identical) with row/col None when no such pair exists.
    """
    n_candidates = INITIAL_CANDIDATES
    while True:
        rows, cols = closest_cross_label_candidates(points, labels, n_candidates, memory_budget_bytes, progress)
        row, col, distance, n_identical = closest_exact_pair(points, rows, cols)
        if row is not None or rows.shape[0] < n_candidates:  # found, or every cross-label pair was a candidate
            return row, col, distance, n_identical
        n_candidates *= 4


def class_labels(y: torch.Tensor | np.ndarray, n: int) -> torch.Tensor:
    """:func:`as_labels`, refusing labels of fewer than two classes (K_F compares differently labelled pairs)."""
    labels = as_labels(y, n)
    classes = torch.unique(labels)
    if classes.numel() < 2:
        raise ValueError(
            f"K_F needs samples of at least two classes; y has only class {classes.tolist()}: "
            "check the labels or the class selection"
        )
    return labels


def sample_indices(n: int, m: int | None, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted indices of the ``m`` images K_F compares (all when ``m`` is None or >= n), and the
    generator seeded with ``seed`` after drawing them (the paper mode shuffles with it next)."""
    generator = torch.Generator().manual_seed(seed)
    if m is None or m >= n:
        return torch.arange(n), generator
    if m < 2:
        raise ValueError(f"m={m}: K_F compares pairs, so m must be at least 2")
    return torch.sort(torch.randperm(n, generator=generator)[:m]).values, generator


def cross_label_pair_count(labels: torch.Tensor) -> int:
    """Pairs of differently labelled samples among ``labels``: ``(m^2 - sum_c m_c^2) / 2``."""
    counts = torch.bincount(labels - labels.min())
    return int((labels.numel() ** 2 - int((counts * counts).sum())) // 2)


def sharpness_result(
    sample: torch.Tensor,
    labels: torch.Tensor,
    row: int | None,
    col: int | None,
    distance: float,
    n_pairs: int,
    n_identical: int,
    *,
    mode: str,
    seed: int,
) -> LabelSharpnessResult:
    """The result for the closest pair at positions ``row``, ``col`` of ``sample`` (None: no pair, K_F 0 with a warning)."""
    if row is None:
        warnings.warn(
            f"no two different images with different labels among the {sample.numel()} sampled "
            f"({mode} mode, {n_pairs} cross-label pairs, {n_identical} identical): K_F is reported as 0",
            stacklevel=3,
        )
        pair = pair_labels = None
        value = 0.0
    else:
        pair = (int(sample[row]), int(sample[col]))
        pair_labels = (int(labels[pair[0]]), int(labels[pair[1]]))
        value = 1.0 / distance
    return LabelSharpnessResult(
        value=value,
        mode=mode,
        m=int(sample.numel()),
        n_pairs=n_pairs,
        n_identical_pairs=n_identical,
        pair=pair,
        pair_labels=pair_labels,
        pair_distance=distance,
        seed=seed,
    )


def paper_pairs(labels: torch.Tensor, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' batch-aligned pairs: two shuffles of the samples, batch against batch, aligned."""
    m = labels.shape[0]
    first = torch.randperm(m, generator=generator)
    second = torch.randperm(m, generator=generator)
    rows, cols = [], []
    for a in range(0, m, batch_size):
        for b in range(0, m, batch_size):
            size = min(batch_size, m - a, m - b)
            rows.append(first[a : a + size])
            cols.append(second[b : b + size])
    return torch.cat(rows), torch.cat(cols)


def label_sharpness(
    x: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    m: int | None = 1000,
    mode: str = "exhaustive",
    seed: int = 0,
    *,
    batch_size: int = 500,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    progress: bool = False,
) -> LabelSharpnessResult:
    """Label sharpness K_F of images ``x`` (N, ...) with class labels ``y`` (N,).

    Args:
        x: samples (flattened); computed on x's device.
        y: integer class labels, any number of classes (at least two).
        m: images sampled without replacement (the paper's M = 1000); None or >= N uses all.
        mode: ``exhaustive`` (all cross-label pairs among the m) or ``paper`` (2,000 aligned pairs).
        seed: seed of the sampling (and of the paper mode's shuffles).
        batch_size: the paper mode's loader batch size (500 in the authors' code).
        memory_budget_bytes: working memory of the blockwise Gram step.
        progress: show a progress bar over Gram blocks (exhaustive mode).

    Returns:
        ``LabelSharpnessResult``; ``float(result)`` is K_F in inverse input units.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODES}")
    n = int(x.shape[0])
    labels = class_labels(y, n)
    sample, generator = sample_indices(n, m, seed)
    index = sample.numpy() if isinstance(x, np.ndarray) else sample.to(x.device)
    points = as_points(x[index], name="x", min_points=2)
    sampled_labels = labels[sample].to(points.device)
    if torch.unique(sampled_labels).numel() < 2:
        raise ValueError(f"the {sample.numel()} sampled images all have one label; raise m or check the labels")

    if mode == "exhaustive":
        n_pairs = cross_label_pair_count(sampled_labels)
        row, col, distance, n_identical = exhaustive_pairs(points, sampled_labels, memory_budget_bytes, progress)
    else:
        rows, cols = paper_pairs(sampled_labels.cpu(), batch_size, generator)
        rows, cols = rows.to(points.device), cols.to(points.device)
        cross = sampled_labels[rows] != sampled_labels[cols]
        rows, cols = rows[cross], cols[cross]
        distances = exact_distances(points, rows, cols)
        n_pairs, n_identical = int(cross.sum()), int((distances == 0).sum())
        distances = torch.where(distances > 0, distances, math.inf)
        if rows.numel() and bool(torch.isfinite(distances).any()):
            best = int(torch.argmin(distances))
            row, col, distance = int(rows[best]), int(cols[best]), float(distances[best])
        else:
            row, col, distance = None, None, math.inf

    return sharpness_result(sample, labels, row, col, distance, n_pairs, n_identical, mode=mode, seed=seed)
