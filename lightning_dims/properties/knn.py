"""Exact k-nearest-neighbour distances in torch, blockwise, on whatever device the data is on.

Squared Euclidean distances come from the Gram matrix,
``||a - b||^2 = ||a||^2 + ||b||^2 - 2 <a, b>``, in square blocks of at most ``side`` rows, so the
working memory stays under ``memory_budget_bytes`` (the data, and a centred copy when one is made,
are not counted). The Gram runs in the data's precision (float32 for images, float64 when the
caller passes float64), which is where the time goes, and each pair is computed once: only blocks
on or above the diagonal, the diagonal ones by a symmetric rank-k update (BLAS ``syrk`` on the CPU,
row panels of GEMMs elsewhere), so about ``N^2 D`` flops, half a full GEMM's ``2 N^2 D``. Each
off-diagonal block serves its rows and, transposed, its columns; each diagonal block is mirrored
into a full symmetric square, which serves its rows.

Precision. A float32 Gram distance has an absolute error of order ``eps * (||a||^2 + ||b||^2)``,
so it is only trustworthy for pairs that are not much closer than the points' norms. Two things
keep that error small and harmless:

* when the data sit far from the origin (squared norm of the mean larger than the mean squared
  spread) the points are centred first, which shrinks the norms without changing any distance;
* every selected pair with ``d^2 < REFINE_BELOW * (||a||^2 + ||b||^2)`` is recomputed exactly,
  from the difference ``a - b`` in float64. Exact duplicates therefore come out as exactly 0,
  and near-duplicates (the pairs that decide K_F) are exact.

The other kNN distances keep the float32 Gram's rounding, a relative error of order 1e-6 for
typical images, and the MLE inherits it. Measured with ``benchmarks/bench_estimators.py`` (MLE,
k = 20, N = 1750, 224 px, float32 input against the same computed on float64 input):
1.8e-6 relative on MNIST (1 channel, not centred) and 7.5e-6 on three FashionMNIST images
stacked as R, G, B (``--rgb-like``, D = 150,528, centred). Pass float64 input for the exact value
(about twice the time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "BLOCK_WORKSPACE",
    "CANDIDATE_MARGIN",
    "CENTRED_PANELS",
    "DEFAULT_MEMORY_BUDGET_BYTES",
    "EXACT_CHUNK_BYTES",
    "MIN_PANELS",
    "MIN_PANEL_ROWS",
    "REFINE_BELOW",
    "KnnResult",
    "NeighbourCandidates",
    "PanelFrame",
    "as_points",
    "block_side",
    "block_sq_distances",
    "centring_mean",
    "exact_distances",
    "fold_candidates",
    "gram_blocks",
    "gram_frame",
    "knn",
    "knn_of_points",
    "panel_gram",
    "refine_squared_distances",
    "rows_per_block",
    "smallest_along",
    "symmetric_gram",
    "syrk_gram",
    "upper_blocks",
    "with_progress",
]

DEFAULT_MEMORY_BUDGET_BYTES = 512 * 2**20
"""Working memory the blockwise kernels may use beyond the data (512 MiB)."""

REFINE_BELOW = 1e-2
"""Pairs with ``d^2 < REFINE_BELOW * (||a||^2 + ||b||^2)`` get their distance recomputed exactly."""

EXACT_CHUNK_BYTES = 4 * 2**20
"""Size of one chunk of row differences in ``exact_distances`` (cache-sized: larger is slower)."""

BLOCK_WORKSPACE = 4
"""Block-sized arrays alive at once (the Gram block, its mirrored copy, top-k buffers)."""

MIN_PANELS = 8
"""Row panels per diagonal block when no BLAS syrk is at hand (GPU): the upper triangle then costs
``1/2 + 1/(2 * panels)`` of the block's full GEMM (56% at 8 panels)."""

MIN_PANEL_ROWS = 128
"""Fewest rows of such a panel (thinner GEMMs lose more efficiency than the triangle saves)."""

CENTRED_PANELS = 8
"""Row panels of a block-wise centred Gram (:class:`PanelFrame`): two at once are a quarter of the data."""

CANDIDATE_MARGIN = 4
"""Extra Gram candidates per point, so that re-ranking after exact refinement stays exact."""


@dataclass(frozen=True)
class KnnResult:
    """Distances and indices of each point's k nearest other points.

    Attributes:
        distances: (N, k) float64 Euclidean distances in the input's units, ascending per row.
        indices: (N, k) int64 indices of the neighbours (the point itself is never included).
    """

    distances: torch.Tensor
    indices: torch.Tensor


def as_points(x: torch.Tensor | np.ndarray, *, name: str = "x", min_points: int = 1) -> torch.Tensor:
    """Return ``x`` as a contiguous (N, D) floating tensor, each sample flattened.

    Integer and half-precision inputs become float32; float32 and float64 stay as they are.
    Raises ``ValueError`` naming the fix for malformed, too small or non-finite input.
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy.ndarray, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}: pass an (N, ...) array of N samples "
            "(for N one-dimensional points use x.reshape(-1, 1))"
        )
    if x.shape[0] < min_points:
        raise ValueError(f"{name} has {x.shape[0]} samples; at least {min_points} are needed")
    points = x.reshape(x.shape[0], -1)
    if points.shape[1] == 0:
        raise ValueError(f"{name} has samples of size 0 (shape {tuple(x.shape)})")
    if points.dtype not in (torch.float32, torch.float64):
        points = points.to(torch.float32)
    # One cheap reduction: any NaN/inf makes its row sum non-finite (a huge finite row can
    # overflow the sum too, so the exact per-element check runs only to confirm).
    if not bool(torch.isfinite(points.sum(dim=1)).all()):
        finite = torch.isfinite(points).all(dim=1)
        if not bool(finite.all()):
            raise ValueError(
                f"{name} contains NaN or inf values in {int((~finite).sum())} of {points.shape[0]} samples; "
                "remove or impute those samples first"
            )
    return points.contiguous()


def rows_per_block(bytes_per_row: int, memory_budget_bytes: int) -> int:
    """How many rows of ``bytes_per_row`` each fit in the budget (at least 1)."""
    return max(1, int(memory_budget_bytes // max(1, bytes_per_row)))


def gram_frame(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Points to take Gram products of, and their squared norms.

    Centres the points (a copy) only when :func:`centring_mean` says so, since centring costs a
    pass over memory and buys precision only when the mean is far from the origin.
    """
    sq_norms = torch.linalg.vector_norm(points, dim=1) ** 2
    mean = centring_mean(points, sq_norms)
    if mean is not None:
        points = points - mean
        sq_norms = torch.linalg.vector_norm(points, dim=1) ** 2
    return points, sq_norms


def centring_mean(points: torch.Tensor, sq_norms: torch.Tensor) -> torch.Tensor | None:
    """The points' mean when the squared norm of the mean exceeds the mean squared spread, else None.

    The mean is a matrix-vector product (a BLAS GEMV, twice as fast as a column-wise reduction).
    """
    mean = (torch.ones(points.shape[0], dtype=points.dtype, device=points.device) @ points) / points.shape[0]
    mean_sq = float(mean.double().pow(2).sum())
    spread = float(sq_norms.double().mean()) - mean_sq
    return mean if mean_sq > spread else None


class PanelFrame:
    """The points as row panels for Gram blocks, centred panel by panel: never a full centred copy.

    The same centring decision and mean as :func:`gram_frame` (:func:`centring_mean`), so the
    panels hold exactly the rows of ``gram_frame``'s copy. When centring, blocks are at most
    ``ceil(N / CENTRED_PANELS)`` rows and two centred panels (a row and a column panel) exist at
    once: ``2 / CENTRED_PANELS`` of the data (a quarter). Without centring a panel is a view.
    """

    def __init__(self, points: torch.Tensor, memory_budget_bytes: int):
        self.points = points
        self.mean = centring_mean(points, torch.linalg.vector_norm(points, dim=1) ** 2)
        n = points.shape[0]
        self.side = block_side(points.element_size(), memory_budget_bytes)
        if self.mean is not None:
            self.side = min(self.side, math.ceil(n / CENTRED_PANELS))
        self.sq_norms = torch.cat(
            [torch.linalg.vector_norm(self.panel(r0, min(r0 + self.side, n)), dim=1) ** 2 for r0 in range(0, n, self.side)]
        )

    def panel(self, r0: int, r1: int) -> torch.Tensor:
        """Rows ``r0:r1`` in the frame (centred copy, or a view)."""
        rows = self.points[r0:r1]
        return rows - self.mean if self.mean is not None else rows

    def blocks(self, progress: bool = False, desc: str = "Gram"):
        """:func:`gram_blocks` over :func:`upper_blocks`, each row panel centred once, each column panel per block."""
        row_panel, row_span = None, None
        for r0, r1, c0, c1 in with_progress(upper_blocks(self.points.shape[0], self.side), progress, desc):
            if row_span != (r0, r1):
                row_panel = None  # free the last row panel before centring the next
                row_panel, row_span = self.panel(r0, r1), (r0, r1)
            cols = None if (r0, r1) == (c0, c1) else self.panel(c0, c1)
            yield r0, r1, c0, c1, block_sq_distances(row_panel, cols, self.sq_norms[r0:r1], self.sq_norms[c0:c1])


def exact_distances(points: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``||points[rows] - points[cols]||`` for paired index vectors, from differences, as float64.

    The difference is taken in the points' precision (exact per component up to one rounding,
    exactly 0 for identical points) and accumulated in float64: no Gram cancellation. Works in
    small chunks that stay in cache, so it costs about one read of the rows involved.
    """
    out = torch.empty(rows.shape[0], dtype=torch.float64, device=points.device)
    chunk = rows_per_block(points.shape[1] * points.element_size(), EXACT_CHUNK_BYTES)
    for start in range(0, rows.shape[0], chunk):
        r, c = rows[start : start + chunk], cols[start : start + chunk]
        out[start : start + chunk] = torch.linalg.vector_norm(points[r] - points[c], dim=1, dtype=torch.float64)
    return out


def refine_squared_distances(
    sq_dist: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    points: torch.Tensor,
    sq_norms: torch.Tensor,
) -> torch.Tensor:
    """Float64 squared distances for (row, col) pairs, recomputing the untrustworthy ones exactly.

    ``sq_dist`` holds the Gram estimates for the pairs (any shape, matching ``rows``/``cols``).
    """
    refined = sq_dist.to(torch.float64).clamp_min(0.0)
    suspect = sq_dist < REFINE_BELOW * (sq_norms[rows] + sq_norms[cols])
    if bool(suspect.any()):
        refined[suspect] = exact_distances(points, rows[suspect], cols[suspect]) ** 2
    return refined


def block_side(element_size: int, memory_budget_bytes: int) -> int:
    """Side of the square Gram blocks: ``BLOCK_WORKSPACE`` such blocks fit in the budget."""
    return max(1, math.isqrt(max(1, memory_budget_bytes // (element_size * BLOCK_WORKSPACE))))


def upper_blocks(n: int, side: int) -> list[tuple[int, int, int, int]]:
    """``(r0, r1, c0, c1)`` square blocks covering the upper triangle of an n x n Gram, diagonal included."""
    return [(a, min(a + side, n), b, min(b + side, n)) for a in range(0, n, side) for b in range(a, n, side)]


def syrk_gram(a: torch.Tensor) -> torch.Tensor:
    """Upper triangle of ``a @ a.T`` for CPU (s, D) rows by BLAS ``syrk`` (scipy's, run on torch's
    thread count): half a GEMM's flops at about a GEMM's efficiency. The lower triangle is garbage."""
    from scipy.linalg import blas
    from threadpoolctl import threadpool_limits

    syrk = blas.ssyrk if a.dtype == torch.float32 else blas.dsyrk
    with threadpool_limits(limits=torch.get_num_threads(), user_api="blas"):
        # a.numpy().T is a Fortran-ordered (D, s) view (no copy); trans=1 gives its transpose times it.
        return torch.from_numpy(syrk(1.0, a.detach().contiguous().numpy().T, trans=1, lower=0))


def panel_gram(a: torch.Tensor) -> torch.Tensor:
    """Upper triangle of ``a @ a.T`` in row panels of GEMMs (for devices without a torch syrk):
    ``MIN_PANELS`` panels of at least ``MIN_PANEL_ROWS`` rows, each from its own diagonal to the
    end, so about ``1/2 + 1/(2 MIN_PANELS)`` of the full product. The lower triangle is garbage."""
    s = a.shape[0]
    height = min(s, max(MIN_PANEL_ROWS, math.ceil(s / MIN_PANELS)))
    upper = torch.empty((s, s), dtype=a.dtype, device=a.device)
    for r0 in range(0, s, height):
        upper[r0 : r0 + height, r0:] = a[r0 : r0 + height] @ a[r0:].T
    return upper


def symmetric_gram(a: torch.Tensor) -> torch.Tensor:
    """``a @ a.T`` for (s, D) rows, each pair's product computed once, as the full (s, s) matrix.

    The upper triangle comes from :func:`syrk_gram` on the CPU, :func:`panel_gram` elsewhere;
    the lower one is mirrored from it, so the result is exactly symmetric.
    """
    upper = syrk_gram(a) if a.device.type == "cpu" else panel_gram(a)
    on_or_above_diagonal = torch.ones(upper.shape, dtype=torch.bool, device=upper.device).triu_()
    return torch.where(on_or_above_diagonal, upper, upper.T)


def gram_blocks(frame: torch.Tensor, sq_norms: torch.Tensor, blocks, progress: bool = False, desc: str = "Gram"):
    """Yield ``(r0, r1, c0, c1, sq_dist)`` for each block ``(r0, r1, c0, c1)``.

    ``sq_dist[a, b] = ||frame[r0 + a] - frame[c0 + b]||^2`` from the Gram product
    (``||a||^2 + ||b||^2 - 2 <a, b>``), in the frame's precision. A diagonal block
    (``r0, r1 == c0, c1``) comes from :func:`symmetric_gram` (``(r1 - r0)^2 D`` flops), any other
    from one GEMM (``2 (r1 - r0) (c1 - c0) D`` flops). Self-distances are not masked.
    """
    for r0, r1, c0, c1 in with_progress(blocks, progress, desc):
        cols = None if (r0, r1) == (c0, c1) else frame[c0:c1]
        yield r0, r1, c0, c1, block_sq_distances(frame[r0:r1], cols, sq_norms[r0:r1], sq_norms[c0:c1])


def with_progress(blocks, progress: bool, desc: str):
    """``blocks``, under a tqdm progress bar when ``progress``."""
    if not progress:
        return blocks
    from tqdm.auto import tqdm

    return tqdm(blocks, desc=desc, unit="block")


def block_sq_distances(
    rows: torch.Tensor, cols: torch.Tensor | None, row_sq_norms: torch.Tensor, col_sq_norms: torch.Tensor
) -> torch.Tensor:
    """Squared Gram distances ``||a||^2 + ||b||^2 - 2 <a, b>`` between ``rows`` and ``cols``, in their precision.

    ``cols=None`` is a diagonal block: :func:`symmetric_gram` (``s^2 D`` flops); otherwise one GEMM.
    """
    sq_dist = symmetric_gram(rows) if cols is None else rows @ cols.T
    return sq_dist.mul_(-2.0).add_(col_sq_norms[None, :]).add_(row_sq_norms[:, None])


def smallest_along(sq_dist: torch.Tensor, count: int, dim: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` smallest entries of each row (``dim=1``) or column (``dim=0``) of a block, as
    ``(values, indices)`` with one row per block row or column; indices are shifted by ``offset``."""
    values, positions = torch.topk(sq_dist, min(count, sq_dist.shape[dim]), dim=dim, largest=False, sorted=False)
    if dim == 0:
        values, positions = values.T, positions.T
    return values, positions + offset


def fold_candidates(
    best_sq: torch.Tensor, best_idx: torch.Tensor, new_sq: torch.Tensor, new_idx: torch.Tensor
) -> None:
    """Keep, per row, the ``best_sq.shape[1]`` smallest of the running candidates and new ones (in place)."""
    top_sq, pos = torch.topk(torch.cat([best_sq, new_sq], dim=1), best_sq.shape[1], dim=1, largest=False, sorted=False)
    best_idx.copy_(torch.gather(torch.cat([best_idx, new_idx], dim=1), 1, pos))
    best_sq.copy_(top_sq)


def knn(
    x: torch.Tensor | np.ndarray,
    k: int,
    *,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    progress: bool = False,
) -> KnnResult:
    """Exact k nearest neighbours of every point among the others (self excluded).

    Args:
        x: (N, ...) samples, flattened to (N, D); computed on x's device (CPU or GPU).
        k: neighbours per point, ``1 <= k <= N - 1``.
        memory_budget_bytes: working memory for the Gram blocks (besides (N, k) candidate lists).
        progress: show a progress bar over Gram blocks.

    Returns:
        ``KnnResult`` with float64 distances (N, k), ascending, and int64 indices (N, k); among
        neighbours at equal distance the smaller index comes first (as a stable sort of the
        brute-force distances). Exact duplicates of a point appear as neighbours at distance
        exactly 0.

    Cost: about ``N^2 D`` flops (the upper triangle of the Gram matrix, half a full GEMM).
    """
    points = as_points(x, min_points=2)
    n = points.shape[0]
    if not 1 <= k <= n - 1:
        raise ValueError(f"k={k} neighbours need at least k + 1 = {k + 1} points, got {n}: lower k or add points")
    return knn_of_points(points, k, memory_budget_bytes=memory_budget_bytes, progress=progress)


def knn_of_points(
    points: torch.Tensor, k: int, *, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES, progress: bool = False
) -> KnnResult:
    """:func:`knn` of points already checked by :func:`as_points` (skips the check's pass over memory)."""
    n = points.shape[0]
    frame, sq_norms = gram_frame(points)
    side = block_side(frame.element_size(), memory_budget_bytes)
    candidates = NeighbourCandidates(n, k, dtype=frame.dtype, device=points.device)
    for r0, r1, c0, c1, sq_dist in gram_blocks(frame, sq_norms, upper_blocks(n, side), progress=progress, desc="kNN"):
        candidates.fold(r0, r1, c0, c1, sq_dist)
    return candidates.result(points, sq_norms)


class NeighbourCandidates:
    """Each point's ``k + CANDIDATE_MARGIN`` closest others, folded from upper-triangle Gram blocks.

    :meth:`fold` takes each block of :func:`upper_blocks` once (it overwrites a diagonal block's
    diagonal); :meth:`result` refines the candidates exactly and keeps the k nearest.
    """

    def __init__(self, n: int, k: int, *, dtype: torch.dtype, device: torch.device):
        self.k = k
        self.n_candidates = min(n - 1, k + CANDIDATE_MARGIN)
        self.best_sq = torch.full((n, self.n_candidates), math.inf, dtype=dtype, device=device)
        self.best_idx = torch.zeros((n, self.n_candidates), dtype=torch.int64, device=device)

    def fold(self, r0: int, r1: int, c0: int, c1: int, sq_dist: torch.Tensor) -> None:
        """Fold one block's squared Gram distances into the rows' (and, off the diagonal, columns') candidates."""
        if c0 == r0:
            sq_dist.fill_diagonal_(math.inf)  # no self-matches
        rows_sq, rows_idx = self.best_sq[r0:r1], self.best_idx[r0:r1]
        fold_candidates(rows_sq, rows_idx, *smallest_along(sq_dist, self.n_candidates, 1, c0))
        if c0 != r0:  # an off-diagonal block serves its columns too, through the transpose (a diagonal
            # block is the full symmetric square, so its rows already saw every pair both ways)
            cols_sq, cols_idx = self.best_sq[c0:c1], self.best_idx[c0:c1]
            fold_candidates(cols_sq, cols_idx, *smallest_along(sq_dist, self.n_candidates, 0, r0))

    def result(self, points: torch.Tensor, sq_norms: torch.Tensor) -> KnnResult:
        """The k nearest of each point, close pairs recomputed exactly (:func:`refine_squared_distances`);
        ``sq_norms`` are the squared norms of the frame the Gram was taken in."""
        all_rows = torch.arange(points.shape[0], device=points.device)[:, None].expand_as(self.best_idx)
        exact_sq = refine_squared_distances(self.best_sq, all_rows, self.best_idx, points, sq_norms)
        by_index, index_order = torch.sort(self.best_idx, dim=1)  # equal distances: the smaller index first
        top_sq, order = torch.sort(torch.gather(exact_sq, 1, index_order), dim=1, stable=True)
        k = self.k
        return KnnResult(distances=top_sq[:, :k].sqrt(), indices=torch.gather(by_index, 1, order[:, :k]))
