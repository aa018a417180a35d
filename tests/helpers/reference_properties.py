"""K_F and d_data computed independently of lightning_dims, for tests that check measured values.

K_F: every pairwise float64 distance (scipy's ``cdist``), ``1 / min`` over pairs of different
images with different labels (Eq. 1). d_data: scikit-dimension's Levina-Bickel MLE with
MacKay-Ghahramani averaging (``unbiased=True``, ``comb="mle"``) on the distinct images (exact
duplicates dropped, as the project documents).
"""

from __future__ import annotations

import numpy as np
import skdim
import torch
from scipy.spatial.distance import cdist


def brute_force_properties(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor, k: int = 20) -> tuple[float, float]:
    """(K_F, d_data) of images ``x`` (N, ...) with labels ``y`` (N,), all images used."""
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    labels = np.asarray(y)
    distances = cdist(flat, flat)
    cross = (labels[:, None] != labels[None, :]) & (distances > 0)
    k_f = 1.0 / distances[cross].min()
    distinct = np.unique(flat, axis=0)
    d_data = skdim.id.MLE(unbiased=True).fit(distinct, n_neighbors=k, comb="mle").dimension_
    return float(k_f), float(d_data)
