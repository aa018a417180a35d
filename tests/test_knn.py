"""The exact kNN kernel against brute force (numpy float64 pairwise distances)."""

import numpy as np
import pytest
import torch

from lightning_dims.properties.knn import (
    BLOCK_WORKSPACE,
    as_points,
    knn,
    panel_gram,
    symmetric_gram,
    syrk_gram,
    upper_blocks,
)


def brute_force_knn(x: np.ndarray, k: int):
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, axis=1), order


def budget_for_side(side: int, element_size: int = 8) -> int:
    """A memory budget whose Gram blocks have ``side`` rows."""
    return side * side * element_size * BLOCK_WORKSPACE


# one block; 3 x 3 blocks with a short last one (diagonal blocks by syrk, the rest by GEMM,
# both ways); and many tiny blocks
@pytest.mark.parametrize("budget", [512 * 2**20, budget_for_side(110), 4096])
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


def test_equal_distances_list_the_smaller_index_first(rng):
    # Two shuffled integer lattices 2000 apart: most distances come in ties of 2 to 8, also at the
    # k-th place, and (points far from the origin, mean near it) every selected pair is refined
    # exactly, so the ties are exact. The order must be a stable sort of brute-force distances.
    grid = np.stack(np.meshgrid(np.arange(12), np.arange(12)), axis=-1).reshape(-1, 2)
    lattices = np.concatenate([grid + [1000, 0], grid - [1000, 0]]).astype(np.float32)
    x = lattices[rng.permutation(len(lattices))]
    expected_d, expected_i = brute_force_knn(x.astype(np.float64), 6)
    for side in (len(x), 50, 7):
        result = knn(x, 6, memory_budget_bytes=budget_for_side(side, element_size=4))
        np.testing.assert_array_equal(result.distances.numpy(), expected_d)
        np.testing.assert_array_equal(result.indices.numpy(), expected_i)


def test_duplicate_groups_are_listed_in_index_order(rng):
    x = rng.normal(size=(100, 30)).astype(np.float32)
    x[50] = x[70] = x[10]
    for budget in (512 * 2**20, budget_for_side(30, element_size=4)):
        result = knn(x, 3, memory_budget_bytes=budget)
        assert result.indices[10, :2].tolist() == [50, 70] and result.indices[70, :2].tolist() == [10, 50]
        assert (result.distances[[10, 50, 70], :2] == 0).all() and (result.distances[:, 0] == 0).sum() == 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_symmetric_gram_computes_the_upper_triangle_once_and_mirrors_it(rng, dtype):
    a = torch.from_numpy(rng.normal(size=(300, 40)).astype(dtype))
    full = a.double() @ a.double().T
    tolerance = 1e-4 if dtype == np.float32 else 1e-10
    for upper in (syrk_gram(a), panel_gram(a)):  # the CPU path and the GPU path (run here on the CPU)
        assert upper.dtype == a.dtype
        np.testing.assert_allclose(upper.double().triu().numpy(), full.triu().numpy(), atol=tolerance)
    gram = symmetric_gram(a)
    assert torch.equal(gram, gram.T)
    np.testing.assert_allclose(gram.double().numpy(), full.numpy(), atol=tolerance)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_kernel_equals_the_cpu_kernel(rng):
    x = torch.from_numpy(rng.normal(size=(700, 64)).astype(np.float32))
    x[300] = x[20]
    budget = budget_for_side(256, element_size=4)  # several blocks: panels on the diagonal, GEMMs off it
    on_gpu, on_cpu = knn(x.cuda(), 9, memory_budget_bytes=budget), knn(x, 9, memory_budget_bytes=budget)
    np.testing.assert_allclose(on_gpu.distances.cpu().numpy(), on_cpu.distances.numpy(), rtol=1e-5)
    assert on_gpu.distances[300, 0].item() == 0.0 and on_gpu.indices[300, 0].item() == 20
    assert (on_gpu.indices.cpu() == on_cpu.indices).float().mean() > 0.99


def test_upper_blocks_cover_each_pair_once():
    n = 23
    seen = np.zeros((n, n), dtype=int)
    for r0, r1, c0, c1 in upper_blocks(n, 5):
        if (r0, r1) == (c0, c1):
            seen[r0:r1, c0:c1] += np.triu(np.ones((r1 - r0, c1 - c0), dtype=int))  # symmetric: once
        else:
            assert r1 <= c0  # strictly above the diagonal
            seen[r0:r1, c0:c1] += 1
    np.testing.assert_array_equal(seen, np.triu(np.ones((n, n), dtype=int)))


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
