"""A callback that writes what its process sees when training starts (class path ``tests.helpers.process_facts.ProcessFacts``):
for comparing a run forked from a warm worker with a cold one."""

from __future__ import annotations

import json
import os
import signal
import sys

import __main__
import torch
from lightning.pytorch.callbacks import Callback


class ProcessFacts(Callback):
    def __init__(self, out: str):
        self.out = out

    def on_fit_start(self, trainer, pl_module) -> None:
        service = os.environ.get("WANDB_SERVICE", "")
        facts = {
            "argv": sys.argv,
            "main_spec": getattr(__main__.__spec__, "name", None),
            "cwd": os.getcwd(),
            "path0": sys.path[0],
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "probe_value": os.environ.get("PROBE_VALUE"),
            "torch_threads": torch.get_num_threads(),
            "stdin": sys.stdin.read(),
            "stdout_is_log": os.path.realpath("/proc/self/fd/1"),
            "sigint": type(signal.getsignal(signal.SIGINT)).__name__,
            "sigint_is_default": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
            "usr2_blocked": signal.SIGUSR2 in signal.pthread_sigmask(signal.SIG_BLOCK, []),
            "wandb_service_pid": int(service.split("-")[1]) if service else None,
            "cuda_initialised": torch.cuda.is_initialized(),
        }
        with open(self.out, "w") as handle:
            json.dump(facts, handle)
