"""Run the grid of a sweep file locally, each point a ``lightning-dims fit`` subprocess, exactly once.

Any number of runners (threads, processes, nodes sharing the results folder over NFS) can work on
one grid: a point is run only by the process holding its claim
(:mod:`lightning_dims.runs.claims`, ``<results>/runs/<run_id>/claim.json``), which passes it on to
its ``fit`` child. Per point:

* a finished results record exists: skipped (``already done``);
* an unreadable record: moved aside (``*.corrupt``, with a warning) and the point re-run;
* claimed by a live process elsewhere: left to it (``claimed``; ``wait=True`` waits for it, and
  takes the point over if its holder dies);
* ``checkpoints/last.ckpt`` and no finished record: resumed with ``--ckpt_path last``;
* otherwise started fresh.

Records go to ``<results>/<run_id>.record.json``, run folders to ``<results>/runs/<run_id>/``,
each run's output to ``<results>/logs/<run_id>.log``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lightning_dims.records.store import (
    RecordState,
    inspect_record,
    is_finished,
    move_aside,
    record_path,
)
from lightning_dims.runs.claims import (
    CLAIM_NAME,
    TOKEN_ENV,
    Claim,
    ClaimHeldError,
    filesystem_now,
    read_claim,
    stale_after_s,
)
from lightning_dims.sweep.grid import ARGS_JSON_FILE, SweepRun

PROGRAM_ALIASES = {"lightning-dims": [sys.executable, "-m", "lightning_dims"]}
"""Programs run through this interpreter, so a sweep uses the installation that launched it."""

WAIT_POLL_S = 30.0


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one grid point in this process.

    ``status``: ``finished`` (ran to a finished record here), ``failed``, ``skipped`` (already
    finished), or ``claimed`` (another live process is running it; ``detail`` names it).
    """

    run_id: str
    status: str
    seconds: float
    log: Path | None
    detail: str | None = None


def run_folder(results: Path, run_id: str) -> Path:
    return results / "runs" / run_id


def point_state(run: SweepRun, results: Path) -> tuple[str, str | None]:
    """``(state, detail)`` of a grid point: ``finished``, ``corrupt``, ``claimed``, ``resumable``, ``failed`` or ``new``."""
    state, record, reason = inspect_record(record_path(results, run.run_id))
    if state is RecordState.FINISHED:
        return "finished", record.finished_at
    folder = run_folder(results, run.run_id)
    claim = read_claim(folder / CLAIM_NAME)
    if claim is not None and claim.stale_reason(filesystem_now(folder), stale_after_s()) is None:
        return "claimed", f"by {claim.holder} since {claim.started_at}"
    if state is RecordState.CORRUPT:
        return "corrupt", reason
    if (folder / "checkpoints" / "last.ckpt").is_file():
        return "resumable", None if record is None else f"last attempt {record.status}"
    if state is RecordState.UNFINISHED:
        return "failed", record.error or record.status
    return "new", None


def fit_command(run: SweepRun, results: Path) -> list[str]:
    """The run's argv with the program resolved, its folders and id set, and ``${args_json_file}`` written."""
    argv = list(run.argv)
    if ARGS_JSON_FILE in argv:
        path = results / "logs" / f"{run.run_id}.args.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run.parameters))
        argv = [str(path) if token == ARGS_JSON_FILE else token for token in argv]
    if argv and argv[0] in PROGRAM_ALIASES:
        argv = PROGRAM_ALIASES[argv[0]] + argv[1:]
    argv += [f"--run_id={run.run_id}", f"--results_dir={results}", f"--run_dir={results / 'runs'}"]
    if (run_folder(results, run.run_id) / "checkpoints" / "last.ckpt").is_file():
        argv.append("--ckpt_path=last")
    return argv


def run_one(run: SweepRun, results: Path, quiet: bool = False, cwd: Path | None = None) -> RunOutcome:
    """Run one grid point if it is not finished and nobody else is running it (module docstring)."""
    path = record_path(results, run.run_id)
    state, _, reason = inspect_record(path)
    if state is RecordState.FINISHED:
        return RunOutcome(run.run_id, "skipped", 0.0, None)
    if state is RecordState.CORRUPT:
        move_aside(path, reason)
    try:
        claim = Claim.acquire(run_folder(results, run.run_id), what=f"sweep point {run.run_id}")
    except ClaimHeldError as error:
        holder = read_claim(run_folder(results, run.run_id) / CLAIM_NAME)
        return RunOutcome(run.run_id, "claimed", 0.0, None, holder.holder if holder else str(error))
    with claim:
        if is_finished(path):  # finished by another process between our look and our claim
            return RunOutcome(run.run_id, "skipped", 0.0, None)
        log = results / "logs" / f"{run.run_id}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = fit_command(run, results)
        started = time.perf_counter()
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(argv)}\n")
            handle.flush()
            env = {**run.environment, **os.environ, TOKEN_ENV: claim.token}  # the user's environment wins
            code = subprocess.call(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    status = "finished" if code == 0 and is_finished(path) else "failed"
    return RunOutcome(run.run_id, status, time.perf_counter() - started, log)


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

    def report(self, run: SweepRun, outcome: RunOutcome) -> None:
        with self.lock:
            self.done += 1
            if outcome.status in ("finished", "failed"):
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
) -> list[RunOutcome]:
    """Run ``runs`` with up to ``workers`` at once, in ``cwd`` (default: the current folder, like a W&B
    agent; relative paths in the sweep's command resolve there); outcomes in grid order.

    ``wait``: after the pass, keep watching points claimed by other processes until each is
    finished, and run those whose holder died (their claim goes stale).
    """
    results = results.resolve()
    results.mkdir(parents=True, exist_ok=True)
    progress = Progress(len(runs), workers, quiet)

    def attempt(run: SweepRun) -> RunOutcome:
        outcome = run_one(run, results, quiet, cwd)
        if outcome.status != "claimed" or not wait:
            progress.report(run, outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        outcomes = dict(zip((run.run_id for run in runs), pool.map(attempt, runs)))
        pending = [run for run in runs if outcomes[run.run_id].status == "claimed"] if wait else []
        while pending:
            time.sleep(poll_s)
            for run, outcome in zip(pending, pool.map(lambda r: run_one(r, results, quiet, cwd), pending)):
                if outcome.status != "claimed":
                    outcomes[run.run_id] = outcome
                    progress.report(run, outcome)
            pending = [run for run in pending if outcomes[run.run_id].status == "claimed"]
    return [outcomes[run.run_id] for run in runs]
