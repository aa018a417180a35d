"""dataset_properties: K_F and d_data from one Gram equal the two separate estimators, and never copy the data."""

from __future__ import annotations

import warnings

import pytest
import torch

import lightning_dims as ld
from lightning_dims.properties import DuplicateSamplesWarning
from lightning_dims.properties.knn import PanelFrame


def manifold(n: int, shift: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points on a 5-dimensional linear manifold in 64-d, shifted by ``shift`` from the origin, 3 classes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g) @ torch.randn(5, 64, generator=g) + shift
    return x, torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize(
    ("shift", "m", "estimator", "options"),
    [(0.0, 150, "mle", {"k": 10}), (50.0, None, "mle", {"k": 10, "unbiased": False}), (5.0, 40, "twonn", {})],
)
def test_one_gram_equals_label_sharpness_and_intrinsic_dimension(shift, m, estimator, options):
    x, y = manifold(300, shift, seed=int(shift))
    budget = 64 * 1024  # small blocks: many diagonal and off-diagonal blocks, centred panels when shifted
    props = ld.dataset_properties(x, y, m=m, estimator=estimator, memory_budget_bytes=budget, **options)
    assert props.label_sharpness == ld.label_sharpness(x, y, m=m)  # the same sample, pair and exact distance
    separate = ld.intrinsic_dimension(x, estimator, **options)
    assert float(props.d_data) == pytest.approx(float(separate), rel=1e-6)
    assert props.d_data.options == separate.options and props.d_data.n_samples == 300


def test_duplicates_are_dropped_as_intrinsic_dimension_drops_them():
    x, y = manifold(120, 0.0, seed=3)
    x, y = torch.cat([x, x[:4]]), torch.cat([y, (y[:4] + 1) % 3])  # 4 duplicates, filed under another label
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        props = ld.dataset_properties(x, y, m=None, k=10)
    assert any(issubclass(w.category, DuplicateSamplesWarning) for w in caught)
    assert props.d_data.n_duplicates == 4
    assert float(props.d_data) == pytest.approx(float(ld.intrinsic_dimension(x, "mle", k=10)), rel=1e-6)
    kf = props.label_sharpness
    assert kf == ld.label_sharpness(x, y, m=None) and kf.n_identical_pairs == 4  # identical pairs skipped


def test_centred_panels_are_a_quarter_of_the_data_at_most():
    x, _ = manifold(160, 50.0, seed=1)
    frame = PanelFrame(x, memory_budget_bytes=2**30)
    assert frame.mean is not None and frame.side == 20  # 160 / 8 rows per centred panel
    centred = x - x.mean(dim=0)
    assert torch.allclose(frame.sq_norms, (centred * centred).sum(dim=1), rtol=1e-4)
    assert PanelFrame(x - x.mean(dim=0), 2**30).mean is None  # data at the origin: panels are views


def test_bad_input_is_refused_naming_the_fix():
    x, y = manifold(30, 0.0, seed=2)
    with pytest.raises(ValueError, match="lower k or add images"):
        ld.dataset_properties(x, y, k=40)
    with pytest.raises(ValueError, match="at least two classes"):
        ld.dataset_properties(x, torch.zeros(30, dtype=torch.int64), k=5)
