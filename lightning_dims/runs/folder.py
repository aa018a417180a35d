"""A run's folder: its layout, its state, the checks before a process works on it, and its claim.

This module is the one place that spells where a run's files are. A run ``<run_id>`` owns
``<run_dir>/<run_id>/``::

    <run_dir>/<run_id>/
        checkpoints/last.ckpt       the end of the last completed training epoch (the resume point)
        checkpoints/best-*.ckpt     the best-val-loss weights (with a val set)
        claim.json                  while a process works on the run (:mod:`~lightning_dims.runs.claims`)
        attempts.jsonl              every process that worked on it (:mod:`~lightning_dims.runs.attempts`)
        <run_id>.record.json        the results record, unless ``--results_dir`` puts it elsewhere

A sweep (:class:`SweepLayout`) keeps records in ``<results>/<run_id>.record.json``, run folders
in ``<results>/runs/<run_id>/`` and each run's output in ``<results>/logs/<run_id>.log`` (its
``${args_json_file}`` beside it, ``<run_id>.args.json``); under ``lightning-dims agent`` a run's
``${args_json_file}`` is ``args.json`` in the folder W&B gives the run (:func:`agent_args_file`).

:meth:`RunFolder.state` is the rule by which ``fit`` and the sweep runner decide what to do with a
run (:class:`RunState`); :meth:`RunFolder.refuse_finished`, :meth:`RunFolder.refuse_overwrite` and
:meth:`RunFolder.check_resume` are the refusals ``fit`` makes before it writes anything.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_dims.errors import ConfigError
from lightning_dims.records.store import RecordState, inspect_record, record_path
from lightning_dims.runs.claims import Claim, ClaimInfo, filesystem_now, read_claim, stale_after_s
from lightning_dims.runs.identity import changes_text, differing_keys
from lightning_dims.utils import StrEnum

__all__ = [
    "AGENT_ARGS_NAME",
    "CHECKPOINT_DIR",
    "CHECKPOINT_SUFFIX",
    "CLAIM_NAME",
    "JOURNAL_NAME",
    "LAST_CHECKPOINT",
    "SWEEP_LOGS_DIR",
    "SWEEP_RUNS_DIR",
    "RunFolder",
    "RunState",
    "SweepLayout",
    "agent_args_file",
]

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_SUFFIX = ".ckpt"
LAST_CHECKPOINT = "last"  # ModelCheckpoint's filename= for the resume point: checkpoints/last.ckpt
CLAIM_NAME = "claim.json"
JOURNAL_NAME = "attempts.jsonl"
SWEEP_RUNS_DIR = "runs"
SWEEP_LOGS_DIR = "logs"
AGENT_ARGS_NAME = "args.json"


class RunState(StrEnum):
    """What a run's folder and record say about it (``sweep --dry-run`` prints the value).

    ``FINISHED``: a complete record (``finished``, or ``smoke``); ``CORRUPT``: an unreadable
    record; ``CLAIMED``: a live process holds the claim; ``RESUMABLE``: ``last.ckpt`` and no
    finished record; ``FAILED``: an unfinished record and no checkpoint; ``NEW``: none of these.
    """

    FINISHED = "finished"
    CORRUPT = "corrupt"
    CLAIMED = "claimed"
    RESUMABLE = "resumable"
    FAILED = "failed"
    NEW = "new"


@dataclass(frozen=True)
class RunFolder:
    """The folder of one run (``path``, named by ``run_id``) and where its results record goes (``record_file``)."""

    path: Path
    run_id: str
    record_file: Path

    @classmethod
    def of_run(cls, run_dir: str | os.PathLike[str], run_id: str, results_dir: str | os.PathLike[str] | None = None) -> "RunFolder":
        """``<run_dir>/<run_id>/``, its record in ``results_dir`` (default: the run folder itself)."""
        path = Path(run_dir) / run_id
        return cls(path, run_id, record_path(results_dir or path, run_id))

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINT_DIR

    @property
    def last_checkpoint(self) -> Path:
        """``checkpoints/last.ckpt``: written at the end of every training epoch; a resume starts there."""
        return self.checkpoints / f"{LAST_CHECKPOINT}{CHECKPOINT_SUFFIX}"

    @property
    def claim_file(self) -> Path:
        return self.path / CLAIM_NAME

    @property
    def journal_file(self) -> Path:
        return self.path / JOURNAL_NAME

    # ---- state ----------------------------------------------------------------------------------
    def state(self, include_claim: bool = True) -> tuple[RunState, str | None]:
        """``(state, detail)``: the first that holds of finished, claimed, corrupt, resumable, failed, new.

        ``detail``: when it finished, who holds the claim since when, why the record is
        unreadable, the last attempt's status, or the failed record's error. ``include_claim``
        False: the claim is not looked at (a process that will claim the run, or a DDP rank whose
        rank 0 holds it, asks what the files say; the claim itself refuses a second claimant).
        """
        state, record, reason = inspect_record(self.record_file)
        if state is RecordState.FINISHED:
            return RunState.FINISHED, record.finished_at
        holder = self.live_claim() if include_claim else None
        if holder is not None:
            return RunState.CLAIMED, f"by {holder.holder} since {holder.started_at}"
        if state is RecordState.CORRUPT:
            return RunState.CORRUPT, reason
        if self.last_checkpoint.is_file():
            return RunState.RESUMABLE, None if record is None else f"last attempt {record.status}"
        if state is RecordState.UNFINISHED:
            return RunState.FAILED, record.error or record.status
        return RunState.NEW, None

    def live_claim(self) -> ClaimInfo | None:
        """The claim on the run while its holder is alive (see :mod:`~lightning_dims.runs.claims`), else None."""
        claim = read_claim(self.claim_file)
        if claim is None or claim.stale_reason(filesystem_now(self.path), stale_after_s()) is not None:
            return None
        return claim

    def claim_holder(self) -> ClaimInfo | None:
        """Whatever the claim file says (live or not), None when there is none."""
        return read_claim(self.claim_file)

    def last_sign_of_life(self) -> float | None:
        """The newest modification time of the files in the run folder (None when there are none).

        The claim file is left out: a new holder may have just re-created it. Taken before an
        attempt writes anything, it ends an earlier attempt that was killed
        (:meth:`AttemptJournal.start <lightning_dims.runs.attempts.AttemptJournal.start>`).
        """
        if not self.path.is_dir():
            return None
        times = []
        for path in self.path.rglob("*"):
            try:
                if path.is_file() and path.name != CLAIM_NAME and not path.name.startswith(".clock-"):
                    times.append(path.stat().st_mtime)
            except OSError:  # vanished meanwhile
                continue
        return max(times, default=None)

    # ---- before a process works on the run --------------------------------------------------------
    def admit(
        self, ckpt_path: str | None, *, resume: bool = False, fetch_checkpoint: Callable[[Path], object] | None = None
    ) -> str | None:
        """What a process about to work on the run does, by :meth:`state` (its files; the claim comes later).

        ``FINISHED``: refused (:meth:`refuse_finished`). Otherwise ``fetch_checkpoint(last_checkpoint)``
        may bring the resume point from elsewhere (W&B), then ``RESUMABLE`` without ``ckpt_path``
        is resumed (returns ``"last"``) when ``resume`` (``wandb agent`` re-running its preempted
        run) and refused otherwise (:meth:`refuse_overwrite`), and so is a ``CORRUPT`` one with a
        checkpoint; ``FAILED``, ``NEW`` and ``CORRUPT`` without one start. Returns the checkpoint to resume from.
        """
        if self.state(include_claim=False)[0] is RunState.FINISHED:
            self.refuse_finished()
        if fetch_checkpoint is not None:
            fetch_checkpoint(self.last_checkpoint)
        state = self.state(include_claim=False)[0]
        if not ckpt_path and (state is RunState.RESUMABLE or (state is RunState.CORRUPT and self.last_checkpoint.is_file())):
            if resume:
                return "last"
            self.refuse_overwrite(ckpt_path)
        return ckpt_path

    def refuse_finished(self) -> None:
        """:class:`ConfigError` when the run's record is finished: a finished run is never run again."""
        state, record, _ = inspect_record(self.record_file)
        if state is RecordState.FINISHED:
            raise ConfigError(
                f"run {self.run_id!r} already finished (status {record.status}, results record {self.record_file}, config_hash "
                f"{record.config_hash}): nothing to run or resume; choose another --run_id for a new run"
            )

    def refuse_overwrite(self, ckpt_path: str | None) -> None:
        """:class:`ConfigError` when an earlier attempt's ``last.ckpt`` would be overwritten (no ``--ckpt_path``)."""
        if self.last_checkpoint.is_file() and not ckpt_path:
            raise ConfigError(
                f"run {self.run_id!r} has a checkpoint from an earlier attempt ({self.last_checkpoint}): resume it with "
                "--ckpt_path last, or choose another --run_id"
            )

    def check_resume(self, requested: str | None, config_hash: str, config: dict[str, Any]) -> str | None:
        """Refuse (:class:`ConfigError`) to resume from a checkpoint trained under another ``config_hash``, naming the keys.

        ``requested``: ``--ckpt_path`` (``last``: this folder's ``last.ckpt``; ``best``/``hpc``/
        ``registry`` are Lightning's and not checked). Returns a warning to print when the
        checkpoint carries no stamp (an older version) and is resumed unchecked, else None.
        """
        if not requested or requested in ("best", "hpc", "registry"):
            return None
        path = self.last_checkpoint if requested == "last" else Path(requested)
        if not path.is_file():
            if requested != "last":
                raise ConfigError(f"--ckpt_path {requested}: no such checkpoint file")
            return None  # 'last' with nothing to resume: a fresh start, as Lightning does
        from lightning_dims.runs.reproducibility import checkpoint_identity  # Lightning: only a resume needs it

        stamp = checkpoint_identity(path)
        if stamp is None:
            return f"{path} carries no config_hash (older version): resuming unchecked"
        if stamp["config_hash"] != config_hash:
            shown = changes_text(differing_keys(stamp.get("config", {}), config))
            raise ConfigError(
                f"resume refused: {path} was trained under another config (config_hash {stamp['config_hash']}, "
                f"now {config_hash}): {shown}. Resume with the original settings, or start a new run (--run_id)"
            )
        return None

    def make_writable(self) -> None:
        """Create the run folder and the record's folder; :class:`ConfigError` naming one a file cannot be written to."""
        for folder in dict.fromkeys((self.path, self.record_file.parent)):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / f".write-test-{os.getpid()}"
                probe.write_text("")
                probe.unlink()
            except OSError as error:
                raise ConfigError(
                    f"cannot write to the run folder {folder} ({error.strerror or error}): choose a writable --run_dir"
                ) from None

    def claim(self, what: str, adopt_token: str | None = None) -> Claim:
        """Claim the run (:meth:`Claim.acquire <lightning_dims.runs.claims.Claim.acquire>` on ``claim.json``)."""
        return Claim.acquire(self.claim_file, adopt_token=adopt_token, what=what)


@dataclass(frozen=True)
class SweepLayout:
    """Where a sweep keeps its runs under ``results``: records at the top, ``runs/<run_id>/``, ``logs/<run_id>.log``."""

    results: Path

    @property
    def run_dir(self) -> Path:
        return self.results / SWEEP_RUNS_DIR

    def folder(self, run_id: str) -> RunFolder:
        return RunFolder.of_run(self.run_dir, run_id, self.results)

    @property
    def log_dir(self) -> Path:
        return self.results / SWEEP_LOGS_DIR

    def log(self, run_id: str) -> Path:
        """The run's output (its first line: the command as it ran)."""
        return self.log_dir / f"{run_id}.log"

    def args_file(self, run_id: str) -> Path:
        """The file a point's ``${args_json_file}`` names."""
        return self.log_dir / f"{run_id}.args.json"


def agent_args_file(folder: str | os.PathLike[str]) -> Path:
    """The file a ``lightning-dims agent`` run's ``${args_json_file}`` names: ``args.json`` in the run's W&B folder."""
    return Path(folder) / AGENT_ARGS_NAME
