"""`sweep --estimate`'s timing arithmetic: the uncertainty it prints and the batch it times on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lightning_dims.sweep.estimate import (
    GroupCost,
    StepSetting,
    StepTiming,
    calibrated_seconds_per_flop,
    calibration_rows,
    seconds_per_flop_of,
    timing_batch,
)


def test_a_timings_rate_is_its_images_over_its_seconds():
    seconds = (0.50, 0.55, 0.48, 0.61, 0.52)
    timing = StepTiming(batch=4, seconds=seconds, parameters=1000)
    assert timing.images_per_s == pytest.approx(4 / np.mean(seconds))


@pytest.mark.parametrize(
    ("device", "per_image_s", "expected"),
    [("cpu", 2.0, 2), ("cpu", 0.01, 32), ("cpu", 0.1, 20), ("cuda", 2.0, 32)],
)
def test_the_cpu_times_a_smaller_batch_when_the_runs_own_would_not_fit(device, per_image_s, expected):
    setting = StepSetting("vgg19", 32, 224, 3, None, device)
    assert timing_batch(setting, per_image_s, steps=3, budget_s=8.0) == expected  # 8 s / 4 steps / per image, 2..32


def test_the_flop_count_of_a_tiny_conv_net_is_the_hand_computed_one():
    import torch

    from lightning_dims.sweep.flops import module_training_flops

    # conv 1 -> 4 channels, 3x3, no padding, on 2 images of 6x6: output 4x4; then a linear 64 -> 2
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, bias=False), torch.nn.Flatten(), torch.nn.Linear(64, 2, bias=False))
    conv_forward = 2 * 2 * (1 * 4 * 3 * 3) * (4 * 4)  # 2 FLOPs per multiply-add, batch 2, C_in C_out k^2 H W
    linear_forward = 2 * 2 * 64 * 2  # batch 2, in x out
    # backward: the weights' gradient of both, the input's gradient of the linear only (the input needs none)
    expected = conv_forward + linear_forward + conv_forward + 2 * linear_forward
    assert module_training_flops(model, torch.rand(2, 1, 6, 6)) == expected


def test_flops_per_image_are_ordered_like_the_paper_architectures_size():
    from lightning_dims.sweep.flops import parameter_count, training_flops_per_image

    archs = ["resnet18", "resnet50", "vgg19"]
    flops = [training_flops_per_image(arch, 3, 64) for arch in archs]
    assert flops == sorted(flops) and flops[0] > 1e8  # resnet18 at 64 px: ~0.9 GFLOP per image forward + backward
    assert parameter_count("resnet18", 3) == 11_177_538  # torchvision's 11.7M with a 2-class head


def test_the_calibration_is_the_mean_seconds_per_flop_with_a_student_t_prediction_interval():
    ratios = [2e-11, 3e-11, 2.5e-11]
    mean, relative = calibrated_seconds_per_flop(ratios)
    assert mean == pytest.approx(2.5e-11)
    assert relative == pytest.approx(stats.t.ppf(0.975, 2) * np.std(ratios, ddof=1) * np.sqrt(4 / 3) / 2.5e-11)
    assert calibrated_seconds_per_flop([2e-11]) == (2e-11, None)  # one model: no spread to tell
    assert seconds_per_flop_of(StepTiming(4, (2.0, 1.0, 3.0), 10), 1e9) == pytest.approx(1.0 / 4e9)  # the fastest step


def test_predicted_rates_are_ordered_by_flops_and_calibrate_on_the_cheapest_architectures():
    costs = [GroupCost(StepSetting(arch, 8, 32, 3, None), train_images=3600) for arch in ("vgg19", "resnet18", "resnet50", "resnet18")]
    for cost, flops in zip(costs, (40e9, 4e9, 8e9, 2e9)):
        cost.flops_per_image = flops
    assert [(c.setting.arch, c.flops_per_image) for c in calibration_rows(costs, 2)] == [("resnet18", 2e9), ("resnet50", 8e9)]
    for cost in costs:
        cost.predicted(1e-11, 0.2, processes=2, devices=3)
    assert costs[0].images_per_s == pytest.approx(6 / (40e9 * 1e-11)) and costs[0].relative_error == 0.2
    per_image = sorted(costs, key=lambda c: c.flops_per_image)
    assert [1 / c.images_per_s for c in per_image] == sorted(1 / c.images_per_s for c in per_image)
