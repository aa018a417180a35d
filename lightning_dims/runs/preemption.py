"""Preemption: SIGTERM or SIGUSR2 stops a run so that it resumes, and asks a W&B sweep to re-run it.

A SLURM cluster preempts a job with SIGTERM (SIGKILL follows after the partition's ``GraceTime``),
and ``sbatch --signal=USR2@<s>`` sends SIGUSR2 ``<s>`` seconds before the time limit. While
:class:`PreemptionSignals` is installed (the whole of ``lightning-dims fit``'s run, see
:mod:`lightning_dims.runs.lifecycle`), either signal stops the run:

* inside a trainer call (``fit``, ``test``, ``validate``), by Lightning's own SIGTERM handling: the
  batch in progress finishes, then the call stops with ``SIGTERMException`` (under DDP rank 0's stop
  is broadcast to every rank). SIGUSR2 is re-raised as SIGTERM so it takes the same path;
* outside one (data setup, between fit and test), at once, with :class:`Preempted`.

The run then records status ``interrupted`` with the error ``preempted by SIGUSR2 ...`` (resumable:
never ``failed``, never ``finished``), marks its W&B run as preempting (``wandb.mark_preempting()``)
and finishes it with exit code ``128 + signum``, and the process exits with that code. W&B sweeps
requeue a run that exits non-zero after ``mark_preempting()``; the agent's re-run has the same run
id, so the same folder, and resumes from ``checkpoints/last.ckpt`` (see
:mod:`lightning_dims.training.run`). ``last.ckpt`` is the end of the last completed training
epoch: the epoch in progress is done again on resume, because a mid-epoch checkpoint would not resume
to the numbers of an uninterrupted run (the data order of an epoch cannot be restarted halfway).

Lightning's ``SLURMEnvironment`` auto-requeue (its default signal SIGUSR1: checkpoint to
``hpc_ckpt_*.ckpt`` and ``scontrol requeue``) is left as Lightning sets it; SIGUSR1 is not ours.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["PREEMPTION_SIGNALS", "Preempted", "PreemptionSignals", "preemption_exit_code", "preemption_message"]

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


def preemption_exit_code(signum: int) -> int:
    """The shell's exit status of a process ended by ``signum``: ``128 + signum`` (143 for SIGTERM, 140 for SIGUSR2)."""
    return 128 + int(signum)


class Preempted(SystemExit):
    """The run was stopped by a preemption signal; exits the process with ``128 + signum``."""

    def __init__(self, signum: int):
        super().__init__(preemption_exit_code(signum))
        self.signum = int(signum)

    def __str__(self) -> str:
        return preemption_message(self.signum)


def preemption_message(signum: int) -> str:
    """The record's error for a run stopped by ``signum``: what happened and how it continues."""
    return (
        f"preempted by {signal.Signals(signum).name}: resumable, re-run the same command with --ckpt_path last "
        "(a wandb agent re-run resumes by itself)"
    )


class PreemptionSignals:
    """Handlers for SIGTERM and SIGUSR2 while a run works (a context manager; the main thread only).

    ``signum`` is the first preemption signal received (None: none). While ``holding`` is set (the
    run is writing its record) a signal is only noted.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.holding = False
        self._handler = self._handle  # one bound method, so signal.getsignal can be compared with it
        self._previous: dict[int, object] = {}

    def __enter__(self) -> PreemptionSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in PREEMPTION_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        if first:
            self.signum = int(signum)
        if signal.getsignal(signal.SIGTERM) is not self._handler:  # a trainer call: Lightning handles SIGTERM
            if signum != signal.SIGTERM:
                signal.raise_signal(signal.SIGTERM)
            return  # SIGTERM: Lightning called us after setting trainer.received_sigterm
        if first and not self.holding:
            raise Preempted(signum)

    @property
    def preempted(self) -> bool:
        return self.signum is not None
