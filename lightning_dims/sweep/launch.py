"""Run a sweep's grid as a job array through submitit: on SLURM, or on this machine (``local``).

The grid is cut into ``tasks`` disjoint shares (``shard i/n``, the same cut as ``--shard``); array
task ``i`` runs its share through the sweep runner (:func:`~lightning_dims.sweep.runner.run_sweep`),
so every rule of a local sweep holds: a point is claimed before it runs (exactly once, whatever
else works on the results folder), a finished point is skipped, an interrupted one resumes from
``last.ckpt``, and the task waits for points of its share that another process holds (taking them
over when that holder dies). Inside a task, runs go at once in slots
(:mod:`~lightning_dims.sweep.slots`): ``runs_per_device`` per GPU the task was given, or ``workers``
on its CPU cores; each slot forks its runs from a warm worker (:mod:`~lightning_dims.sweep.warm`)
unless the task is cold.

Preemption and time limits: submitit's signal (``USR2``, sent by SLURM 90 s before the time limit
or by a preemption that signals first) reaches the task, which stops starting points, sends SIGTERM
to its running ``fit`` children (each writes an ``interrupted`` record and frees its claim; they
start with that signal blocked, so SLURM's copy of it does not kill them), and lets submitit
requeue it: the requeued task runs its share again and resumes. A SIGTERM alone (SLURM's
preemption without requeue) stops the task the same way without requeueing. A task killed
outright leaves its claims to go stale: the requeued task (or any sweep) takes them over, at once
on the same host, after ``LIGHTNING_DIMS_CLAIM_TIMEOUT`` (600 s) without a heartbeat elsewhere.
"""

from __future__ import annotations

import math
import re
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightning_dims.compat import preview_slurm_executor_class, sbatch_text, submitit_requeue_signal_name
from lightning_dims.errors import LightningDimsError
from lightning_dims.sweep.grid import SweepRun, shard
from lightning_dims.sweep.runner import RunnerControl, run_sweep
from lightning_dims.sweep.slots import Slot, machine_slots

__all__ = [
    "LAUNCHERS",
    "LOCAL_TIME_MIN",
    "STOP_GRACE_S",
    "ClusterOptions",
    "LaunchError",
    "SweepTask",
    "default_tasks",
    "local_executor",
    "local_slot_shares",
    "make_executor",
    "parse_slurm_options",
    "parse_time",
    "plan_tasks",
    "requeue_signal",
    "sbatch_script",
    "slurm_executor",
    "slurm_runs_per_task",
    "task_shares",
    "wait_for",
]

STOP_GRACE_S = 60.0
"""Seconds a stopped task gives its ``fit`` children to write their records before SIGKILL (SLURM
signals 90 s before the end)."""

LOCAL_TIME_MIN = 60 * 24 * 30
"""Time limit of a local task when none is given (submitit's local default is 2 minutes)."""


class LaunchError(LightningDimsError, ValueError):
    """Launcher options that cannot work; the message names the fix."""


def parse_time(text: str) -> int:
    """A SLURM time limit in whole minutes (rounded up): ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``,
    ``D-HH:MM`` or ``D-HH:MM:SS``."""
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text.strip())
    if not match:
        raise LaunchError(f"--time {text!r}: use minutes, HH:MM:SS or D-HH:MM:SS as SLURM does")
    days, first, second, third = match.groups()
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = int(days) * 86400 + int(first) * 3600 + int(second or 0) * 60 + int(third or 0)
    elif third is not None:  # HH:MM:SS
        seconds = int(first) * 3600 + int(second) * 60 + int(third)
    elif second is not None:  # MM:SS
        seconds = int(first) * 60 + int(second)
    else:  # MM
        seconds = int(first) * 60
    if seconds <= 0:
        raise LaunchError(f"--time {text!r} is no time at all: give the task's wall-clock limit")
    return math.ceil(seconds / 60)


def parse_slurm_options(pairs: list[str]) -> dict[str, str]:
    """``["account=lab", "mem=64G"]`` -> ``{"account": "lab", "mem": "64G"}`` (sbatch's long option names)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LaunchError(f"--slurm-option {pair!r}: give KEY=VALUE with sbatch's long option name, e.g. account=lab")
        options[key.strip().lstrip("-")] = value.strip()
    return options


@dataclass
class ClusterOptions:
    """What each array task asks of the cluster (SLURM names; the local launcher uses ``time_min``)."""

    partition: str | None = None
    gpus_per_task: int | None = None
    cpus_per_task: int | None = None
    time_min: int | None = None
    array_parallelism: int | None = None
    slurm_options: dict[str, str] = field(default_factory=dict)
    setup: list[str] = field(default_factory=list)
    job_name: str = "lightning-dims"

    def slurm_parameters(self) -> dict[str, Any]:
        """Parameters of submitit's ``SlurmExecutor.update_parameters``: one task per array element."""
        parameters: dict[str, Any] = {"job_name": self.job_name, "nodes": 1, "ntasks_per_node": 1}
        for name in ("partition", "gpus_per_task", "cpus_per_task", "array_parallelism"):
            if getattr(self, name) is not None:
                parameters[name] = getattr(self, name)
        if self.cpus_per_task is not None:  # Slurm 22.05-23.02: srun ignores sbatch's --cpus-per-task (one CPU)
            parameters["srun_args"] = [f"--cpus-per-task={self.cpus_per_task}"]
        if self.time_min is not None:
            parameters["time"] = self.time_min
        if self.setup:
            parameters["setup"] = list(self.setup)
        if self.slurm_options:
            parameters["additional_parameters"] = dict(self.slurm_options)
        return parameters


def requeue_signal() -> int:
    """The signal submitit checkpoints and requeues on (``USR2`` unless ``SUBMITIT_PREEMPT_SIGNAL`` says otherwise)."""
    return getattr(signal, f"SIG{submitit_requeue_signal_name()}")


class SweepTask:
    """One array task: its share of the grid, run through the sweep runner (picklable; submitit runs it).

    Args:
        runs: the share's points.
        results: the (shared) results folder.
        cwd: where the commands run (relative paths of the sweep resolve there).
        label: ``task i/n`` for messages.
        slots: where its runs go; None: laid out on the node when the task starts (the GPUs and
            cores SLURM gave it) from ``runs_per_device`` / ``workers``.
        warm: fork the runs from warm workers (False: every run starts cold).
    """

    def __init__(self, runs: list[SweepRun], results: Path, cwd: Path, label: str, slots: list[Slot] | None = None,
                 runs_per_device: int | None = None, workers: int | None = None, warm: bool = True):  # fmt: skip
        self.runs = list(runs)
        self.results = Path(results)
        self.cwd = Path(cwd)
        self.label = label
        self.slots = slots
        self.runs_per_device = runs_per_device
        self.workers = workers
        self.warm = warm
        self._control: RunnerControl | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "_control"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._control = None

    def __call__(self) -> dict[str, int]:
        slots = self.slots or machine_slots(self.runs_per_device, self.workers)
        self._control = RunnerControl(block_signals=(requeue_signal(),))
        signal.signal(signal.SIGTERM, lambda signum, frame: self._control.stop(signal.SIGTERM))
        print(f"{self.label}: {len(self.runs)} points, {len(slots)} at once in slots {[s.describe() for s in slots]}", flush=True)
        outcomes = run_sweep(self.runs, self.results, cwd=self.cwd, wait=True, slots=slots, control=self._control, warm=self.warm)
        counts = dict(Counter(outcome.status.value for outcome in outcomes))
        print(f"{self.label}: {counts}", flush=True)
        return counts

    def checkpoint(self) -> Any:
        """Called by submitit on its requeue signal: stop the runs (records, claims), then requeue this task."""
        from submitit.helpers import DelayedSubmission

        control = self._control
        if control is not None:
            print(f"{self.label}: requeue signal; stopping the running points", flush=True)
            control.stop(signal.SIGTERM)
            if not control.wait_idle(STOP_GRACE_S):
                control.stop(signal.SIGKILL)
                control.wait_idle(10.0)
        return DelayedSubmission(self)


def task_shares(runs: list[SweepRun], tasks: int) -> list[list[SweepRun]]:
    """The grid cut into ``tasks`` non-empty shares: share ``i`` is ``shard(i+1/tasks)``."""
    tasks = max(1, min(tasks, len(runs)))
    return [shard(runs, f"{index + 1}/{tasks}") for index in range(tasks)]


def default_tasks(points: int, runs_per_task: int) -> int:
    """One wave of runs per task: ``ceil(points / runs at once per task)``."""
    return max(1, math.ceil(points / max(1, runs_per_task)))


def slurm_runs_per_task(options: ClusterOptions, runs_per_device: int | None, workers: int | None) -> int:
    """Runs at once in one SLURM task: ``gpus_per_task x runs_per_device``, or ``workers`` on CPU."""
    if options.gpus_per_task:
        if workers is not None:
            raise LaunchError("--workers splits CPU cores; with --gpus-per-task use --runs-per-device R (R runs per GPU)")
        return options.gpus_per_task * (runs_per_device or 1)
    return workers or runs_per_device or 1


def local_slot_shares(slots: list[Slot], tasks: int) -> list[list[Slot]]:
    """This machine's slots dealt among ``tasks`` local tasks that run at once (each needs at least one)."""
    if tasks > len(slots):
        raise LaunchError(
            f"--tasks {tasks}: the local launcher runs every task at once, and this machine takes {len(slots)} "
            "runs at once; use at most that many tasks (or more --workers / --runs-per-device)"
        )
    return [slots[index::tasks] for index in range(tasks)]


def slurm_executor(folder: Path, options: ClusterOptions, preview: bool = False):
    """submitit's SLURM executor with ``options``; ``preview``: without needing ``srun`` (to show the script)."""
    from submitit import SlurmExecutor

    executor_class = preview_slurm_executor_class() if preview else SlurmExecutor
    try:
        executor = executor_class(folder)
    except RuntimeError as error:
        raise LaunchError(
            f"--launcher slurm: {error} (run it on a SLURM login node; --dry-run prints the sbatch script anywhere)"
        ) from None
    try:
        executor.update_parameters(**options.slurm_parameters())
    except ValueError as error:
        raise LaunchError(f"--launcher slurm: {str(error).splitlines()[0]}") from None
    return executor


def local_executor(folder: Path, options: ClusterOptions):
    """submitit's local executor (each array task a process on this machine)."""
    from submitit import LocalExecutor

    executor = LocalExecutor(folder)
    executor.update_parameters(timeout_min=options.time_min or LOCAL_TIME_MIN)
    return executor


def sbatch_script(folder: Path, options: ClusterOptions, tasks: int) -> str:
    """The sbatch script ``--launcher slurm`` submits for an array of ``tasks`` (submitit's own text)."""
    return sbatch_text(slurm_executor(folder, options, preview=True), tasks)


def plan_tasks(
    runs: list[SweepRun],
    results: Path,
    cwd: Path,
    launcher: str,
    options: ClusterOptions,
    tasks: int | None = None,
    runs_per_device: int | None = None,
    workers: int | None = None,
    warm: bool = True,
) -> list[SweepTask]:
    """The array's tasks: ``tasks`` shares of ``runs`` (default: one wave of runs per task).

    ``slurm``: each task lays its slots out on its node (``gpus_per_task x runs_per_device``, or
    ``workers`` on CPU). ``local``: the tasks all run at once on this machine, so its slots are
    dealt among them.
    """
    if tasks is not None and tasks < 1:
        raise LaunchError(f"--tasks must be at least 1, got {tasks}")
    if launcher == "slurm":
        per_task = slurm_runs_per_task(options, runs_per_device, workers)
        shares = task_shares(runs, tasks or default_tasks(len(runs), per_task))
        slot_shares = [None] * len(shares)
    else:
        slots = machine_slots(runs_per_device, workers)
        shares = task_shares(runs, tasks or len(slots))
        slot_shares = local_slot_shares(slots, len(shares))
    return [
        SweepTask(share, results, cwd, f"task {index + 1}/{len(shares)}", slot_share, runs_per_device, workers, warm)
        for index, (share, slot_share) in enumerate(zip(shares, slot_shares))
    ]


LAUNCHERS = {"slurm": slurm_executor, "local": local_executor}


def make_executor(launcher: str, folder: Path, options: ClusterOptions):
    """The submitit executor of ``launcher`` (``slurm`` or ``local``)."""
    if launcher not in LAUNCHERS:
        raise LaunchError(f"--launcher {launcher!r}: choose one of {sorted(LAUNCHERS)}")
    return LAUNCHERS[launcher](folder, options)


def wait_for(jobs: list, poll_s: float = 5.0) -> list[dict[str, int] | str]:
    """Wait for local jobs; each task's status counts, or its error's last line."""
    import time

    while not all(job.done() for job in jobs):
        time.sleep(poll_s)
    finished = []
    for job in jobs:
        try:
            finished.append(job.result())
        except Exception as error:  # a task that died: its error, the run states tell the rest
            finished.append(str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__)
    return finished
