"""Run the grid of a sweep file locally, each point a ``lightning-dims fit`` subprocess, exactly once.

Any number of runners (threads, processes, nodes sharing the results folder over NFS) can work on
one grid: a point is run only by the process holding its claim (:mod:`lightning_dims.runs.claims`,
in the point's run folder), which passes it on to its ``fit`` child. Per point (its
:class:`~lightning_dims.runs.folder.RunState`):

* a finished results record exists: skipped (``already done``);
* an unreadable record: moved aside (``*.corrupt``, with a warning) and the point re-run;
* claimed by a live process elsewhere: left to it (``claimed``; ``wait=True`` waits for it, and
  takes the point over if its holder dies);
* ``checkpoints/last.ckpt`` and no finished record: resumed with ``--ckpt_path last``;
* otherwise started fresh.

Records go to ``<results>/<run_id>.record.json``, run folders to ``<results>/runs/<run_id>/``,
each run's output to ``<results>/logs/<run_id>.log`` (:class:`~lightning_dims.runs.folder.SweepLayout`).

Runs going at once each take a :class:`~lightning_dims.sweep.slots.Slot` (the GPU the run sees,
its CPU threads). Warm (the default): each slot has a worker that loaded torch, Lightning, W&B and
the ``fit`` command once and forks each run from there (:mod:`lightning_dims.sweep.warm`; each
run is still its own process, with its own log and exit status); ``warm=False`` (``--cold``)
starts every run as its own program. Commands other than ``lightning-dims fit`` always run cold. A :class:`RunnerControl` lets a signal handler stop a sweep: no further point
starts, and the running ``fit`` children get SIGTERM (each writes an ``interrupted`` record and
releases its claim; the next attempt resumes from ``last.ckpt``).
"""

from __future__ import annotations

import os
import queue
import signal
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_dims.records.store import RecordState, inspect_record, is_finished, move_aside
from lightning_dims.runs.claims import TOKEN_ENV, ClaimHeldError
from lightning_dims.runs.folder import RunState, SweepLayout
from lightning_dims.sweep.grid import SweepRun, runnable
from lightning_dims.sweep.slots import Slot
from lightning_dims.sweep.warm import WarmWorker, WorkerError, warm_arguments
from lightning_dims.utils import StrEnum

__all__ = [
    "WAIT_POLL_S",
    "Lane",
    "PointOutcome",
    "PointStatus",
    "Progress",
    "RunnerControl",
    "fit_command",
    "point_state",
    "run_one",
    "run_sweep",
    "stopped_points",
]

WAIT_POLL_S = 30.0


class PointStatus(StrEnum):
    """What happened to one grid point in this process (printed as its value).

    ``FINISHED``: ran to a finished record here; ``FAILED``: ran, no finished record; ``SKIPPED``:
    already finished; ``CLAIMED``: another live process is running it; ``STOPPED``: not started,
    or interrupted, because the sweep was stopped (a preemption).
    """

    FINISHED = "finished"
    FAILED = "failed"
    SKIPPED = "skipped"
    CLAIMED = "claimed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class PointOutcome:
    """What happened to one grid point in this process: its :class:`PointStatus`, how long it ran, its log.

    ``detail``: who holds a ``CLAIMED`` point.
    """

    run_id: str
    status: PointStatus
    seconds: float
    log: Path | None
    detail: str | None = None


class RunnerControl:
    """Stops a sweep from another thread or a signal handler, and knows when it has wound down.

    ``block_signals``: signals the ``fit`` children start with blocked (inherited through exec, and
    by the runs a warm worker forks from the worker's own start):
    a cluster's requeue signal (submitit's ``USR2``), which SLURM sends to every process of a
    job step, is for the launcher task alone; it stops the children itself, with SIGTERM.
    """

    def __init__(self, block_signals: tuple[int, ...] = ()):
        self.block_signals = tuple(block_signals)
        self.stopped = threading.Event()
        self._children: set = set()  # subprocess.Popen or warm.ForkedRun
        self._active = 0
        self._changed = threading.Condition()

    @contextmanager
    def working(self) -> Iterator[None]:
        """Marks a point being worked on (claimed) by this process, until the block ends."""
        with self._changed:
            self._active += 1
        try:
            yield
        finally:
            with self._changed:
                self._active -= 1
                self._changed.notify_all()

    def start(self, spawn: Callable[[], Any]) -> Any:
        """Start a child with ``spawn()`` (a :class:`subprocess.Popen` or a forked run), unless the sweep is stopped (None)."""
        with self._changed:
            if self.stopped.is_set():
                return None
            with self.child_signals():
                child = spawn()
            self._children.add(child)
            return child

    @contextmanager
    def child_signals(self) -> Iterator[None]:
        """Block :attr:`block_signals` in this thread for the block: processes it starts inherit the mask."""
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, self.block_signals) if self.block_signals else None
        try:
            yield
        finally:
            if previous is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def wait(self, child: Any) -> int:
        code = child.wait()
        with self._changed:
            self._children.discard(child)
        return code

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Start nothing more; send ``signum`` to the running children."""
        with self._changed:
            self.stopped.set()
            for child in self._children:
                if child.poll() is None:
                    child.send_signal(signum)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no point is being worked on (children ended, claims released); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._active == 0, timeout)


def point_state(run: SweepRun, results: Path) -> tuple[RunState, str | None]:
    """``(state, detail)`` of a grid point: its run folder's :meth:`~lightning_dims.runs.folder.RunFolder.state`."""
    return SweepLayout(results).folder(run.run_id).state()


def fit_command(run: SweepRun, results: Path) -> list[str]:
    """The run's argv with the program resolved, its folders and id set, and ``${args_json_file}`` written."""
    layout = SweepLayout(results)
    argv = runnable(run.argv, run.parameters, layout.args_file(run.run_id))
    argv += [f"--run_id={run.run_id}", f"--results_dir={results}", f"--run_dir={layout.run_dir}"]
    if layout.folder(run.run_id).last_checkpoint.is_file():
        argv.append("--ckpt_path=last")
    return argv


def run_one(
    run: SweepRun,
    results: Path,
    quiet: bool = False,
    cwd: Path | None = None,
    environment: Mapping[str, str] | None = None,
    control: RunnerControl | None = None,
    worker: WarmWorker | None = None,
) -> PointOutcome:
    """Run one grid point if it is not finished and nobody else is running it (module docstring).

    ``environment``: variables added to the ``fit`` child's (a slot's GPU and threads). ``worker``:
    fork a ``lightning-dims fit`` command from this warm worker instead of starting it cold.
    """
    control = control or RunnerControl()
    if control.stopped.is_set():
        return PointOutcome(run.run_id, PointStatus.STOPPED, 0.0, None)
    layout = SweepLayout(results)
    folder = layout.folder(run.run_id)
    path = folder.record_file
    state, _, reason = inspect_record(path)
    if state is RecordState.FINISHED:
        return PointOutcome(run.run_id, PointStatus.SKIPPED, 0.0, None)
    if state is RecordState.CORRUPT:
        move_aside(path, reason)
    try:
        claim = folder.claim(f"sweep point {run.run_id}")
    except ClaimHeldError as error:
        holder = folder.claim_holder()
        return PointOutcome(run.run_id, PointStatus.CLAIMED, 0.0, None, holder.holder if holder else str(error))
    with control.working(), claim:
        if is_finished(path):  # finished by another process between our look and our claim
            return PointOutcome(run.run_id, PointStatus.SKIPPED, 0.0, None)
        log = layout.log(run.run_id)
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = fit_command(run, results)
        extra = dict(environment or {})
        started = time.perf_counter()
        with log.open("a") as handle:
            setting = "".join(f"{name}={shlex.quote(str(value))} " for name, value in sorted(extra.items()))
            handle.write(f"$ {setting}{shlex.join(argv)}\n")  # pastes into a shell as it ran
            env = {**run.environment, **os.environ, **extra, TOKEN_ENV: claim.token}  # the user's environment wins over the sweep file's
            args = warm_arguments(argv) if worker is not None else None
            if args is not None and not worker.alive:
                try:
                    with control.child_signals():  # outside the control's lock: slots preload side by side
                        worker.start()
                except WorkerError as error:
                    handle.write(f"# {error}; this run starts cold\n")
                    args = None
            if args is not None:
                handle.write(f"# forked by warm worker {worker.process.pid} (preloaded in {worker.preload_s:.1f} s)\n")
            handle.flush()

            def spawn():
                if args is not None:
                    return worker.run(args, cwd, env, log)
                return subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, env=env)

            child = control.start(spawn)
            if child is None:
                return PointOutcome(run.run_id, PointStatus.STOPPED, 0.0, None)
            code = control.wait(child)
    if code == 0 and is_finished(path):
        status = PointStatus.FINISHED
    else:
        status = PointStatus.STOPPED if control.stopped.is_set() else PointStatus.FAILED
    return PointOutcome(run.run_id, status, time.perf_counter() - started, log)


def stopped_points(outcomes: list[PointOutcome]) -> str:
    """What a stopped sweep leaves: ``N of M points finished, k interrupted (resumable), j not started, f failed``."""
    finished = sum(o.status in (PointStatus.FINISHED, PointStatus.SKIPPED) for o in outcomes)
    interrupted = sum(o.status is PointStatus.STOPPED and o.log is not None for o in outcomes)
    waiting = sum(o.status is PointStatus.STOPPED and o.log is None for o in outcomes)
    failed = sum(o.status is PointStatus.FAILED for o in outcomes)
    return (
        f"{finished} of {len(outcomes)} points finished, {interrupted} interrupted (each resumes from its last "
        f"checkpoint), {waiting} not started" + (f", {failed} failed" if failed else "")
    )


class Lane:
    """A slot and its warm worker (None: cold; started by the slot's first run), used by one run at a time."""

    def __init__(self, slot: Slot, worker: WarmWorker | None):
        self.slot = slot
        self.worker = worker

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


class Progress:
    """Prints ``[k/n] status run_id parameters (seconds; log) ETA`` as points complete (thread-safe)."""

    def __init__(self, total: int, workers: int, quiet: bool):
        self.total, self.workers, self.quiet = total, max(1, workers), quiet
        self.done = 0
        self.run_seconds: list[float] = []
        self.lock = threading.Lock()

    def eta(self) -> str:
        remaining = self.total - self.done
        if not self.run_seconds or remaining <= 0:
            return ""
        seconds = sum(self.run_seconds) / len(self.run_seconds) * remaining / self.workers
        return f", ETA {int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"

    def report(self, run: SweepRun, outcome: PointOutcome) -> None:
        with self.lock:
            if outcome.status is PointStatus.STOPPED and outcome.log is None:
                return  # a point a stopped sweep did not start: not progress; the closing line counts them
            self.done += 1
            if outcome.status in (PointStatus.FINISHED, PointStatus.FAILED):
                self.run_seconds.append(outcome.seconds)
            if self.quiet:
                return
            where = f"; log {outcome.log}" if outcome.log else ""
            who = f" by {outcome.detail}" if outcome.detail else ""
            print(
                f"[{self.done}/{self.total}] {outcome.status}{who} {run.run_id} {run.parameters} "
                f"({outcome.seconds:.0f} s{where}){self.eta()}",
                flush=True,
            )


def run_sweep(
    runs: list[SweepRun],
    results: Path,
    workers: int = 1,
    quiet: bool = False,
    cwd: Path | None = None,
    wait: bool = False,
    poll_s: float = WAIT_POLL_S,
    slots: list[Slot] | None = None,
    control: RunnerControl | None = None,
    warm: bool = True,
) -> list[PointOutcome]:
    """Run ``runs``, as many at once as there are ``slots`` (default: ``workers`` slots that leave the
    environment as it is), in ``cwd`` (default: the current folder, like a W&B agent; relative paths
    in the sweep's command resolve there); outcomes in grid order.

    Each run takes a free slot, first come first served (so GPUs are dealt round robin) and gives
    it back when it ends. ``wait``: after the pass, keep watching points claimed by other processes
    until each is finished, and run those whose holder died (their claim goes stale). ``control``:
    to stop the sweep from a signal handler (:class:`RunnerControl`). ``warm``: each slot forks its
    ``fit`` runs from a warm worker (started when the slot's first run starts, ended with the sweep);
    False: every run starts cold.
    """
    results = results.resolve()
    results.mkdir(parents=True, exist_ok=True)
    slots = list(slots) if slots else [Slot()] * max(1, workers)
    control = control or RunnerControl()
    lanes = [Lane(slot, WarmWorker(slot.environment()) if warm else None) for slot in slots]
    free: queue.SimpleQueue[Lane] = queue.SimpleQueue()
    for lane in lanes:
        free.put(lane)
    progress = Progress(len(runs), len(slots), quiet)

    def in_a_slot(run: SweepRun) -> PointOutcome:
        lane = free.get()
        try:
            return run_one(run, results, quiet, cwd, lane.slot.environment(), control, lane.worker)
        finally:
            free.put(lane)

    def attempt(run: SweepRun) -> PointOutcome:
        outcome = in_a_slot(run)
        if outcome.status is not PointStatus.CLAIMED or not wait:
            progress.report(run, outcome)
        return outcome

    try:
        with ThreadPoolExecutor(max_workers=len(slots)) as pool:
            outcomes = dict(zip((run.run_id for run in runs), pool.map(attempt, runs)))
            pending = [run for run in runs if outcomes[run.run_id].status is PointStatus.CLAIMED] if wait else []
            while pending and not control.stopped.wait(poll_s):
                for run, outcome in zip(pending, pool.map(in_a_slot, pending)):
                    if outcome.status is not PointStatus.CLAIMED:
                        outcomes[run.run_id] = outcome
                        progress.report(run, outcome)
                pending = [run for run in pending if outcomes[run.run_id].status is PointStatus.CLAIMED]
    finally:
        for lane in lanes:
            lane.close()
    return [outcomes[run.run_id] for run in runs]
