"""``lightning-dims agent SWEEP_ID``: a W&B sweep agent whose runs fork from a warm worker.

The W&B sweep controller hands out the runs as it does to ``wandb agent`` (same sweep, same
parameters, same run ids); each run is the sweep's ``lightning-dims fit`` command, forked from one
worker that loaded torch, Lightning, W&B and the ``fit`` command once (``--cold``: each run its own
program, like ``wandb agent``). Needs ``wandb login`` and the sweep on the server
(``lightning_dims.sweep.agent``, ``lightning_dims.tracking.sweeps``).
"""

from __future__ import annotations

import argparse
import sys

from lightning_dims.cli import user_errors

__all__ = ["PROG", "build_parser", "main"]

PROG = "lightning-dims agent"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split(":", 1)[1].strip().split("\n\n")[0])
    parser.add_argument("sweep_id", help="ENTITY/PROJECT/SWEEP_ID as `wandb sweep` printed it (or SWEEP_ID with --project)")
    parser.add_argument("--count", type=int, help="run at most this many runs, then exit (wandb agent --count)")
    parser.add_argument("--project", help="W&B project of the sweep (default: from SWEEP_ID or $WANDB_PROJECT)")
    parser.add_argument("--entity", help="W&B entity of the sweep (default: from SWEEP_ID or your default entity)")
    parser.add_argument("--cold", action="store_true", help="start every run as its own program, as `wandb agent` does")
    return parser


@user_errors(PROG)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from lightning_dims.sweep.agent import AgentJob
    from lightning_dims.sweep.warm import WarmWorker
    from lightning_dims.tracking.sweeps import fetch_sweep, run_agent

    from lightning_dims.sweep.interrupt import SignalStop, Stopped, stopped_line

    sweep = fetch_sweep(args.sweep_id, args.entity, args.project)
    worker = None if args.cold else WarmWorker()
    job = AgentJob(sweep, worker)
    try:
        with SignalStop():
            run_agent(args.sweep_id, job, args.entity, args.project, args.count)
    except Stopped as stopped:
        run_id = job.stop()
        done = f"run {run_id} interrupted (resumable: it continues from its last checkpoint when the sweep hands it out again)" if run_id else "no run was going"
        print(stopped_line(PROG, stopped.signum, done, sys.argv[2:] if argv is None else list(argv)), file=sys.stderr)
        return 128 + stopped.signum
    finally:
        if worker is not None:
            worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
