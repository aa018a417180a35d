"""K_F against a brute-force double loop, and the properties that catch the authors' bugs."""

import numpy as np
import pytest
import torch

from lightning_dims import label_sharpness
from lightning_dims.properties.label_sharpness import cross_label_blocks, paper_pairs


def brute_force_k_f(x: np.ndarray, y: np.ndarray) -> float:
    """Eq. 1 literally: max over pairs with x_j != x_k of 1[y_j != y_k] / ||x_j - x_k||."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    best = 0.0
    for j in range(len(flat)):
        for k in range(j + 1, len(flat)):
            distance = np.linalg.norm(flat[j] - flat[k])
            if distance > 0:
                best = max(best, float(y[j] != y[k]) / distance)
    return best


@pytest.mark.parametrize("n_classes", [2, 5])
def test_exhaustive_equals_brute_force(rng, n_classes):
    x = rng.normal(size=(150, 3, 4, 4))
    y = rng.integers(0, n_classes, size=150)
    result = label_sharpness(x, y, m=None)
    assert float(result) == pytest.approx(brute_force_k_f(x, y), rel=1e-6)
    j, k = result.pair
    assert y[j] != y[k]
    assert result.pair_distance == pytest.approx(np.linalg.norm(x[j] - x[k]), rel=1e-12)


def test_small_memory_budget_gives_the_same_value(rng):
    x = rng.normal(size=(120, 20)).astype(np.float32)
    y = rng.integers(0, 3, size=120)
    assert float(label_sharpness(x, y, m=None, memory_budget_bytes=1024)) == float(label_sharpness(x, y, m=None))


def test_cross_label_blocks_cover_each_cross_label_pair_once():
    counts = [3, 5, 1, 4]  # class sizes, samples sorted by label
    labels = np.repeat(np.arange(len(counts)), counts)
    seen = np.zeros((len(labels), len(labels)), dtype=int)
    for r0, r1, c0, c1 in cross_label_blocks(counts, side=2):
        seen[r0:r1, c0:c1] += 1
    expected = np.triu(labels[:, None] != labels[None, :])
    np.testing.assert_array_equal(seen, expected.astype(int))  # no same-label pair, none twice


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
def test_equally_close_pairs_give_the_first_pair_in_index_order(order):
    # Two cross-label pairs at exactly distance 1 ({0, 1} and {2, 3} before reordering): the
    # reported pair is the smaller (i, j) in the caller's indexing, whatever the blocks.
    points = np.array([[0.0], [1.0], [5.0], [6.0]])[order]
    labels = np.array([0, 1, 0, 1])[order]
    tied = sorted(tuple(sorted((order.index(a), order.index(b)))) for a, b in [(0, 1), (2, 3)])
    for budget in (512 * 2**20, 32):
        result = label_sharpness(points, labels, m=None, memory_budget_bytes=budget)
        assert result.pair == tied[0] and result.pair_distance == 1.0


def test_inverted_indicator_is_caught(rng):
    # Two tight clusters far apart, labels mostly following the cluster: same-label pairs are
    # ~0.01 apart, different-label pairs ~10 apart except the planted pair at distance 1.
    centres = np.array([[0.0] * 8, [10.0] * 8])
    cluster = np.repeat([0, 1], 40)
    x = centres[cluster] + rng.normal(scale=0.01, size=(80, 8))
    y = cluster.copy()
    x[5] = x[45] + np.array([1.0] + [0.0] * 7)  # a label-0 image 1.0 away from a label-1 image
    result = label_sharpness(x, y, m=None)
    cross = [np.linalg.norm(x[j] - x[k]) for j in range(80) for k in range(j + 1, 80) if y[j] != y[k]]
    same = [np.linalg.norm(x[j] - x[k]) for j in range(80) for k in range(j + 1, 80) if y[j] == y[k]]
    assert float(result) == pytest.approx(1 / min(cross), rel=1e-9)
    assert float(result) < 0.5 / min(same)  # an == indicator would report ~1/min(same), 100x more
    assert 5 in result.pair and sorted(result.pair_labels) == [0, 1]  # the planted image, against cluster 1


def test_scaling_by_c_gives_k_f_over_c(rng):
    x = rng.normal(size=(100, 30))
    y = rng.integers(0, 2, size=100)
    base = float(label_sharpness(x, y, m=None))
    assert float(label_sharpness(x * 4.0, y, m=None)) == base / 4.0  # power of two: bit-exact
    assert float(label_sharpness(x * 3.0, y, m=None)) == pytest.approx(base / 3.0, rel=1e-12)


def test_channel_replication_gives_k_f_over_sqrt_c(rng):
    gray = rng.normal(size=(80, 1, 6, 6))
    y = rng.integers(0, 2, size=80)
    rgb = np.repeat(gray, 3, axis=1)
    assert float(label_sharpness(rgb, y, m=None)) == pytest.approx(float(label_sharpness(gray, y, m=None)) / np.sqrt(3), rel=1e-12)


def test_identical_images_with_different_labels_are_skipped(rng):
    x = rng.normal(size=(60, 10))
    y = rng.integers(0, 2, size=60)
    x[30], y[30], y[31] = x[31], 0, 1  # the same image under two labels
    result = label_sharpness(x, y, m=None)
    assert np.isfinite(float(result)) and result.n_identical_pairs == 1
    assert float(result) == pytest.approx(brute_force_k_f(x, y), rel=1e-6)


def test_sampling_m_of_n_is_seeded_and_indices_refer_to_the_input(rng):
    x = rng.normal(size=(500, 12)).astype(np.float32)
    y = rng.integers(0, 2, size=500)
    a = label_sharpness(torch.from_numpy(x), torch.from_numpy(y), m=200, seed=3)
    b = label_sharpness(x, y, m=200, seed=3)
    assert a == b and a.m == 200
    j, k = a.pair
    assert a.pair_labels == (y[j], y[k]) and y[j] != y[k]
    assert 1 / float(a) == pytest.approx(np.linalg.norm(x[j].astype(np.float64) - x[k]), rel=1e-6)
    assert float(label_sharpness(x, y, m=200, seed=4)) != float(a)


def paper_mode_reference(x: np.ndarray, y: np.ndarray, m: int, seed: int, batch_size: int = 500) -> tuple[float, int, tuple]:
    """Eq. 1 by brute force over the paper sampler's pairs: (K_F, cross-label pairs, arg-max pair).

    The sampled images and the batch-aligned pairs are drawn as the paper mode documents (one
    seeded generator: m of N images, then two shuffles); the indicator, the distances and the
    maximum are computed here, pair by pair, in float64.
    """
    generator = torch.Generator().manual_seed(seed)
    sample = torch.sort(torch.randperm(len(x), generator=generator)[:m]).values.numpy()
    rows, cols = paper_pairs(torch.from_numpy(y[sample]), batch_size, generator)
    best, n_cross, pair = 0.0, 0, None
    for r, c in zip(sample[rows.numpy()], sample[cols.numpy()]):
        if y[r] == y[c]:
            continue
        n_cross += 1
        distance = np.linalg.norm(x[r].astype(np.float64) - x[c].astype(np.float64))
        if distance > 0 and 1 / distance > best:
            best, pair = 1 / distance, (int(r), int(c))
    return best, n_cross, pair


def test_paper_mode_equals_brute_force_over_its_2000_pairs(rng):
    # Labels follow two tight clusters, so every same-label pair is ~100x closer than any
    # cross-label pair: the authors' == indicator would report a value ~100x too large.
    centres = np.array([[0.0] * 16, [3.0] * 16])
    y = rng.integers(0, 2, size=1500)
    x = (centres[y] + rng.normal(scale=0.01, size=(1500, 16))).astype(np.float32)
    rows, cols = paper_pairs(torch.from_numpy(y[:1000]), 500, torch.Generator().manual_seed(0))
    assert len(rows) == 2000
    expected, n_cross, pair = paper_mode_reference(x, y, m=1000, seed=0)
    paper = label_sharpness(x, y, m=1000, mode="paper", seed=0)
    assert float(paper) == pytest.approx(expected, rel=1e-6)
    assert paper.n_pairs == n_cross and sorted(paper.pair) == sorted(pair)
    j, k = paper.pair
    assert y[j] != y[k] and paper.pair_labels == (y[j], y[k])
    exhaustive = label_sharpness(x, y, m=1000, mode="exhaustive", seed=0)
    assert exhaustive.n_pairs > 200 * paper.n_pairs
    assert float(paper) <= float(exhaustive) < 2 * float(paper)  # both near 1 / cluster distance (12)


def test_paper_mode_on_random_data_equals_brute_force(rng):
    x = rng.normal(size=(1200, 10)).astype(np.float32)
    y = rng.integers(0, 3, size=1200)
    expected, n_cross, _ = paper_mode_reference(x, y, m=900, seed=5, batch_size=300)
    paper = label_sharpness(x, y, m=900, mode="paper", seed=5, batch_size=300)
    assert float(paper) == pytest.approx(expected, rel=1e-6) and paper.n_pairs == n_cross


def test_labels_as_medmnist_column_are_accepted(rng):
    x = rng.normal(size=(50, 4))
    y = rng.integers(0, 2, size=(50, 1))
    assert float(label_sharpness(x, y, m=None)) == pytest.approx(brute_force_k_f(x, y[:, 0]), rel=1e-6)


@pytest.mark.parametrize(
    "y, kwargs, message",
    [
        (np.zeros(40, dtype=int), {}, "at least two classes"),
        (np.zeros(39, dtype=int), {}, "one class label per sample"),
        (np.arange(40) % 2, {"mode": "fast"}, "unknown mode"),
        (np.arange(40) % 2, {"m": 1}, "at least 2"),
    ],
)
def test_clear_errors(y, kwargs, message):
    with pytest.raises(ValueError, match=message):
        label_sharpness(np.random.default_rng(0).normal(size=(40, 5)), y, **kwargs)
