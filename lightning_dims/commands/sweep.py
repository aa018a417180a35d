"""``lightning-dims sweep SWEEP.yaml``: a W&B grid sweep run locally, each point exactly once (W&B offline unless configured).

Start it on as many processes or nodes as you like over one ``--results`` folder: each point is
claimed by one process (``lightning_dims.sweep.runner``). Re-running the same command continues:
finished points are skipped, interrupted ones resume from their last checkpoint.

Runs at once: ``--runs-per-device R`` per visible GPU (each run sees one GPU), or ``--workers W``
on the CPU (the cores split among them). Each slot forks its runs from a warm worker that loaded
torch, Lightning, W&B and the ``fit`` command once (``lightning_dims.sweep.warm``); ``--cold``
starts every run as its own program instead. ``--launcher slurm|local`` submits the grid as a submitit
job array instead (``lightning_dims.sweep.launch``); ``--estimate`` times training steps on this
machine and prints what the grid will cost before anything starts.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lightning_dims.cli import user_errors
from lightning_dims.configs import resolve_config
from lightning_dims.errors import UsageError
from lightning_dims.sweep.check import check_runs
from lightning_dims.sweep.grid import expand_grid, load_sweep, shard

if TYPE_CHECKING:
    from lightning_dims.sweep.launch import ClusterOptions

__all__ = [
    "JOB_ARRAY_ONLY",
    "PROG",
    "SLURM_ONLY",
    "build_parser",
    "cluster_options",
    "dry_run",
    "launch",
    "main",
    "refuse_unused_options",
    "refused",
    "summary",
]

PROG = "lightning-dims sweep"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split(":", 1)[1].strip().split("\n\n")[0])
    parser.add_argument("sweep", help="W&B sweep YAML with method: grid, or a shipped one (sweeps/quick, sweeps/paper)")
    parser.add_argument(
        "--runs-per-device", type=int, metavar="R",
        help="runs at once on each visible GPU, each run seeing only its GPU (default 1); without a GPU, like --workers",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=int, metavar="W",
        help="runs at once on the CPU, the cores split among them (torch threads per run = cores / W; default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--cold", action="store_true",
        help="start every run as its own `lightning-dims fit` program (paying torch, Lightning and W&B's start-up "
        "each time) instead of forking it from the slot's warm worker (the default)",
    )  # fmt: skip
    parser.add_argument("--shard", help="i/n: only every n-th grid point starting at the i-th")
    parser.add_argument("--results", default="results", help="folder for records, run folders and logs (may be shared)")
    parser.add_argument(
        "--print-path", action="store_true",
        help="print the sweep file's path and stop (for `wandb sweep \"$(lightning-dims sweep sweeps/paper --print-path)\"`)",
    )  # fmt: skip
    parser.add_argument(
        "--wait", action="store_true",
        help="after the pass, wait for points other processes are running; take over those whose holder dies",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true",
        help="list every point's run id, state (finished/resumable/claimed/failed/corrupt/new) and command, and check "
        "that every command parses and would start (typos, unknown datasets or callbacks options); run nothing. "
        "With --launcher slurm, also print the sbatch script",
    )  # fmt: skip
    parser.add_argument(
        "--estimate", action="store_true",
        help="count each architecture's FLOPs, time the cheapest few on this machine (with the runs per device / "
        "workers given) for its seconds per FLOP, and print runs, images and hours of the grid's unfinished points; run nothing",
    )  # fmt: skip
    parser.add_argument("--estimate-steps", type=int, default=3, metavar="N", help="training steps timed per calibrating architecture, at least")
    parser.add_argument(
        "--estimate-seconds", type=float, default=8.0, metavar="S",
        help="keep timing steps of each calibrating architecture while S seconds last (more steps: a smaller uncertainty); on the "
        "CPU the timed batch shrinks so that the steps fit",
    )  # fmt: skip
    parser.add_argument(
        "--estimate-startup-runs", type=int, default=2, metavar="N",
        help="tiny real runs timed cold and warm for the start-up per run (0: leave start-up out)",
    )  # fmt: skip
    launch = parser.add_argument_group("job array (submitit)")
    launch.add_argument(
        "--launcher", choices=["slurm", "local"],
        help="submit the grid as one job array: 'slurm' (sbatch through submitit) or 'local' (tasks as processes "
        "here, waited for); each task runs its share with the same exactly-once, skip and resume rules",
    )  # fmt: skip
    launch.add_argument("--tasks", type=int, help="array tasks (default: one wave of runs per task; local: one task per slot)")
    launch.add_argument("--partition", help="SLURM partition")
    launch.add_argument("--gpus-per-task", type=int, metavar="G", help="GPUs of each array task")
    launch.add_argument("--cpus-per-task", type=int, metavar="C", help="CPU cores of each array task")
    launch.add_argument("--time", metavar="T", help="wall-clock limit of each task: minutes, HH:MM:SS or D-HH:MM:SS")
    launch.add_argument("--array-parallelism", type=int, metavar="K", help="at most K tasks at once (sbatch --array=...%%K)")
    launch.add_argument(
        "--slurm-option", action="append", default=[], metavar="KEY=VALUE",
        help="any other sbatch option by its long name, e.g. account=lab, mem=64G, qos=normal (repeatable)",
    )  # fmt: skip
    launch.add_argument(
        "--slurm-setup", action="append", default=[], metavar="LINE",
        help="a shell line the sbatch script runs first, e.g. 'source .venv/bin/activate' (repeatable)",
    )  # fmt: skip
    launch.add_argument("--jobs-folder", help="submitit's scripts, pickles and task logs (default: <results>/jobs)")
    return parser


def dry_run(runs, results: Path) -> int:
    """Print every point's state and command, then check every command; 2 when one would fail."""
    from lightning_dims.runs.folder import RunState
    from lightning_dims.sweep.runner import point_state

    counts: dict[RunState, int] = {}
    for run in runs:
        state, detail = point_state(run, results)
        counts[state] = counts.get(state, 0) + 1
        print(f"{run.run_id}  {state}{f' ({detail})' if detail else ''}\n    {shlex.join(run.argv)}")
    print(f"{len(runs)} points: " + ", ".join(f"{count} {state}" for state, count in sorted(counts.items())))
    problems = check_runs(runs)
    for run_id, problem in problems:
        print(f"{PROG}: error: {run_id}: {problem}", file=sys.stderr)
    print(f"checked {len(runs)} commands (one parse per command shape and parameter value): {len(problems) or 'none'} would fail")
    return 2 if problems else 0


def refused(runs, consequence: str) -> bool:
    """Check every command (:func:`~lightning_dims.sweep.check.check_runs`); print each problem and True when one would fail."""
    problems = check_runs(runs)
    for run_id, problem in problems:
        print(f"{PROG}: error: {run_id}: {problem}", file=sys.stderr)
    if problems:
        print(f"{PROG}: error: {len(problems)} command shape(s) of the {len(runs)} commands would fail; {consequence}", file=sys.stderr)
    return bool(problems)


def summary(sweep: str, results: str, outcomes) -> int:
    """Print what happened to the points; 1 when one failed."""
    from lightning_dims.sweep.runner import PointStatus

    counts = {status: sum(o.status is status for o in outcomes) for status in PointStatus}
    stopped = f"{counts[PointStatus.STOPPED]} stopped, " if counts[PointStatus.STOPPED] else ""
    print(
        f"sweep {sweep}: {counts[PointStatus.FINISHED]} finished, {counts[PointStatus.SKIPPED]} already done, "
        f"{counts[PointStatus.CLAIMED]} running elsewhere, {stopped}{counts[PointStatus.FAILED]} failed; records in {results}"
    )
    for outcome in outcomes:
        if outcome.status is PointStatus.FAILED:
            print(f"  failed: {outcome.run_id} (see {outcome.log}); re-run the same command to retry or resume it")
        elif outcome.status is PointStatus.CLAIMED:
            print(f"  running elsewhere: {outcome.run_id} ({outcome.detail}); --wait waits for it")
    return 1 if counts[PointStatus.FAILED] else 0


def cluster_options(args) -> "ClusterOptions":
    from lightning_dims.sweep.launch import ClusterOptions, parse_slurm_options, parse_time

    return ClusterOptions(
        partition=args.partition,
        gpus_per_task=args.gpus_per_task,
        cpus_per_task=args.cpus_per_task,
        time_min=parse_time(args.time) if args.time else None,
        array_parallelism=args.array_parallelism,
        slurm_options=parse_slurm_options(args.slurm_option),
        setup=list(args.slurm_setup),
        job_name=f"lightning-dims-{Path(args.sweep).stem}",
    )


SLURM_ONLY = ("partition", "gpus_per_task", "cpus_per_task", "array_parallelism", "slurm_option", "slurm_setup")
JOB_ARRAY_ONLY = ("tasks", "time", "jobs_folder", *SLURM_ONLY)


def refuse_unused_options(args) -> None:
    """Job-array options without the launcher that reads them: one line naming the fix."""
    from lightning_dims.sweep.launch import LaunchError

    if args.launcher == "slurm":
        return
    unused, needs = (SLURM_ONLY, "--launcher slurm") if args.launcher == "local" else (JOB_ARRAY_ONLY, "--launcher slurm or local")
    given = [f"--{name.replace('_', '-')}" for name in unused if getattr(args, name) not in (None, [])]
    if given:
        raise LaunchError(f"{', '.join(given)}: {'applies' if len(given) == 1 else 'apply'} only with {needs}")


def launch(args, runs, results: Path) -> int:
    """Submit the grid as a job array; for ``local``, wait for it and sum up from the results folder."""
    from lightning_dims.runs.folder import RunState
    from lightning_dims.sweep.launch import make_executor, plan_tasks, sbatch_script, wait_for
    from lightning_dims.sweep.runner import point_state

    options = cluster_options(args)
    tasks = plan_tasks(
        runs, results.resolve(), Path.cwd(), args.launcher, options, args.tasks, args.runs_per_device, args.workers, not args.cold
    )
    folder = Path(args.jobs_folder) if args.jobs_folder else results / "jobs"
    if args.dry_run:
        code = dry_run(runs, results)
        if args.launcher == "slurm":
            print(f"\n# sbatch script for {len(tasks)} array tasks ({len(runs)} points):")
            print(sbatch_script(folder.resolve(), options, len(tasks)))
        return code
    executor = make_executor(args.launcher, folder, options)  # no SLURM here: says so before the slow check
    if refused(runs, "nothing submitted"):
        return 2
    jobs = executor.submit_array(tasks)
    sizes = sorted({len(task.runs) for task in tasks})
    ids = ", ".join(dict.fromkeys(job.job_id.split("_")[0] for job in jobs))
    print(f"submitted {len(tasks)} {args.launcher} array tasks ({'-'.join(map(str, sizes))} points each, "
          f"{len(runs)} in all): job {ids}; logs in {folder}")  # fmt: skip
    if args.launcher == "slurm":
        print(f"follow: squeue --me; states of the points: {PROG} {shlex.join([args.sweep, '--results', args.results, '--dry-run'])}")
        return 0
    for task, result in zip(tasks, wait_for(jobs)):
        print(f"  {task.label}: {result}")
    states = [point_state(run, results)[0] for run in runs]
    done = states.count(RunState.FINISHED)
    print(f"sweep {args.sweep}: {done} of {len(runs)} points finished; records in {args.results}")
    return 0 if done == len(runs) else 1


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.print_path:
        try:
            print(resolve_config(args.sweep).resolve())
        except FileNotFoundError as error:
            raise UsageError(str(error)) from None
        return 0
    runs = expand_grid(load_sweep(args.sweep), cwd=Path.cwd())
    if args.shard:
        runs = shard(runs, args.shard)
    results = Path(args.results)
    refuse_unused_options(args)
    if args.estimate:
        from lightning_dims.sweep.estimate import estimate_grid

        return estimate_grid(
            runs, results, args.runs_per_device, args.workers, args.estimate_steps, not args.cold, args.estimate_startup_runs,
            args.estimate_seconds,
        )  # fmt: skip
    if args.launcher:
        return launch(args, runs, results)
    if args.dry_run:
        return dry_run(runs, results)
    if refused(runs, "nothing started (fix the sweep file; --dry-run lists every command)"):
        return 2
    from lightning_dims.sweep.interrupt import SignalStop, stopped_line
    from lightning_dims.sweep.runner import RunnerControl, run_sweep, stopped_points
    from lightning_dims.sweep.slots import describe_slots, machine_slots

    slots = machine_slots(args.runs_per_device, args.workers)
    if len(slots) > 1:
        print(f"{PROG}: {describe_slots(slots)}")
    with SignalStop() as stop:
        stop.control = RunnerControl()
        outcomes = run_sweep(runs, results, wait=args.wait, slots=slots, warm=not args.cold, control=stop.control)
    if stop.signum is not None:
        own_argv = sys.argv[2:] if argv is None else list(argv)
        print(stopped_line(PROG, stop.signum, stopped_points(outcomes), own_argv), file=sys.stderr)
        return stop.exit_status
    return summary(args.sweep, args.results, outcomes)


if __name__ == "__main__":
    sys.exit(main())
