"""`sweep --estimate`'s timing arithmetic: the uncertainty it prints and the batch it times on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lightning_dims.sweep.estimate import GroupCost, StepSetting, StepTiming, timing_batch


def test_the_uncertainty_is_the_student_t_interval_of_the_mean_step_time():
    seconds = (0.50, 0.55, 0.48, 0.61, 0.52)
    low, high = stats.t.interval(0.95, len(seconds) - 1, loc=np.mean(seconds), scale=stats.sem(seconds))
    timing = StepTiming(batch=4, seconds=seconds, parameters=1000)
    assert timing.relative_error() == pytest.approx((high - low) / 2 / np.mean(seconds), rel=1e-9)
    assert timing.images_per_s == pytest.approx(4 / np.mean(seconds))
    assert StepTiming(4, (0.5,), 1000).relative_error() is None  # one step: no spread to tell


def test_two_processes_add_their_uncertainties_in_quadrature_and_devices_multiply_the_rate():
    a, b = StepTiming(2, (1.0, 1.2, 0.9), 10), StepTiming(2, (2.0, 2.2, 2.1), 10)
    cost = GroupCost(StepSetting("resnet18", 2, 224, 3, None), train_images=3600)
    cost.timed([a, b], devices=3)
    assert cost.images_per_s == pytest.approx(3 * (a.images_per_s + b.images_per_s))
    expected = np.hypot(a.images_per_s * a.relative_error(), b.images_per_s * b.relative_error()) / (a.images_per_s + b.images_per_s)
    assert cost.relative_error == pytest.approx(expected) and cost.timed_batch == 2


@pytest.mark.parametrize(
    ("device", "per_image_s", "expected"),
    [("cpu", 2.0, 2), ("cpu", 0.01, 32), ("cpu", 0.1, 20), ("cuda", 2.0, 32)],
)
def test_the_cpu_times_a_smaller_batch_when_the_runs_own_would_not_fit(device, per_image_s, expected):
    setting = StepSetting("vgg19", 32, 224, 3, None, device)
    assert timing_batch(setting, per_image_s, steps=3, budget_s=8.0) == expected  # 8 s / 4 steps / per image, 2..32
