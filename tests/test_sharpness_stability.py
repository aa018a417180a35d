"""K_F spread over draws of m images: each draw is the plain estimator, spread vanishes at m = N."""

import numpy as np
import pytest

from lightning_dims import label_sharpness
from lightning_dims.properties.sharpness_stability import label_sharpness_stability


def test_each_draw_is_the_plain_estimator_and_k_f_grows_with_m(rng):
    x = rng.normal(size=(400, 20)).astype(np.float32)
    y = rng.integers(0, 2, size=400)
    spreads = label_sharpness_stability(x, y, ms=(25, 100, 400), repeats=5, seed=7)
    assert [s.m for s in spreads] == [25, 100, 400]
    small, _, full = spreads
    assert small.values[2] == float(label_sharpness(x, y, m=25, seed=9))
    assert small.mean < full.mean  # the max over more pairs
    assert small.std > 0 and small.min <= small.mean <= small.max
    assert full.std == 0 and full.values == [float(label_sharpness(x, y, m=None))] * 5  # m = N: no spread


def test_sizes_above_n_are_clipped_with_a_warning(rng):
    x, y = rng.normal(size=(50, 4)), np.arange(50) % 2
    with pytest.warns(UserWarning, match="clipped to 50"):
        (spread,) = label_sharpness_stability(x, y, ms=(80,), repeats=2)
    assert spread.m == 50 and spread.std == 0
    with pytest.raises(ValueError, match="at least 2 draws"):
        label_sharpness_stability(x, y, repeats=1)
