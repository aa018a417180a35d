"""What a grid will cost on this machine, before it starts: training steps timed per architecture.

For every unfinished point the fit command is resolved as ``fit`` would (the paper preset, the
precision this machine gets), giving its architecture, batch size, image size, channels and the
training images it will process (``train_size x max_epochs``). Points are grouped by
(architecture, batch size, image size, precision). Each group's forward + backward FLOPs per image
are counted once (:mod:`~lightning_dims.sweep.flops`); the architectures with the fewest are timed
(forward, backward, Adam step; after one warm-up step) on random inputs of that shape, in as many
processes at once as the sweep would run on one device (``runs_per_device`` on GPU 0, or
``workers`` on the CPU), started together, and each gives this machine's seconds per FLOP from its
fastest step: ``r = min step s / (batch x FLOPs/image)``. With ``s/FLOP`` the mean of the ``r``s,
a group's rate is ``images/s = processes x devices / (FLOPs/image x s/FLOP)`` (so cost per image
is ordered by FLOPs by construction) and its hours ``training images / images per second / 3600``;
the printed uncertainty is the 95% Student-t prediction interval of a further model's ``r``.

Each run's start-up (process or fork, imports, the CLI, W&B's start, CUDA's on a GPU) is
measured too, with a few tiny real runs in the first slot (:mod:`~lightning_dims.sweep.startup`),
cold and warm: the grid pays it once per run, each slot its own (``runs x start-up / slots``, plus
a warm worker's preload once per slot). The total uses the warm figure unless the sweep is run
``--cold``, and the saving of warm workers is printed.

Not timed, and said so in the output: validation and test passes and the callbacks' measurements
(d_repr, FGSM, K_F / d_data). Runs packed on one device are timed with runs of the same
architecture; a real grid mixes them. Start-ups of slots at once are timed alone (on a loaded
node they also compete for its cores).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from lightning_dims.sweep.grid import SweepRun
from lightning_dims.sweep.slots import Slot, describe_slots, machine_slots

__all__ = [
    "CONFIDENCE",
    "MAX_STEPS",
    "WARMUP_STEPS",
    "GroupCost",
    "StepSetting",
    "StepTiming",
    "autocast_dtype",
    "estimate_grid",
    "format_hours",
    "format_rate",
    "grid_costs",
    "native_channels",
    "startup_lines",
    "time_concurrently",
    "time_steps",
    "timed_slots",
    "timing_batch",
    "timings_concurrently",
    "training_step_timer",
    "worker_main",
]

WARMUP_STEPS = 1
MAX_STEPS = 200
"""Timed steps per process at most, however short they are."""
CONFIDENCE = 0.95
"""Of the printed uncertainty of each row's images/s and of the hours."""


@dataclass(frozen=True)
class StepSetting:
    """The shape of one training step: network, batch, input, numeric precision, device kind."""

    arch: str
    batch_size: int
    size: int
    channels: int
    precision: str | None  # Lightning's: None or "32-true" (float32), "bf16-mixed", "16-mixed"
    device: str = "cpu"  # "cuda" or "cpu"

    def describe(self) -> str:
        return f"{self.arch} batch {self.batch_size} at {self.size} px, {self.channels} ch, {self.precision or '32-true'}"


@dataclass
class GroupCost:
    """The unfinished points of one (arch, batch, size, precision): how many, and their images."""

    setting: StepSetting
    runs: int = 0
    train_images: int = 0
    val_images: int = 0
    images_per_s: float | None = None
    relative_error: float | None = None  # of images_per_s and hours (:func:`calibrated_seconds_per_flop`)
    parameters: int | None = None
    timed_batch: int | None = None
    flops_per_image: float | None = None  # of one training step (:mod:`~lightning_dims.sweep.flops`)

    def predicted(self, seconds_per_flop: float, relative_error: float | None, processes: int, devices: int) -> None:
        """The rate from the row's FLOPs and the machine's calibrated seconds per FLOP (per process, with
        ``processes`` per device at once): ``images/s = processes x devices / (FLOPs/image x s/FLOP)``."""
        self.images_per_s = processes * devices / (self.flops_per_image * seconds_per_flop)
        self.relative_error = relative_error

    @property
    def hours(self) -> float | None:
        return None if not self.images_per_s else self.train_images / self.images_per_s / 3600


# ---- one process: time steps ---------------------------------------------------------------------
def autocast_dtype(precision: str | None):
    import torch

    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))


def training_step_timer(setting: StepSetting):
    """``(step, synchronize, parameters)``: ``step(batch)`` runs one training step on the first ``batch``
    images of a random batch of ``setting`` (only the time is used); ``parameters``: the network's count."""
    import torch
    import torch.nn.functional as F

    from lightning_dims.models.classifier import channels_last_on_cuda
    from lightning_dims.models.registry import create_model

    device = torch.device(setting.device)
    model = channels_last_on_cuda(create_model(setting.arch, in_chans=setting.channels, num_classes=2).to(device), device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    generator = torch.Generator(device="cpu").manual_seed(0)
    x = (torch.rand(setting.batch_size, setting.channels, setting.size, setting.size, generator=generator) * 255).to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (setting.batch_size,), generator=generator).to(device)
    dtype = autocast_dtype(setting.precision)

    def step(batch: int = setting.batch_size) -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x[:batch])
        F.cross_entropy(logits.float(), y[:batch]).backward()
        optimizer.step()

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step, synchronize, sum(parameter.numel() for parameter in model.parameters())


@dataclass(frozen=True)
class StepTiming:
    """One process's timed training steps: the batch they ran at, each step's seconds, the network's parameters."""

    batch: int
    seconds: tuple[float, ...]
    parameters: int

    @property
    def images_per_s(self) -> float:
        return self.batch * len(self.seconds) / sum(self.seconds)


def timing_batch(setting: StepSetting, per_image_s: float, steps: int, budget_s: float) -> int:
    """The batch to time at: the run's own on a GPU or without a budget; on the CPU, at most what lets
    ``steps + 1`` steps fit the budget (a CPU's cost per image hardly depends on the batch, a GPU's does)."""
    if setting.device == "cuda" or budget_s <= 0:
        return setting.batch_size
    return max(min(2, setting.batch_size), min(setting.batch_size, int(budget_s / (steps + 1) / max(per_image_s, 1e-9))))


def time_steps(setting: StepSetting, steps: int, go=None, budget_s: float = 0.0) -> StepTiming:
    """At least ``steps`` timed training steps after :data:`WARMUP_STEPS`, more while ``budget_s`` seconds last
    (at most :data:`MAX_STEPS`); ``go()`` is called before timing starts."""
    step, synchronize, parameters = training_step_timer(setting)
    first = min(2, setting.batch_size)  # batch norm needs 2 images to train
    started = time.perf_counter()
    step(first)  # the first step (allocations, kernels) and the per-image cost that sizes the timing batch
    synchronize()
    batch = timing_batch(setting, (time.perf_counter() - started) / first, steps, budget_s)
    for _ in range(WARMUP_STEPS if batch != first else WARMUP_STEPS - 1):  # the first step warmed this batch up
        step(batch)
    synchronize()
    if go is not None:
        go()
    seconds: list[float] = []
    started = time.perf_counter()
    while len(seconds) < steps or (time.perf_counter() - started < budget_s and len(seconds) < MAX_STEPS):
        begun = time.perf_counter()
        step(batch)
        synchronize()
        seconds.append(time.perf_counter() - begun)
    return StepTiming(batch, tuple(seconds), parameters)


def worker_main(argv: list[str]) -> int:
    """Child entry: ``python -m lightning_dims.sweep.estimate SETTING_JSON STEPS [BUDGET_S]``; warms up, prints
    ``ready``, waits for a line on stdin, times, prints its :class:`StepTiming` as JSON."""
    setting, steps = StepSetting(**json.loads(argv[0])), int(argv[1])
    budget_s = float(argv[2]) if len(argv) > 2 else 0.0

    def go() -> None:
        print("ready", flush=True)
        sys.stdin.readline()

    print(json.dumps(asdict(time_steps(setting, steps, go, budget_s))), flush=True)
    return 0


# ---- several processes at once -------------------------------------------------------------------
def time_concurrently(setting: StepSetting, slots: list[Slot], steps: int) -> list[float]:
    """Images/s of each of ``len(slots)`` processes timing ``steps`` steps of ``setting`` together (:func:`timings_concurrently`)."""
    return [timing.images_per_s for timing in timings_concurrently(setting, slots, steps)]


def timings_concurrently(setting: StepSetting, slots: list[Slot], steps: int, budget_s: float = 0.0) -> list[StepTiming]:
    """The :class:`StepTiming` of each of ``len(slots)`` processes timing ``setting`` together (one per slot, its
    environment: GPU and threads); all warm up first, then all start timing at the same moment."""
    import os

    children = []
    for slot in slots:
        env = {**os.environ, **slot.environment()}
        command = [sys.executable, "-m", "lightning_dims.sweep.estimate", json.dumps(asdict(setting)), str(steps), str(budget_s)]
        children.append(subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    try:
        for child in children:
            line = child.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"timing {setting.describe()} failed before it started (exit code {child.wait()})")
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        timings = []
        for child in children:
            output, _ = child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"timing {setting.describe()} failed (exit code {child.returncode})")
            fields = json.loads(output.strip().splitlines()[-1])
            timings.append(StepTiming(int(fields["batch"]), tuple(fields["seconds"]), int(fields["parameters"])))
        return timings
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


# ---- calibration: this machine's seconds per FLOP --------------------------------------------------
CALIBRATION_MODELS = 3
"""Architectures timed to calibrate seconds per FLOP: the ones with the fewest FLOPs per image."""


def seconds_per_flop_of(timing: StepTiming, flops_per_image: float) -> float:
    """``min(step seconds) / (batch x FLOPs/image)``: the fastest step is the one least slowed by other load."""
    return min(timing.seconds) / (timing.batch * flops_per_image)


def calibrated_seconds_per_flop(ratios: list[float], confidence: float = CONFIDENCE) -> tuple[float, float | None]:
    """Mean of the timed models' seconds per FLOP ``r_i`` and the relative half-width of the ``confidence``
    prediction interval of a further model's ratio: ``t_{n-1} s sqrt(1 + 1/n) / mean`` (None for one model)."""
    from scipy import stats

    mean = statistics.fmean(ratios)
    if len(ratios) < 2:
        return mean, None
    n = len(ratios)
    return mean, float(stats.t.ppf(0.5 + confidence / 2, n - 1) * statistics.stdev(ratios) * math.sqrt(1 + 1 / n) / mean)


def calibration_rows(costs: list[GroupCost], models: int = CALIBRATION_MODELS) -> list[GroupCost]:
    """One row (the one with the fewest FLOPs per image) of each of the ``models`` cheapest architectures."""
    chosen: dict[str, GroupCost] = {}
    for cost in sorted(costs, key=lambda c: c.flops_per_image):
        if cost.setting.arch not in chosen and len(chosen) < models:
            chosen[cost.setting.arch] = cost
    return list(chosen.values())


# ---- the grid ----------------------------------------------------------------------------------------
def native_channels(dataset: str) -> int | None:
    """The dataset's native channels from the registry (None: only its files tell)."""
    from lightning_dims.data.registry import get_dataset

    return get_dataset(dataset).channels


def grid_costs(runs: list[SweepRun], device: str) -> dict[tuple, GroupCost]:
    """Unfinished points grouped by (arch, batch, size, precision), with their images.

    One command is resolved per group of points that differ only in ``--data.train_size`` (the
    training size is then the point's own); channels of datasets whose files decide them are
    taken as 3 (the first convolution is a small part of every step).
    """
    from lightning_dims.sweep.check import fit_arguments
    from lightning_dims.training.config_parser import FitConfigParser

    parser = FitConfigParser()
    resolved: dict[tuple[str, ...], object] = {}
    groups: dict[tuple, GroupCost] = {}
    channel_votes: dict[tuple, Counter] = {}
    for run in runs:
        args = fit_arguments(run)
        if args is None:
            continue
        key = tuple(arg for arg in args if not arg.startswith("--data.train_size="))
        if key not in resolved:
            resolved[key] = parser.parse(args)
        config = resolved[key]
        train_size = int(run.parameters.get("data.train_size", config.data.train_size))
        epochs = int(config.trainer.max_epochs if config.trainer.max_epochs is not None else 1000)
        channels = config.data.channels or native_channels(config.data.name) or 3
        group = (config.model.arch, int(config.data.batch_size), int(config.data.size or 224), config.trainer.precision)
        cost = groups.setdefault(group, GroupCost(StepSetting(*group[:3], channels, group[3], device)))
        channel_votes.setdefault(group, Counter())[channels] += 1
        cost.runs += 1
        cost.train_images += train_size * epochs
        cost.val_images += int(config.data.val_size) * epochs
    for group, cost in groups.items():  # time each group with its most common channels
        cost.setting = StepSetting(*group[:3], channel_votes[group].most_common(1)[0][0], group[3], device)
    return groups


def timed_slots(slots: list[Slot]) -> tuple[list[Slot], int, str]:
    """The slots of one device to time, how many such devices there are, and what that device is."""
    gpus = list(dict.fromkeys(slot.gpu for slot in slots if slot.gpu is not None))
    if not gpus:
        return slots, 1, "the CPU"
    first = [slot for slot in slots if slot.gpu == gpus[0]]
    return first, len(gpus), f"GPU {gpus[0]} (x {len(gpus)} GPU{'s' if len(gpus) > 1 else ''})"


def format_hours(hours: float | None) -> str:
    return "-" if hours is None else f"{hours:,.1f}"


def format_rate(images_per_s: float) -> str:
    """Images per second (or milliseconds per image) with at least three significant digits below 100."""
    return f"{images_per_s:,.1f}" if images_per_s >= 100 else f"{images_per_s:.3g}"


def startup_lines(startup, runs: int, slots: int, warm: bool) -> list[str]:
    """The start-up of ``runs`` runs on ``slots`` slots, cold and warm, from a measured
    :class:`~lightning_dims.sweep.startup.StartupCost`: what the grid pays and what warm workers save."""
    cold_h, warm_h = startup.grid_hours(runs, slots, warm=False), startup.grid_hours(runs, slots, warm=True)
    used = "warm workers (the default)" if warm else "cold runs (--cold)"
    return [
        startup.describe(),
        f"start-up of {runs} runs on {slots} slot{'s' if slots != 1 else ''}: cold {cold_h:,.2f} h, warm {warm_h:,.2f} h "
        f"(warm workers save {cold_h - warm_h:,.2f} h); the total below uses {used}",
    ]


def estimate_grid(
    runs: list[SweepRun],
    results: Path,
    runs_per_device: int | None,
    workers: int | None,
    steps: int,
    warm: bool = True,
    startup_runs: int = 2,
    budget_s: float = 0.0,
) -> int:
    """Print the cost table of the grid's unfinished points (see the module docstring); 0.

    ``warm``: the sweep will fork its runs from warm workers (the total counts warm start-ups);
    ``startup_runs``: tiny runs timed each way for the start-up (0: not measured, not counted);
    ``budget_s``: seconds of timed steps per row beyond the first ``steps`` (:func:`time_steps`).
    """
    from lightning_dims.runs.folder import RunState
    from lightning_dims.sweep.runner import point_state

    slots = machine_slots(runs_per_device, workers)
    per_device, devices, where = timed_slots(slots)
    device = "cuda" if slots[0].gpu is not None else "cpu"
    todo = [run for run in runs if point_state(run, results)[0] is not RunState.FINISHED]
    print(f"estimate: {len(todo)} of {len(runs)} points not finished; this machine: {describe_slots(slots)}")
    groups = grid_costs(todo, device)
    costs = list(groups.values())
    from lightning_dims.sweep.flops import parameter_count, training_flops_per_image

    for cost in costs:
        s = cost.setting
        cost.flops_per_image = training_flops_per_image(s.arch, s.channels, s.size)
        cost.parameters = parameter_count(s.arch, s.channels)
    calibration, ratios = calibration_rows(costs), []
    for cost in calibration:
        timings = timings_concurrently(cost.setting, per_device, steps, budget_s)
        ratios.append(statistics.fmean(seconds_per_flop_of(timing, cost.flops_per_image) for timing in timings))
        cost.timed_batch = timings[0].batch
    seconds_per_flop, relative = calibrated_seconds_per_flop(ratios)
    for cost in costs:
        cost.predicted(seconds_per_flop, relative, len(per_device), devices)
    costs.sort(key=lambda c: (c.flops_per_image, c.setting.arch, c.setting.batch_size))  # by compute per image
    header = (
        f"{'arch':<10} {'runs':>5} {'train images':>14} {'batch':>5} {'px':>4} {'ch':>2} {'precision':>10} "
        f"{'images/s':>9} {'hours':>9} {'+-':>6} {'params':>7} {'ms/image':>9} {'GFLOP/im':>8}"
    )
    print(header)
    total_runs = total_images = total_val = 0
    total_hours, total_variance, unknown = 0.0, 0.0, False
    for cost in costs:
        s = cost.setting
        error = "-" if cost.relative_error is None else f"{100 * cost.relative_error:.0f}%"
        print(
            f"{s.arch:<10} {cost.runs:>5} {cost.train_images:>14,} {s.batch_size:>5} {s.size:>4} {s.channels:>2} "
            f"{s.precision or '32-true':>10} {format_rate(cost.images_per_s):>9} {format_hours(cost.hours):>9} {error:>6} "
            f"{cost.parameters / 1e6:>6.1f}M {format_rate(1000 * devices / cost.images_per_s):>9} {cost.flops_per_image / 1e9:>8.3g}",
            flush=True,
        )
        total_runs, total_images, total_val = total_runs + cost.runs, total_images + cost.train_images, total_val + cost.val_images
        total_hours += cost.hours or 0.0
        unknown |= cost.relative_error is None
        total_variance += ((cost.hours or 0.0) * (cost.relative_error or 0.0)) ** 2
    spread = "-" if unknown else f"{format_hours(math.sqrt(total_variance))} h"
    print(f"{'training':<10} {total_runs:>5} {total_images:>14,} {'':>5} {'':>4} {'':>2} {'':>10} {'':>9} {format_hours(total_hours):>9} {spread:>6}")
    startup_h = 0.0
    if startup_runs > 0 and todo:
        from lightning_dims.sweep.startup import measure_startup

        startup = measure_startup(startup_runs, slots[0])
        startup_h = startup.grid_hours(total_runs, len(slots), warm)
        print("\n".join(startup_lines(startup, total_runs, len(slots), warm)))
    else:
        print("start-up: not measured (--estimate-startup-runs 0), not in the total")
    print(f"{'total':<10} {total_runs:>5} {total_images:>14,} {'':>5} {'':>4} {'':>2} {'':>10} {'':>9} {format_hours(total_hours + startup_h):>9} {spread:>6}")
    smaller = sorted({f"{c.setting.arch} at {c.timed_batch}" for c in calibration if c.timed_batch != c.setting.batch_size})
    spf = ", ".join(f"{c.setting.arch} {1e12 * r:.3g}" for c, r in zip(calibration, ratios))
    print(
        f"predicted: images/s = processes / (FLOPs per image x {1e12 * seconds_per_flop:.3g} ps/FLOP), FLOPs of forward + "
        f"backward counted per row (torch FlopCounterMode); ps/FLOP the mean over {len(ratios)} timed models ({spf}); "
        f"+-: the {100 * CONFIDENCE:.0f}% prediction interval of a further model's ps/FLOP (Student's t over the models)."
    )
    print(
        f"timed: at least {steps} training steps (forward, backward, Adam) of each calibration row, more while {budget_s:g} s "
        f"last, the fastest step kept, after {WARMUP_STEPS} warm-up step, on random inputs of the row's batch, size and channels"
        + (f" (on the CPU at a smaller batch where a step would not fit: {', '.join(smaller)})" if smaller else "")
        + f", {len(per_device)} process{'es' if len(per_device) > 1 else ''} at once on {where} ({per_device[0].describe()} "
        f"each); images/s is their sum over all devices; rows by FLOPs per image."
    )
    print(
        f"not timed: validation ({total_val:,} images, forward only), the test pass and the callbacks' measurements "
        "(d_repr, FGSM, K_F/d_data); runs sharing a device are timed with runs of the same arch."
    )
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
