"""W&B's sweep agent with warm runs: ``wandb.agent(sweep_id, function=AgentJob(...))``.

``wandb agent SWEEP_ID`` starts every run the sweep controller hands it as a new program (the
sweep's ``command``: ``lightning-dims fit ...``), paying torch, Lightning and W&B's start-up each
time. ``lightning-dims agent SWEEP_ID`` asks the same controller for the same runs through
``wandb.agent(..., function=...)``, W&B's in-process agent: for each run, W&B sets
``WANDB_RUN_ID``, ``WANDB_SWEEP_ID`` and ``WANDB_SWEEP_PARAM_PATH`` (the run's parameters, a
``{name: {"value": v}}`` YAML file) and calls :class:`AgentJob`, which builds the command
``wandb agent`` would have run (the sweep's ``command`` template and ``program``, through
:func:`~lightning_dims.sweep.grid.expand_command`, the builder the offline sweep uses) and forks
it from a :class:`~lightning_dims.sweep.warm.WarmWorker` (or starts it cold). The run is still its
own process with its own exit status, its run id is the agent's (``fit`` takes ``WANDB_RUN_ID``
under ``WANDB_SWEEP_ID``: one folder, record and W&B run), and a run the agent hands out again
after a preemption resumes from its ``last.ckpt`` as under ``wandb agent``. A run that fails
raises :class:`~lightning_dims.tracking.sweeps.AgentRunError`, so W&B marks it failed and applies
its own rules (it stops an agent whose first runs all fail). A "stop" from the W&B app reaches the
run as SIGTERM (it writes an ``interrupted`` record). Reading the sweep and running W&B's agent:
:mod:`lightning_dims.tracking.sweeps`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning_dims.runs.folder import agent_args_file
from lightning_dims.sweep.grid import DEFAULT_COMMAND, expand_command, runnable
from lightning_dims.sweep.warm import WarmWorker, warm_arguments
from lightning_dims.tracking.sweeps import AgentRunError

__all__ = ["AgentJob"]


class AgentJob:
    """The function ``wandb.agent`` calls for each run (module docstring).

    Args:
        sweep: the sweep's configuration as the W&B server holds it (``command``, ``program``).
        worker: the warm worker to fork runs from; None: each run starts cold.
    """

    def __init__(self, sweep: Mapping[str, Any], worker: WarmWorker | None = None):
        self.sweep = dict(sweep)
        self.worker = worker
        self.run_id: str | None = None  # the run going now, None between runs
        self._child: Any = None
        self._stopping = False
        self._idle = threading.Event()
        self._idle.set()

    def stop(self, timeout: float = 600.0) -> str | None:
        """Stop the agent's run (Ctrl-C, SIGTERM): SIGTERM to the running ``fit`` (it writes an ``interrupted``
        record and keeps ``last.ckpt``), wait for it to end; the run id it was running, None when idle."""
        self._stopping = True
        run_id, child = self.run_id, self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
        self._idle.wait(timeout)
        return run_id

    def command(self, parameters: Mapping[str, Any], folder: Path) -> list[str]:
        """The run's argv, as ``wandb agent`` builds it (``lightning-dims`` through this Python;
        ``${args_json_file}`` written into ``folder``)."""
        argv = expand_command(self.sweep.get("command") or DEFAULT_COMMAND, parameters, self.sweep.get("program"))
        return runnable(argv, parameters, agent_args_file(folder))

    def __call__(self) -> None:
        from lightning_dims.compat import read_sweep_parameters

        run_id = os.environ.get("WANDB_RUN_ID")
        param_path = os.environ.get("WANDB_SWEEP_PARAM_PATH")
        if not run_id or not param_path:
            raise AgentRunError("WANDB_RUN_ID / WANDB_SWEEP_PARAM_PATH are not set: AgentJob is called by wandb.agent")
        parameters = read_sweep_parameters(param_path)
        argv = self.command(parameters, Path(param_path).parent / run_id)
        env = dict(os.environ)
        cwd = Path.cwd()
        if self._stopping:
            return  # the agent is stopping: start nothing more
        args = warm_arguments(argv) if self.worker is not None else None
        self._idle.clear()
        try:
            child = self.worker.run(args, cwd, env, None) if args is not None else subprocess.Popen(argv, cwd=cwd, env=env)
            self.run_id, self._child = run_id, child
            try:
                code = child.wait()
            except BaseException:  # W&B stops a run by raising in this thread (a "stop" from the app): stop the run too
                child.send_signal(signal.SIGTERM)
                child.wait()
                raise
        finally:
            self.run_id, self._child = None, None
            self._idle.set()
        if self._stopping:
            return  # stopped by the agent's own Ctrl-C/SIGTERM: the run is interrupted and resumable, not failed
        if code != 0:
            raise AgentRunError(f"run {run_id} ended with exit status {code}: see its output above")
