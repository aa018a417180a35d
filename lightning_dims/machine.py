"""What this process may use of the machine it runs on."""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["usable_cores", "visible_gpus"]


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity (under SLURM, the task's ``--cpus-per-task``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def visible_gpus(environ: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (ids or UUIDs).

    ``CUDA_VISIBLE_DEVICES`` when set (SLURM sets it to a task's GPUs; empty means none), else
    ``0 .. n-1`` for the n devices torch counts (through NVML, without starting CUDA).
    """
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [name.strip() for name in listed.split(",") if name.strip() and name.strip() != "-1"]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]
