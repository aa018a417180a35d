"""Run the grid of a sweep file locally, each point a ``lightning-dims fit`` subprocess.

Resumable and safe to re-run: a grid point whose finished results record exists is skipped; one
whose run folder holds ``checkpoints/last.ckpt`` but no finished record is resumed with
``--ckpt_path last``; the others start fresh. Records go to ``<results>/<run_id>.record.json``,
run folders to ``<results>/runs/<run_id>/``, each run's output to ``<results>/logs/<run_id>.log``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lightning_dims.sweep.grid import SweepRun

PROGRAM_ALIASES = {"lightning-dims": [sys.executable, "-m", "lightning_dims"]}
"""Programs run through this interpreter, so a sweep uses the installation that launched it."""


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    status: str  # finished | failed | skipped
    seconds: float
    log: Path | None


def finished_record(results: Path, run_id: str) -> bool:
    path = results / f"{run_id}.record.json"
    try:
        return json.loads(path.read_text()).get("status") == "finished"
    except (OSError, ValueError):
        return False


def fit_command(run: SweepRun, results: Path) -> list[str]:
    """The run's argv with the program resolved and its folders and id set."""
    argv = list(run.argv)
    if argv and argv[0] in PROGRAM_ALIASES:
        argv = PROGRAM_ALIASES[argv[0]] + argv[1:]
    argv += [f"--run_id={run.run_id}", f"--results_dir={results}", f"--run_dir={results / 'runs'}"]
    if (results / "runs" / run.run_id / "checkpoints" / "last.ckpt").is_file():
        argv.append("--ckpt_path=last")
    return argv


def run_one(run: SweepRun, results: Path, quiet: bool = False, cwd: Path | None = None) -> RunOutcome:
    if finished_record(results, run.run_id):
        return RunOutcome(run.run_id, "skipped", 0.0, None)
    log = results / "logs" / f"{run.run_id}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = fit_command(run, results)
    started = time.perf_counter()
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(argv)}\n")
        handle.flush()
        code = subprocess.call(argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=cwd)
    status = "finished" if code == 0 and finished_record(results, run.run_id) else "failed"
    outcome = RunOutcome(run.run_id, status, time.perf_counter() - started, log)
    if not quiet:
        print(f"[{status}] {run.run_id} {run.parameters} ({outcome.seconds:.0f} s; log {log})", flush=True)
    return outcome


def run_sweep(
    runs: list[SweepRun], results: Path, workers: int = 1, quiet: bool = False, cwd: Path | None = None
) -> list[RunOutcome]:
    """Run ``runs`` with up to ``workers`` at once, in ``cwd`` (default: the current folder, like a
    W&B agent; relative paths in the sweep's command resolve there); outcomes in grid order."""
    results = results.resolve()
    results.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda run: run_one(run, results, quiet, cwd), runs))
