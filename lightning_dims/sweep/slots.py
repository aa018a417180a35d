"""How runs that go at once share one machine: which GPU each sees, how many CPU threads each uses.

A *slot* is a place for one run process. On a machine with GPUs, ``runs_per_device`` R gives
R slots per visible GPU, dealt round robin (GPU 0, 1, ..., 0, 1, ...), and each run sees only its
GPU (``CUDA_VISIBLE_DEVICES``): small-batch runs (VGG at batch 6) leave a large GPU mostly idle
alone, several share it. Without a GPU, ``workers`` W slots split the CPU cores. Either way each
run gets ``cores // slots`` torch threads (``OMP_NUM_THREADS``, which torch reads at start), so
runs going at once do not oversubscribe the cores. The thread count is environment, not config:
it changes no result and no ``config_hash``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_dims.errors import LightningDimsError
from lightning_dims.machine import usable_cores, visible_gpus

__all__ = ["THREAD_VARIABLES", "Slot", "SlotError", "describe_slots", "machine_slots", "plan_slots"]

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Variables that set a child's intra-op threads (torch takes ``OMP_NUM_THREADS``; MKL its own)."""


class SlotError(LightningDimsError, ValueError):
    """Runs per device / workers that cannot be laid out on this machine."""


@dataclass(frozen=True)
class Slot:
    """One place for a run process: the GPU it sees (None: no GPU assignment) and its CPU threads (None: untouched)."""

    gpu: str | None = None
    threads: int | None = None

    def environment(self) -> dict[str, str]:
        """The variables a run process in this slot starts with."""
        env = {}
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        if self.threads is not None:
            env.update({name: str(self.threads) for name in THREAD_VARIABLES})
        return env

    def describe(self) -> str:
        parts = [f"GPU {self.gpu}"] if self.gpu is not None else []
        if self.threads is not None:
            parts.append(f"{self.threads} thread{'s' if self.threads != 1 else ''}")
        return ", ".join(parts) or "shared"


def plan_slots(
    gpus: list[str], cores: int, runs_per_device: int | None = None, workers: int | None = None
) -> list[Slot]:
    """The slots for a machine with ``gpus`` and ``cores``, in the order runs take them.

    GPUs: ``runs_per_device`` (default 1) slots per GPU, round robin; ``workers`` is refused
    (it splits CPU cores). No GPU: ``workers`` (or ``runs_per_device``: the CPU is the one
    device; default 1) slots. Threads per run: ``max(1, cores // slots)``.
    """
    for name, value in (("--runs-per-device", runs_per_device), ("--workers", workers)):
        if value is not None and value < 1:
            raise SlotError(f"{name} must be at least 1, got {value}")
    if gpus:
        if workers is not None:
            raise SlotError(
                f"--workers splits CPU cores, but {len(gpus)} GPU(s) are visible: use --runs-per-device R "
                "(R runs on each GPU), or hide the GPUs (CUDA_VISIBLE_DEVICES=) to run on the CPU"
            )
        per_device = runs_per_device or 1
        threads = max(1, cores // (per_device * len(gpus)))
        return [Slot(gpu, threads) for _ in range(per_device) for gpu in gpus]
    if workers is not None and runs_per_device is not None and workers != runs_per_device:
        raise SlotError("no GPU is visible, so the CPU is the one device: give --workers or --runs-per-device, not both")
    count = workers or runs_per_device or 1
    return [Slot(None, max(1, cores // count)) for _ in range(count)]


def machine_slots(runs_per_device: int | None = None, workers: int | None = None) -> list[Slot]:
    """:func:`plan_slots` for this process's visible GPUs and usable cores."""
    return plan_slots(visible_gpus(), usable_cores(), runs_per_device, workers)


def describe_slots(slots: list[Slot]) -> str:
    """``4 runs at once: GPU 0, 4 threads; GPU 1, 4 threads; ...`` (one line)."""
    counts: dict[str, int] = {}
    for slot in slots:
        counts[slot.describe()] = counts.get(slot.describe(), 0) + 1
    layout = "; ".join(f"{count} x {what}" if count > 1 else what for what, count in counts.items())
    return f"{len(slots)} run{'s' if len(slots) != 1 else ''} at once ({layout})"
