"""Warm run workers: torch, Lightning, W&B and the ``fit`` command loaded once, each run a fork of them.

A cold run (``lightning-dims fit`` as its own program) spends about 15 s of CPU before it trains:
imports (torch, Lightning, timm, torchmetrics: about 7 s on the project's 2-core box), building
the CLI's parser (about 2.5 s) and starting W&B's service (about 4 s with the offline run). A
*worker* is one long-lived process per slot that pays this once: it imports :data:`PRELOAD`,
builds the fit parser once (jsonargparse caches what it learnt from the classes), and starts W&B's
service (``wandb.setup()``, W&B's own advice before starting child processes: children find it
through ``WANDB_SERVICE`` and share it; the worker owns it and tears it down when it exits). For
each run it then ``fork``\\ s one child, which runs exactly what ``python -m lightning_dims fit
ARGS`` would (:func:`run_forked`): the same ``sys.argv`` and ``__main__`` spec (Lightning's DDP
launcher re-runs the command from them), working folder and environment, stdin from
``/dev/null``, stdout and stderr to the run's log, default signal handlers, and its own exit
status (``-N`` when signal ``N`` ended it, as :class:`subprocess.Popen` reports). Each run is
still its own process: a crash, a leak or a ``kill -9`` stays in that run, and the worker's next
run is a fresh fork of the same preloaded state (nothing of one run reaches the next).

Fork safety, measured rather than assumed (``benchmarks/bench_startup.py --fork-check``): the
worker runs no tensor operation (no OpenMP pool exists at fork; the child sets its own thread
count), is built not to initialise CUDA (``CUDA_VISIBLE_DEVICES`` is read by the child when it
first touches the GPU; the warm-up parse asks CUDA through NVML, which is fork-safe; not yet run
on a GPU), and at fork holds only W&B's two idle Python threads (its asyncio loop and service
finalizer; reported in the ready message) and numpy's and scipy's OpenBLAS pools, which OpenBLAS
shuts down around ``fork`` itself (``pthread_atfork``).

The protocol between the runner and a worker is one JSON object per line over two pipes
(requests in, replies out), so the worker's stdout and stderr stay the runner's:
``{"ready": seconds, "threads": [...]}`` (the threads it holds when it forks); ``{"run": args, "cwd": .., "env": {..}, "log": path|null}`` answered by
``{"started": pid}`` then ``{"exit": status}``; ``{"signal": N}`` sends ``N`` to the running child.
The worker ignores SIGINT and SIGTERM (a terminal's Ctrl-C or a cluster's SIGTERM reaches the
runs directly, as with cold runs, and the worker stays to report how they ended), and exits when
its request pipe closes (its runner ended) and its child has ended.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path

from lightning_dims.compat import forget_exit_handlers, run_exit_handlers
from lightning_dims.errors import LightningDimsError
from lightning_dims.sweep.grid import PROGRAM_ALIASES

__all__ = [
    "LIGHTNING_DIMS",
    "PRELOAD",
    "READY_TIMEOUT_S",
    "ForkedRun",
    "WarmWorker",
    "WorkerError",
    "exit_status",
    "preload",
    "run_forked",
    "serve",
    "wait_serving",
    "warm_arguments",
]

PRELOAD = (
    "torch",
    "lightning.pytorch",
    "lightning.pytorch.loggers",
    "wandb",
    "timm",
    "torchmetrics",
    "lightning_dims.cli",
    "lightning_dims.commands.fit",
    "lightning_dims.callbacks",
    "sklearn.datasets",  # the embedded datasets and metrics; it brings pandas and scipy
    "wandb.sdk.wandb_init",
    "wandb.sdk.wandb_run",
    "wandb.apis.public",  # what wandb.init and saving the record import on first use
    "wandb.sdk.launch",
)
"""Modules a worker imports once (what a ``fit`` run imports that costs time; a run imports the rest itself)."""

LIGHTNING_DIMS = PROGRAM_ALIASES["lightning-dims"]
"""How a sweep runs ``lightning-dims``: through the Python that started it. Only these commands run warm."""

READY_TIMEOUT_S = 600.0
"""Seconds a worker may take to preload before the runner gives up on it."""


class WorkerError(LightningDimsError, RuntimeError):
    """A warm worker could not start, or ended while it served a run."""


def warm_arguments(argv: list[str]) -> list[str] | None:
    """The ``lightning-dims`` arguments of ``argv`` when it runs ``lightning-dims fit`` through this
    Python (:data:`LIGHTNING_DIMS`), else None: only such commands can run in a warm worker."""
    head = len(LIGHTNING_DIMS)
    if list(argv[:head]) == LIGHTNING_DIMS and argv[head : head + 1] == ["fit"]:
        return list(argv[head:])
    return None


# ---- the worker process ----------------------------------------------------------------------------
def preload(modules: tuple[str, ...] = PRELOAD) -> None:
    """Import ``modules``, build the fit parser once, and start W&B's service (unless W&B is disabled)."""
    for name in modules:
        importlib.import_module(name)
    nvml_check = os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK")
    os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"  # the parse asks whether CUDA exists: never initialise it here
    saved = [os.dup(1), os.dup(2)]
    quiet = os.open(os.devnull, os.O_WRONLY)
    try:
        from lightning_dims.training.config_parser import FitConfigParser

        os.dup2(quiet, 1)  # the warm-up parse seeds and says so ("Seed set to 0"): not the sweep's news
        os.dup2(quiet, 2)
        FitConfigParser()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(quiet)
        if nvml_check is None:
            os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK")
        else:
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = nvml_check
    try:
        from lightning_dims.tracking.run import start_wandb_service

        start_wandb_service()
    except Exception as error:  # W&B never fails a run: each run then starts W&B itself, as a cold run does
        print(f"lightning-dims worker: warning: W&B's service did not start ({error}); each run starts its own", file=sys.stderr)


def exit_status(code: object) -> int:
    """The exit status Python gives ``sys.exit(code)``: None is 0, an int itself, anything else printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def run_forked(args: list[str], cwd: str | None, env: Mapping[str, str], log: str | None) -> int:
    """In a freshly forked child: become ``python -m lightning_dims ARGS`` (module docstring) and run it.

    Returns the exit status; the caller ends the process with ``os._exit`` (the worker's own exit
    handlers, W&B's service teardown among them, must not run in a child).
    """
    # What Python gives a new program: Ctrl-C raises KeyboardInterrupt, unless the launcher ignored
    # SIGINT (a background job of a shell), which a new program inherits and keeps.
    signal.signal(signal.SIGINT, signal.SIG_IGN if _INHERITED_SIGINT_IGNORED else signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    if log is not None:
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(out)
    if cwd is not None:
        os.chdir(cwd)
    sys.path[0] = os.getcwd()  # what `python -m` puts first: modules of the run's folder (its own callbacks) import
    service = os.environ.get("WANDB_SERVICE")  # the worker's W&B service: its runs share it
    known = set(os.environ.get("PYTHONPATH", "").split(os.pathsep))
    added = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path and path not in known]
    sys.path[1:1] = added  # a run's own PYTHONPATH entries, where its own interpreter would put them
    os.environ.clear()
    os.environ.update(env)
    if service is not None:
        os.environ["WANDB_SERVICE"] = service
    else:
        os.environ.pop("WANDB_SERVICE", None)
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))
    main_spec = importlib.util.find_spec("lightning_dims.__main__")
    sys.argv = [main_spec.origin, *args]
    sys.modules["__main__"].__spec__ = main_spec  # Lightning re-runs `python -m <spec.name> argv[1:]` for DDP ranks
    forget_exit_handlers()  # the worker's exit handlers are not this run's; the run's own ones run below
    try:
        from lightning_dims.cli import main

        code = exit_status(main())
    except SystemExit as stop:
        code = exit_status(stop.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        run_exit_handlers()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
    return code


class _Lines:
    """JSON lines read from a file descriptor without hidden buffering (so ``select`` tells the truth)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buffer = b""
        self.closed = False

    def _split(self) -> list[dict]:
        messages = []
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            if line.strip():
                messages.append(json.loads(line))
        return messages

    def pending(self) -> list[dict]:
        """Read what is there (call when ``fd`` is readable); the complete messages."""
        chunk = os.read(self.fd, 65536)
        if not chunk:
            self.closed = True
        self.buffer += chunk
        return self._split()

    def next(self) -> dict | None:
        """Block for the next message; None at end of input."""
        while b"\n" not in self.buffer:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.closed = True
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


def _send(fd: int, message: dict) -> None:
    os.write(fd, (json.dumps(message) + "\n").encode())


_INHERITED_SIGINT_IGNORED = False
"""Whether SIGINT was ignored when the worker started (a cold run started the same way would keep it ignored)."""


def serve(requests: int, replies: int) -> int:
    """The worker's loop (module docstring): preload, then one forked child per run request."""
    global _INHERITED_SIGINT_IGNORED
    started = time.perf_counter()
    _INHERITED_SIGINT_IGNORED = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        return _serve(requests, replies, started)
    except BrokenPipeError:  # the runner is gone (its process group was signalled): nobody to report to, quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            os.dup2(devnull, stream.fileno())
        return 0


def _serve(requests: int, replies: int, started: float) -> int:
    preload()
    threads = [thread.name for thread in threading.enumerate() if thread is not threading.main_thread()]
    _send(replies, {"ready": time.perf_counter() - started, "pid": os.getpid(), "threads": threads,
                    "native_threads": len(os.listdir("/proc/self/task"))})  # fmt: skip
    inbox = _Lines(requests)
    while (message := inbox.next()) is not None:
        if "run" not in message:
            continue  # a signal for a run that has already ended
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(requests)
                os.close(replies)
                code = run_forked(message["run"], message.get("cwd"), message.get("env") or {}, message.get("log"))
            finally:
                os._exit(code)
        _send(replies, {"started": pid})
        _send(replies, {"exit": wait_serving(pid, inbox)})
    return 0


def wait_serving(pid: int, inbox: _Lines) -> int:
    """Wait for child ``pid`` to end, passing on ``{"signal": N}`` requests meanwhile; its exit status."""
    ended = os.pidfd_open(pid)
    try:
        while True:
            watched = [ended] if inbox.closed else [ended, inbox.fd]
            readable, _, _ = select.select(watched, [], [])
            if ended in readable:
                _, status = os.waitpid(pid, 0)
                return os.waitstatus_to_exitcode(status)
            for message in inbox.pending():
                if "signal" in message:
                    os.kill(pid, int(message["signal"]))  # not reaped yet: the pid is still this child's
    finally:
        os.close(ended)


# ---- the runner's side -----------------------------------------------------------------------------
class ForkedRun:
    """A run forked by a :class:`WarmWorker`, with the part of :class:`subprocess.Popen`'s API the runner uses."""

    def __init__(self, worker: "WarmWorker", pid: int):
        self.worker = worker
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self.worker._wait_exit(self)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            self.worker._request({"signal": int(signum)})


class WarmWorker:
    """One warm worker process (module docstring), started on first use, serving one run at a time.

    Args:
        environment: variables added to this process's for the worker (a slot's GPU and threads:
            the thread count must be set before torch loads).
    """

    def __init__(self, environment: Mapping[str, str] | None = None):
        self.environment = dict(environment or {})
        self.process: subprocess.Popen | None = None
        self.preload_s: float | None = None
        self.threads_at_fork: list[str] = []
        self.native_threads_at_fork: int | None = None
        self._requests = self._replies = -1
        self._inbox: _Lines | None = None
        self._lock = threading.Lock()

    def start(self) -> "WarmWorker":
        """Start the worker and wait until it has preloaded; :class:`WorkerError` if it cannot."""
        request_read, self._requests = os.pipe()
        self._replies_read, reply_write = os.pipe()
        env = {**os.environ, **self.environment}
        env.pop("WANDB_SERVICE", None)  # the worker starts and owns the service its runs share
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lightning_dims.sweep.warm", str(request_read), str(reply_write)],
                pass_fds=(request_read, reply_write), stdin=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        finally:
            os.close(request_read)
            os.close(reply_write)
        self._inbox = _Lines(self._replies_read)
        ready = self._reply(READY_TIMEOUT_S)
        if ready is None or "ready" not in ready:
            self.close()
            raise WorkerError(
                f"the warm worker ended while preloading (exit status {self.process.wait()}): see the messages above; "
                "--cold runs each fit as its own program"
            )
        self.preload_s = float(ready["ready"])
        self.threads_at_fork = list(ready.get("threads", []))  # the worker's Python threads besides its main one
        self.native_threads_at_fork = ready.get("native_threads")
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _request(self, message: dict) -> None:
        with self._lock:
            try:
                _send(self._requests, message)
            except OSError:  # the worker is gone: its run is reported by _wait_exit
                pass

    def _reply(self, timeout: float | None = None) -> dict | None:
        if timeout is not None and b"\n" not in self._inbox.buffer:
            if not select.select([self._inbox.fd], [], [], timeout)[0]:
                return None
        return self._inbox.next()

    def run(self, args: list[str], cwd: str | os.PathLike[str] | None, env: Mapping[str, str], log: Path | None) -> ForkedRun:
        """Fork a run of ``lightning-dims ARGS`` (``cwd``, exactly ``env``, output to ``log`` or the worker's)."""
        if not self.alive:
            self.start()
        self._request({"run": list(args), "cwd": None if cwd is None else str(cwd), "env": dict(env),
                       "log": None if log is None else str(log)})  # fmt: skip
        reply = self._reply()
        if reply is None or "started" not in reply:
            raise WorkerError(f"the warm worker (pid {self.process.pid}) ended before it started the run")
        return ForkedRun(self, int(reply["started"]))

    def _wait_exit(self, run: ForkedRun) -> int:
        reply = self._reply()
        if reply is not None and "exit" in reply:
            return int(reply["exit"])
        # the worker died under its run (killed on its own): the run goes on as an orphan until it ends
        from lightning_dims.runs.claims import pid_alive

        while pid_alive(run.pid):
            time.sleep(0.5)
        return -signal.SIGKILL

    def close(self, timeout: float = 30.0) -> None:
        """Close the request pipe (the worker ends after its current run) and wait for it."""
        if self._requests >= 0:
            os.close(self._requests)
            self._requests = -1
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._inbox is not None:
            os.close(self._inbox.fd)
            self._inbox = None


if __name__ == "__main__":
    sys.exit(serve(int(sys.argv[1]), int(sys.argv[2])))
