"""Exact duplicate samples: find them from kNN results and keep one of each.

Duplicates break kNN estimators (``T_1 = 0`` makes ``log(T_k / T_j)`` infinite; scikit-dimension
then silently reports 0.0). The kNN kernel recomputes near-zero distances exactly, so a
neighbour at distance exactly 0 is an exact duplicate.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from lightning_dims.properties.knn import DEFAULT_MEMORY_BUDGET_BYTES, KnnResult, knn_of_points

__all__ = ["DuplicateSamplesWarning", "deduplicated_knn", "duplicate_groups_root", "label_conflicts"]


class DuplicateSamplesWarning(UserWarning):
    """Exact duplicate samples were dropped before estimating."""


def duplicate_groups_root(n: int, pairs: np.ndarray) -> np.ndarray:
    """For each of ``n`` items, the smallest index of its group under the given equal pairs.

    ``pairs`` is an (P, 2) integer array of items known to be identical; groups are the
    connected components (union-find with path halving).
    """
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(i) for i in range(n)])


def deduplicated_knn(
    points: torch.Tensor,
    k: int,
    *,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    progress: bool = False,
    warn: bool = True,
) -> tuple[KnnResult, torch.Tensor]:
    """kNN over the distinct samples of ``points`` (N, D), as returned by ``as_points``.

    Returns the kNN result over the kept samples and the (N_kept,) indices of the kept samples
    into ``points`` (the first of each group of exact duplicates). Warns with the count when
    any were dropped. Raises ``ValueError`` when fewer than ``k + 1`` distinct samples remain.
    """
    n_total = points.shape[0]
    kept = torch.arange(n_total, device=points.device)
    while True:
        if kept.shape[0] < k + 1:
            raise ValueError(
                f"k={k} neighbours need at least {k + 1} distinct samples; got {kept.shape[0]} distinct "
                f"of {n_total} ({n_total - kept.shape[0]} exact duplicates): lower k or add samples"
            )
        subset = points if kept.shape[0] == n_total else points[kept]
        result = knn_of_points(subset, k, memory_budget_bytes=memory_budget_bytes, progress=progress)
        zero = result.distances == 0
        if not bool(zero.any()):
            break
        rows = torch.nonzero(zero)[:, 0]
        pairs = torch.stack([rows, result.indices[zero]], dim=1).cpu().numpy()
        roots = duplicate_groups_root(kept.shape[0], pairs)
        kept = kept[torch.from_numpy(roots == np.arange(kept.shape[0])).to(kept.device)]
    n_dropped = n_total - kept.shape[0]
    if n_dropped and warn:
        warnings.warn(
            f"dropped {n_dropped} exact duplicate samples of {n_total} (kept one of each); "
            f"the estimate uses {kept.shape[0]} distinct samples",
            DuplicateSamplesWarning,
            stacklevel=3,
        )
    return result, kept


def label_conflicts(x: torch.Tensor, y: torch.Tensor) -> list[tuple[int, int]]:
    """Pairs ``(i, j)``, ``i < j``, of exactly identical samples with different labels.

    Such a pair makes K_F undefined (the distance is 0), so :func:`label_sharpness` skips it; it is
    almost always a data error (one image filed under two classes). Each conflicting sample is
    paired with the first sample of its group that carries another label.
    """
    rows = x.reshape(x.shape[0], -1).detach().to("cpu").contiguous()
    labels = y.detach().to("cpu").reshape(-1).tolist()
    groups: dict[bytes, list[int]] = {}
    for index in range(rows.shape[0]):
        groups.setdefault(rows[index].numpy().tobytes(), []).append(index)
    pairs = []
    for members in groups.values():
        for j in members[1:]:
            i = next((i for i in members if i < j and labels[i] != labels[j]), None)
            if i is not None:
                pairs.append((i, j))
    return sorted(pairs)
