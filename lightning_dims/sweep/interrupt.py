"""Ctrl-C and SIGTERM on ``sweep``, ``demo`` and ``agent``: stop cleanly, say what finished and the command that continues.

Without this, Ctrl-C on a running sweep prints a ``KeyboardInterrupt`` traceback from deep inside
a thread pool, and SIGTERM kills the runner under its warm workers. Inside :class:`SignalStop`,
the first SIGINT or SIGTERM is noted and:

* while a sweep runs (:attr:`SignalStop.control` set): no further point starts and the running
  ``fit`` children get SIGTERM (:meth:`~lightning_dims.sweep.runner.RunnerControl.stop`), so each
  writes an ``interrupted`` record, releases its claim and leaves ``last.ckpt`` to resume from; the
  sweep returns normally, its warm workers are closed, and the command prints one line
  (:func:`stopped_line`);
* otherwise (measuring, reporting, waiting for the W&B agent): :class:`Stopped` is raised in the
  main thread, for the command to turn into the same one line.

Either way the exit status is ``128 + signum`` (130 for SIGINT, 143 for SIGTERM), as a shell
reports a process ended by that signal. Later signals are only noted (the children are already
stopping).
"""

from __future__ import annotations

import shlex
import signal
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning_dims.sweep.runner import RunnerControl

__all__ = ["STOP_SIGNALS", "SignalStop", "Stopped", "stopped_line"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """A stop signal arrived while no sweep was running (a ``BaseException``, like ``KeyboardInterrupt``)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalStop:
    """SIGINT and SIGTERM stop the command cleanly while the block runs (module docstring); the main thread only.

    Attributes:
        signum: the first stop signal received, None when none came.
        control: the running sweep's control; set it around ``run_sweep`` and clear it after.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.control: RunnerControl | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "SignalStop":
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        if self.control is not None:
            self.control.stop(signal.SIGTERM)
        elif first:
            raise Stopped(signum)

    @property
    def exit_status(self) -> int:
        """``128 + signum`` of the first stop signal (0 when none came)."""
        return 128 + self.signum if self.signum is not None else 0


def stopped_line(prog: str, signum: int, done: str, argv: list[str]) -> str:
    """``<prog>: stopped by SIGINT: <done>; continue with: lightning-dims ...`` (``argv``: the command's own arguments)."""
    command = shlex.join(["lightning-dims", prog.rsplit(" ", 1)[-1], *argv])
    return f"{prog}: stopped by {signal.Signals(signum).name}: {done}; continue with: {command}"
