"""What a grid will cost on this machine, before it starts: training steps timed per architecture.

For every unfinished point the fit command is resolved as ``fit`` would (the paper preset, the
precision this machine gets), giving its architecture, batch size, image size, channels and the
training images it will process (``train_size x max_epochs``). Points are grouped by
(architecture, batch size, image size, precision); for each group a few training steps
(forward, backward, Adam step; after one warm-up step) are timed on random inputs of that shape,
in as many processes at once as the sweep would run on one device (``runs_per_device`` on GPU 0,
or ``workers`` on the CPU), started together. Their summed images/s, times the number of devices,
gives the group's hours: ``training images / images per second / 3600``.

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
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from lightning_dims.sweep.grid import SweepRun
from lightning_dims.sweep.slots import Slot, describe_slots, machine_slots

WARMUP_STEPS = 1


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

    @property
    def hours(self) -> float | None:
        return None if not self.images_per_s else self.train_images / self.images_per_s / 3600


# ---- one process: time steps ---------------------------------------------------------------------
def autocast_dtype(precision: str | None):
    import torch

    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(str(precision))


def training_step_timer(setting: StepSetting):
    """A function running one training step of ``setting`` (random inputs: only the time is used)."""
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

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            logits = model(x)
        F.cross_entropy(logits.float(), y).backward()
        optimizer.step()

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step, synchronize


def time_steps(setting: StepSetting, steps: int, go=None) -> float:
    """Images per second of ``steps`` training steps after :data:`WARMUP_STEPS`; ``go()`` is called between."""
    step, synchronize = training_step_timer(setting)
    for _ in range(WARMUP_STEPS):
        step()
    synchronize()
    if go is not None:
        go()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize()
    return setting.batch_size * steps / (time.perf_counter() - started)


def worker_main(argv: list[str]) -> int:
    """Child entry: ``python -m lightning_dims.sweep.estimate SETTING_JSON STEPS``; warms up, prints
    ``ready``, waits for a line on stdin, times, prints ``{"images_per_s": ...}``."""
    setting, steps = StepSetting(**json.loads(argv[0])), int(argv[1])

    def go() -> None:
        print("ready", flush=True)
        sys.stdin.readline()

    print(json.dumps({"images_per_s": time_steps(setting, steps, go)}), flush=True)
    return 0


# ---- several processes at once -------------------------------------------------------------------
def time_concurrently(setting: StepSetting, slots: list[Slot], steps: int) -> list[float]:
    """Images/s of each of ``len(slots)`` processes timing ``setting`` together (one per slot, its
    environment: GPU and threads); all warm up first, then all start timing at the same moment."""
    import os

    children = []
    for slot in slots:
        env = {**os.environ, **slot.environment()}
        command = [sys.executable, "-m", "lightning_dims.sweep.estimate", json.dumps(asdict(setting)), str(steps)]
        children.append(subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    try:
        for child in children:
            line = child.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"timing {setting.describe()} failed before it started (exit code {child.wait()})")
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        rates = []
        for child in children:
            output, _ = child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"timing {setting.describe()} failed (exit code {child.returncode})")
            rates.append(float(json.loads(output.strip().splitlines()[-1])["images_per_s"]))
        return rates
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()


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
    """Images per second with at least three significant digits below 100."""
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
) -> int:
    """Print the cost table of the grid's unfinished points (see the module docstring); 0.

    ``warm``: the sweep will fork its runs from warm workers (the total counts warm start-ups);
    ``startup_runs``: tiny runs timed each way for the start-up (0: not measured, not counted).
    """
    from lightning_dims.runs.folder import RunState
    from lightning_dims.sweep.runner import point_state

    slots = machine_slots(runs_per_device, workers)
    per_device, devices, where = timed_slots(slots)
    device = "cuda" if slots[0].gpu is not None else "cpu"
    todo = [run for run in runs if point_state(run, results)[0] is not RunState.FINISHED]
    print(f"estimate: {len(todo)} of {len(runs)} points not finished; this machine: {describe_slots(slots)}")
    groups = grid_costs(todo, device)
    header = f"{'arch':<10} {'runs':>5} {'train images':>14} {'batch':>5} {'px':>4} {'ch':>2} {'precision':>10} {'images/s':>9} {'hours':>9}"
    print(header)
    total_runs = total_images = total_val = 0
    total_hours = 0.0
    for cost in sorted(groups.values(), key=lambda c: (c.setting.arch, c.setting.batch_size)):
        rates = time_concurrently(cost.setting, per_device, steps)
        cost.images_per_s = sum(rates) * devices
        s = cost.setting
        print(
            f"{s.arch:<10} {cost.runs:>5} {cost.train_images:>14,} {s.batch_size:>5} {s.size:>4} {s.channels:>2} "
            f"{s.precision or '32-true':>10} {format_rate(cost.images_per_s):>9} {format_hours(cost.hours):>9}",
            flush=True,
        )
        total_runs, total_images, total_val = total_runs + cost.runs, total_images + cost.train_images, total_val + cost.val_images
        total_hours += cost.hours or 0.0
    print(f"{'training':<10} {total_runs:>5} {total_images:>14,} {'':>5} {'':>4} {'':>2} {'':>10} {'':>9} {format_hours(total_hours):>9}")
    startup_h = 0.0
    if startup_runs > 0 and todo:
        from lightning_dims.sweep.startup import measure_startup

        startup = measure_startup(startup_runs, slots[0])
        startup_h = startup.grid_hours(total_runs, len(slots), warm)
        print("\n".join(startup_lines(startup, total_runs, len(slots), warm)))
    else:
        print("start-up: not measured (--estimate-startup-runs 0), not in the total")
    print(f"{'total':<10} {total_runs:>5} {total_images:>14,} {'':>5} {'':>4} {'':>2} {'':>10} {'':>9} {format_hours(total_hours + startup_h):>9}")
    print(
        f"timed: {steps} training steps (forward, backward, Adam) per row after {WARMUP_STEPS} warm-up step, on random "
        f"inputs of the row's batch, size and channels, {len(per_device)} process{'es' if len(per_device) > 1 else ''} "
        f"at once on {where} ({per_device[0].describe()} each); images/s is their sum over all devices."
    )
    print(
        f"not timed: validation ({total_val:,} images, forward only), the test pass and the callbacks' measurements "
        "(d_repr, FGSM, K_F/d_data); runs sharing a device are timed with runs of the same arch."
    )
    return 0


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv[1:]))
