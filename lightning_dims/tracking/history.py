"""One W&B history across the attempts of a run: each attempt's run file on disk, each attempt continuing ``_step``.

Each attempt of a run (a resume, a requeue) is a new W&B run folder with the same run id in
``<run folder>/wandb/``: ``offline-run-<time>-<id>/`` offline, ``run-<time>-<id>/`` online, each
holding ``run-<id>.wandb``, W&B's log of everything the attempt sent. Two things keep the attempts
one history once ``wandb sync`` uploads the offline folders (in order of start time, as
``wandb sync`` does for the folders of one run):

* **Data reaches disk while the run works.** wandb-core writes the run file in 32 KiB blocks and
  flushes it every ``x_transaction_log_flush_interval`` seconds (15 by default): a short attempt
  killed by SIGKILL left a 7-byte header. :func:`flush_settings` sets :data:`FLUSH_INTERVAL_S`,
  so a killed attempt loses at most its last seconds of W&B history (its record and
  ``last.ckpt`` do not depend on W&B).
* **``_step`` continues.** An online resume is told by the server where the synced history
  ended; an offline one cannot ask, and wandb starts its ``_step`` at 0, so the upload of the
  resumed attempt would write over the first attempt's steps (and an online resume over an
  offline attempt not yet synced). :func:`continue_history` reads the earlier attempts' run files
  and moves the new run's step past the largest step they hold, when the run's own step is not
  already past it (``run.log({}, step=next_step, commit=False)``: no row, no key, only the step).

The run file format (W&B's LevelDB-style log): a 7-byte header (``:W&B``, magic, version), then
32 KiB blocks of chunks, each ``crc32 (4) | length (2, little endian) | type (1) | payload``, type
1 a whole record, 2/3/4 the first/middle/last piece of one; each record is a
``wandb_internal_pb2.Record``. A torn last chunk (a process killed mid-write) ends the reading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

__all__ = [
    "BLOCK",
    "FLUSH_INTERVAL_S",
    "HEADER",
    "attempt_files",
    "continue_history",
    "flush_settings",
    "history_steps",
    "next_step",
    "record_payloads",
]

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
FLUSH_INTERVAL_S = 2.0  # seconds between flushes of the W&B run file to disk


def record_payloads(path: str | Path) -> list[bytes]:
    """The serialised records of a W&B run file, in order (ValueError if it is not one)."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    payloads, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # block trailer too short for a header: skip to the next block
            pos += BLOCK - pos % BLOCK
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if pos + HEADER + length > len(data):
            break  # torn by a kill mid-write
        chunk, pos = data[pos + HEADER : pos + HEADER + length], pos + HEADER + length
        if kind == FULL:
            payloads.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            payloads.append(pending + chunk)
    return payloads


def history_steps(path: str | Path) -> list[int]:
    """The ``_step`` of every history row in a W&B run file, in the order written."""
    from wandb.proto import wandb_internal_pb2 as pb

    steps = []
    for payload in record_payloads(path):
        record = pb.Record()
        record.ParseFromString(payload)
        if record.WhichOneof("record_type") == "history":
            steps.append(int(record.history.step.num))
    return steps


def attempt_files(wandb_dir: str | Path, run_id: str) -> list[Path]:
    """The run files of every attempt of W&B run ``run_id`` under ``wandb_dir``, oldest first.

    Folders are ``[offline-]run-<YYYYmmdd_HHMMSS>-<id>``, with ``-<n>`` appended by wandb when two
    attempts start within one second; ordered by that name without ``offline-``.
    """
    files = Path(wandb_dir).glob(f"*run-*-{run_id}*/run-{run_id}.wandb")
    return sorted(files, key=lambda path: path.parent.name.removeprefix("offline-"))


def next_step(files: list[Path]) -> int:
    """One past the largest ``_step`` in ``files`` (0 when they hold no history)."""
    return 1 + max((step for path in files for step in history_steps(path)), default=-1)


def flush_settings() -> dict[str, Any]:
    """``wandb.Settings`` keywords that flush the run file every :data:`FLUSH_INTERVAL_S` seconds
    (empty when the installed wandb has no such setting; :func:`lightning_dims.compat.wandb_flush_settings`)."""
    from lightning_dims.compat import wandb_flush_settings

    return wandb_flush_settings(FLUSH_INTERVAL_S)


def continue_history(run: Any) -> int | None:
    """Move a W&B ``run``'s ``_step`` past every earlier attempt's; the new first step, or None.

    None when no earlier attempt in the run's wandb folder holds history, or the run's step is
    already past it (an online resume of synced attempts: the server said where they ended).
    """
    if not run.dir:
        return None
    current = Path(run.dir).parent  # <wandb dir>/[offline-]run-<time>-<id>/files
    earlier = [path for path in attempt_files(current.parent, run.id) if path.parent != current]
    try:
        step = next_step(earlier)
        if step <= run.step:
            return None
        run.log({}, step=step, commit=False)
    except Exception as error:  # an unreadable earlier file must not stop the run (W&B never fails a run)
        rank_zero_warn(f"could not continue the W&B history of run {run.id} ({error}): this attempt's _step starts at {run.step}")
        return None
    return step
