"""What each run pays before it trains, measured on this machine: cold (its own program) and warm (forked).

A probe grid of tiny real runs (:func:`probe_sweep`: timm's 0.37M-parameter ``test_resnet`` on the
embedded digits, 16 px, one epoch of 40 images, W&B offline) goes through the sweep runner's own
:func:`~lightning_dims.sweep.runner.run_one` in a temporary folder, one run after the other in
one slot, as one slot of a sweep runs them: cold, each run its own ``lightning-dims fit``
program; warm, each forked from one :class:`~lightning_dims.sweep.warm.WarmWorker`.

A run's **start-up** is its wall time as the runner sees it (start to exit) minus the wall time
its record reports (``wall_time_s``: fit, test, record, W&B finish): the interpreter and imports
(cold only), the CLI's parse, the data setup of the tiny set, W&B's start, the claim, the exit.
A worker's **preload** (imports, parser, W&B's service) is paid once per slot, not per run. The
probe's ``--trainer.accelerator auto`` puts it on the slot's GPU when there is one, so a GPU
run's CUDA start counts, as it does in every real run. W&B is offline: an online start adds the
server's round trips.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lightning_dims.records import read_record
from lightning_dims.records.store import record_path
from lightning_dims.sweep.grid import SweepRun, expand_grid
from lightning_dims.sweep.runner import PointStatus, RunnerControl, run_one
from lightning_dims.sweep.slots import Slot
from lightning_dims.sweep.warm import WarmWorker

__all__ = ["ProbeFailed", "StartupCost", "SweepTiming", "measure_startup", "probe_sweep", "time_probe_runs"]


def probe_sweep(runs: int) -> dict:
    """A grid of ``runs`` tiny ``fit`` points (data seeds 0, 1, ...: distinct run ids, the same work)."""
    return {
        "program": "lightning-dims",
        "method": "grid",
        "parameters": {"data.seed": {"values": list(range(runs))}},
        "command": [
            "${env}", "${program}", "fit", "--preset=none", "--data_properties=false", "--model.arch=test_resnet",
            "--data.name=digits", "--data.classes=[3,8]", "--data.train_size=40", "--data.val_size=10", "--data.test_size=20", "--data.size=16",
            "--data.batch_size=20", "--trainer.max_epochs=1", "--trainer.accelerator=auto",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--wandb.mode=offline",
            "${args}",
        ],
    }  # fmt: skip


@dataclass
class SweepTiming:
    """One slot's runs of the probe grid, in sequence: wall time in all, and per run."""

    warm: bool
    total_s: float
    run_s: list[float] = field(default_factory=list)  # start to exit, as the runner sees each run
    work_s: list[float] = field(default_factory=list)  # the record's wall_time_s
    preload_s: float | None = None  # the worker's, once (warm)

    @property
    def startup_s(self) -> list[float]:
        return [run - work for run, work in zip(self.run_s, self.work_s)]

    @property
    def startup_median_s(self) -> float:
        return statistics.median(self.startup_s)


class ProbeFailed(RuntimeError):
    """A probe run did not finish (its log says why)."""


def time_probe_runs(runs: int, warm: bool, slot: Slot | None = None, folder: Path | None = None) -> SweepTiming:
    """Run :func:`probe_sweep` (``runs`` points) in one slot, cold or warm, and time it (module docstring).

    ``folder``: where the results go (default: a temporary folder, removed afterwards). The total
    includes the worker's start and end (warm).
    """
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="lightning-dims-startup-") as scratch:
            return time_probe_runs(runs, warm, slot, Path(scratch))
    slot = slot or Slot()
    points: list[SweepRun] = expand_grid(probe_sweep(runs), cwd=folder)
    results = folder / ("warm" if warm else "cold")
    control = RunnerControl()
    worker = WarmWorker(slot.environment()) if warm else None
    timing = SweepTiming(warm, 0.0)
    started = time.perf_counter()
    try:
        if worker is not None:
            worker.start()  # its preload counts in the total, not in the first run
        for point in points:
            outcome = run_one(point, results, True, folder, slot.environment(), control, worker)
            if outcome.status is not PointStatus.FINISHED:
                raise ProbeFailed(f"start-up probe run {point.run_id} {outcome.status}: see {outcome.log}")
            timing.run_s.append(outcome.seconds)
            timing.work_s.append(float(read_record(record_path(results, point.run_id)).wall_time_s))
    finally:
        if worker is not None:
            worker.close()
            timing.preload_s = worker.preload_s
    timing.total_s = time.perf_counter() - started
    return timing


@dataclass(frozen=True)
class StartupCost:
    """Median start-up per run, cold and warm, and a worker's preload (seconds)."""

    cold_s: float
    warm_s: float
    preload_s: float
    runs: int

    def grid_hours(self, runs: int, slots: int, warm: bool) -> float:
        """Wall-clock hours ``runs`` start-ups take on ``slots`` slots at once (each pays its own; a warm
        slot also its worker's preload)."""
        slots = max(1, slots)
        per_run = self.warm_s if warm else self.cold_s
        once = self.preload_s if warm else 0.0
        return (runs * per_run / slots + (once if runs else 0.0)) / 3600

    def describe(self) -> str:
        return (
            f"start-up per run (measured here: {self.runs} tiny run{'s' if self.runs != 1 else ''} each way, one slot, "
            f"W&B offline): cold {self.cold_s:.1f} s, warm {self.warm_s:.1f} s (+ {self.preload_s:.1f} s once per worker)"
        )


def measure_startup(runs: int = 2, slot: Slot | None = None) -> StartupCost:
    """:class:`StartupCost` from ``runs`` probe runs cold and ``runs`` warm in ``slot``."""
    cold = time_probe_runs(runs, warm=False, slot=slot)
    warm = time_probe_runs(runs, warm=True, slot=slot)
    return StartupCost(cold.startup_median_s, warm.startup_median_s, float(warm.preload_s or 0.0), runs)
