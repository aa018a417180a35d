"""The exact kNN kernel against brute force (numpy float64 pairwise distances)."""

import numpy as np
import pytest
import torch

from lightning_dims.properties.knn import as_points, knn


def brute_force_knn(x: np.ndarray, k: int):
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, axis=1), order


@pytest.mark.parametrize("budget", [512 * 2**20, 4096])  # one block, and many one-row blocks
def test_knn_matches_brute_force(rng, budget):
    x = rng.normal(size=(300, 17))
    expected_d, expected_i = brute_force_knn(x, 7)
    result = knn(x, 7, memory_budget_bytes=budget)
    assert result.distances.dtype == torch.float64
    np.testing.assert_allclose(result.distances.numpy(), expected_d, rtol=1e-12)
    assert (result.indices.numpy() == expected_i).mean() > 0.999  # ties aside, the same neighbours


def test_float32_far_from_origin_is_exact_after_refinement(rng):
    # Points at distance ~1e-3 from each other but 1e3 from the origin: float32 Gram distances
    # would be pure rounding noise; centring plus exact refinement must recover them.
    base = rng.normal(size=(200, 50)) * 1e-3
    x = (base + 1e3).astype(np.float32)
    expected_d, _ = brute_force_knn(x.astype(np.float64), 5)
    result = knn(torch.from_numpy(x), 5)
    np.testing.assert_allclose(result.distances.numpy(), expected_d, rtol=1e-6)


def test_exact_duplicates_have_distance_exactly_zero(rng):
    x = rng.normal(size=(100, 30)).astype(np.float32) * 100
    x[50] = x[10]
    result = knn(x, 3)
    assert result.distances[50, 0].item() == 0.0 and result.indices[50, 0].item() == 10
    assert result.distances[10, 0].item() == 0.0 and result.indices[10, 0].item() == 50
    assert (result.distances[:, 0] == 0).sum().item() == 2


def test_images_are_flattened_and_integers_become_float32(rng):
    images = rng.integers(0, 256, size=(40, 3, 8, 8), dtype=np.uint8)
    points = as_points(images)
    assert points.shape == (40, 192) and points.dtype == torch.float32
    expected_d, _ = brute_force_knn(images.reshape(40, -1).astype(np.float64), 4)
    np.testing.assert_allclose(knn(images, 4).distances.numpy(), expected_d, rtol=1e-6)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([1.0, 2.0, 3.0]), "reshape"),
        (np.full((5, 3), np.nan), "NaN or inf"),
        (np.zeros((0, 3)), "at least"),
    ],
)
def test_bad_input_gives_clear_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        knn(bad, 1)


def test_k_must_leave_a_neighbour(rng):
    with pytest.raises(ValueError, match="lower k"):
        knn(rng.normal(size=(5, 2)), 5)
